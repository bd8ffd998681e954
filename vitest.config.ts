import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // integration and workflow suites start PostgreSQL clusters; two cores do not run many at once well
    maxWorkers: 2,
    minWorkers: 1,
    pool: 'forks',
  },
});
