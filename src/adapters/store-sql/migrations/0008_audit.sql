CREATE TABLE "audit" (
	"seq" bigint PRIMARY KEY NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"grant_id" text,
	"peer" text,
	"subject" text,
	"verb" text NOT NULL,
	"resource" text NOT NULL,
	"query_hash" text NOT NULL,
	"outcome" text NOT NULL,
	"bytes_out" bigint NOT NULL,
	"latency_ms" double precision NOT NULL,
	"trace_id" text,
	"hash" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit_cold" (
	"seq" bigint PRIMARY KEY NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"grant_id" text,
	"peer" text,
	"subject" text,
	"verb" text NOT NULL,
	"resource" text NOT NULL,
	"query_hash" text NOT NULL,
	"outcome" text NOT NULL,
	"bytes_out" bigint NOT NULL,
	"latency_ms" double precision NOT NULL,
	"trace_id" text,
	"hash" text NOT NULL
);
--> statement-breakpoint
CREATE INDEX "audit_at" ON "audit" USING btree ("at");--> statement-breakpoint
CREATE INDEX "audit_cold_at" ON "audit_cold" USING btree ("at");