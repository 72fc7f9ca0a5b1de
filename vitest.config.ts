import { defineConfig } from 'vitest/config';

// Two groups, one after the other. Most test files wait on real peers (sshd, dockerd, rsync,
// PostgreSQL, a watch's interval) far more than they compute, so they run two at a time even on
// CI's two cores. The few that load the machine themselves (the crash suite runs two fleets at
// once; the HA suite kills leaders 20 times) or judge timing between processes run alone after.
const SOLO = ['test/e2e/crash.test.ts', 'test/e2e/ha-watch.test.ts', 'test/e2e/pg-backend.test.ts', 'test/e2e/apply.test.ts', 'test/e2e/watch-warnings.test.ts'];
const ALL = ['test/**/*.test.ts', 'src/**/*.test.ts', 'providers/**/*.test.ts'];

const common = { testTimeout: 60_000, hookTimeout: 120_000, pool: 'forks' as const };

export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      { test: { ...common, name: 'shared', include: ALL, exclude: SOLO, maxWorkers: 2, sequence: { groupOrder: 0 } } },
      { test: { ...common, name: 'solo', include: SOLO, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
});
