import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/adapters/store-sql/schema.ts',
  out: './src/adapters/store-sql/migrations',
});
