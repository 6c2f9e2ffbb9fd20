ALTER TABLE "jobs" ADD COLUMN "remote_job_id" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "origin_cluster" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "origin_token" text;