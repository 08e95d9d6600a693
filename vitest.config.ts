import { defineConfig } from 'vitest/config';

// Two projects: `unit` runs in-process (no broker); `integration` (*.int.test.ts) runs against a
// real Kafka broker that test/global-setup.ts starts once (or KAFKA_BROKERS when set).
export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.int.test.ts', 'node_modules/**'],
          // A safety net, not a speed assertion: the property tests take seconds, more on a loaded CI box.
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // The broker shares 2 cores with the tests: run integration files one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
