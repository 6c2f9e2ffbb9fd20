ALTER TABLE "jobs" ADD COLUMN "hold_state" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "held_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "confirm_pending" boolean DEFAULT false NOT NULL;