import { defineConfig } from 'vitest/config'

// Three tiers, so a newcomer runs only what their change needs:
//   unit  no database, no child processes that need one       (npm test)
//   app   the real MySQL/MariaDB and the compiled app only     (npm test)
//   e2e   real binaries: Jaeger, the Collector, Prometheus, Chromium, private MariaDB servers,
//         the bench harness                                    (npm run test:e2e, after tools)
const shared = {
  // Tests spawn real servers and talk to a real database: give them time, and run files in
  // separate processes (each test file creates and drops its own database).
  pool: 'forks' as const,
  testTimeout: 30_000,
  hookTimeout: 60_000
}

export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      { test: { ...shared, name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { ...shared, name: 'app', include: ['test/app/**/*.test.ts'] } },
      { test: { ...shared, name: 'e2e', include: ['test/e2e/**/*.test.ts'] } }
    ]
  }
})
