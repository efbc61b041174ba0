import { startTelemetry } from '../../src/telemetry/sdk'
import { telemetryRuntime } from '../../src/telemetry/runtime'

// Import this FIRST in a test file: it starts the OpenTelemetry SDK in the test's own process (as
// otel/bootstrap does with --require), before anything loads mysql2, so the instrumentation patches
// it. Spans go to the inspector's in-memory buffer (`runtime.traces`).
export const sdk = startTelemetry({ inspector: { enabled: true, maxTraces: 100, maxBytes: 4 << 20 }, serverTimings: { enabled: false, pollMs: 250 } })
export const runtime = telemetryRuntime()!
