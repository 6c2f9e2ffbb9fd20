CREATE TABLE "jobs" (
	"id" text PRIMARY KEY NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "jobs_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"service" text NOT NULL,
	"status" text NOT NULL,
	"event" "bytea" NOT NULL,
	"owner" text NOT NULL,
	"cpu_millis" integer NOT NULL,
	"memory_bytes" bigint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"exit_code" integer,
	"reason" text,
	"log" text,
	"delegated_to" text,
	"delegated_id" text,
	"attempts" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "services" (
	"name" text PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"definition" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "settings" (
	"key" text PRIMARY KEY NOT NULL,
	"value" text NOT NULL
);
--> statement-breakpoint
CREATE INDEX "jobs_service_seq" ON "jobs" USING btree ("service","seq");--> statement-breakpoint
CREATE INDEX "jobs_status_seq" ON "jobs" USING btree ("status","seq");--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_delegated_id" ON "jobs" USING btree ("delegated_id");