ALTER TABLE "outbox" ADD COLUMN "last_error_kind" text;--> statement-breakpoint
UPDATE "outbox" SET "op" = 'update' WHERE "op" = 'upsert';
