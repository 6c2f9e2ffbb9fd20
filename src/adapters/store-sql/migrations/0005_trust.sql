CREATE TABLE "enrollment_tokens" (
	"hash" text PRIMARY KEY NOT NULL,
	"grant_id" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "grants" (
	"id" text PRIMARY KEY NOT NULL,
	"peer_name" text NOT NULL,
	"subject_user" text NOT NULL,
	"status" text NOT NULL,
	"scope" jsonb NOT NULL,
	"cert_serial" text,
	"cert_not_after" timestamp with time zone,
	"prev_cert_serial" text,
	"prev_cert_until" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"activated_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"revoke_reason" text
);
--> statement-breakpoint
CREATE TABLE "issued_certificates" (
	"serial" text PRIMARY KEY NOT NULL,
	"grant_id" text NOT NULL,
	"subject" text NOT NULL,
	"not_after" timestamp with time zone NOT NULL,
	"issued_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "peers" (
	"name" text PRIMARY KEY NOT NULL,
	"url" text NOT NULL,
	"peer_channel_url" text NOT NULL,
	"cluster_id" text NOT NULL,
	"grant_id" text NOT NULL,
	"subject" text NOT NULL,
	"cert_pem" text NOT NULL,
	"key_sealed" text NOT NULL,
	"ca_pem" text NOT NULL,
	"cert_serial" text NOT NULL,
	"cert_not_after" timestamp with time zone NOT NULL,
	"state" text NOT NULL,
	"last_success_at" timestamp with time zone,
	"last_failure_at" timestamp with time zone,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "grants_status" ON "grants" USING btree ("status");--> statement-breakpoint
CREATE INDEX "grants_subject" ON "grants" USING btree ("subject_user");--> statement-breakpoint
CREATE INDEX "issued_certificates_grant" ON "issued_certificates" USING btree ("grant_id");