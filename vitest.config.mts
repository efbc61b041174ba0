import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests talk to real MariaDB and spawn real servers: give them time, and run files in
    // separate processes (each test file creates and drops its own database).
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default']
  }
})
