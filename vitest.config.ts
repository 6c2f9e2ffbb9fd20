import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: end-to-end files start real processes, so keep parallelism modest.
    maxWorkers: 2,
    typecheck: { enabled: false },
    setupFiles: ['./vitest.setup.ts'],
  },
});
