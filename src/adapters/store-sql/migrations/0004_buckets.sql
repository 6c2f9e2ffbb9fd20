CREATE TABLE "buckets" (
	"name" text PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"visibility" text DEFAULT 'private' NOT NULL,
	"allowed_users" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"created_by_service" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "buckets_created_by" ON "buckets" USING btree ("created_by_service");--> statement-breakpoint
-- Owners recorded before this table: buckets made through /system/buckets kept theirs in a
-- settings row "bucket:<name>" ('' once deleted).
INSERT INTO "buckets" ("name", "owner", "visibility", "allowed_users")
SELECT legacy.name, legacy.v->>'owner', coalesce(legacy.v->>'visibility', 'private'),
       CASE WHEN jsonb_typeof(legacy.v->'allowed_users') = 'array' THEN legacy.v->'allowed_users' ELSE '[]'::jsonb END
FROM (
  SELECT substr("key", 8) AS name, CASE WHEN "value" LIKE '{%' THEN "value"::jsonb END AS v
  FROM "settings" WHERE "key" LIKE 'bucket:%'
) AS legacy
WHERE legacy.v->>'owner' IS NOT NULL
ON CONFLICT DO NOTHING;
--> statement-breakpoint
-- Buckets that existing services named on this store go to the owner of the first service
-- that named them, with its visibility. No creator is recorded: whether the service made
-- the bucket is not known, so deleting it never deletes them.
INSERT INTO "buckets" ("name", "owner", "visibility", "allowed_users")
SELECT DISTINCT ON (named.bucket) named.bucket, s."owner",
       coalesce(s."definition"->>'visibility', 'private'),
       CASE WHEN jsonb_typeof(s."definition"->'allowed_users') = 'array' THEN s."definition"->'allowed_users' ELSE '[]'::jsonb END
FROM "services" s
CROSS JOIN LATERAL (
  SELECT split_part(ltrim(io->>'path', '/'), '/', 1) AS bucket, coalesce(io->>'storage_provider', 'minio.default') AS provider
  FROM jsonb_array_elements(
    (CASE WHEN jsonb_typeof(s."definition"->'input') = 'array' THEN s."definition"->'input' ELSE '[]'::jsonb END) ||
    (CASE WHEN jsonb_typeof(s."definition"->'output') = 'array' THEN s."definition"->'output' ELSE '[]'::jsonb END)
  ) AS io
  WHERE jsonb_typeof(io) = 'object'
) AS named
WHERE named.provider = 'minio.default' AND named.bucket <> ''
ORDER BY named.bucket, s."created_at"
ON CONFLICT DO NOTHING;
