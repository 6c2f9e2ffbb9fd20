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
    // expect.poll's own default (1 s) is shorter than a page's first fetches take on two
    // loaded cores (CI saw '#cluster' still empty after 1 s): browser tests poll up to 10 s.
    expect: { poll: { timeout: 10_000 } },
  },
});
