// OpenTelemetry SDK bootstrap, loaded before the app:  node --require ./dist/otel/bootstrap.js ...
// Configured by the standard OTEL_* variables (README "Tracing", .env.example) and, for the
// request inspector, by the app's own validated configuration.
import { ConfigError, loadConfig } from '../src/config'
import { startTelemetry } from '../src/telemetry/sdk'

try {
  const config = loadConfig()
  startTelemetry({ inspector: config.inspector, serverTimings: config.db.serverTimings, otlpProtobufEncoder: config.otlpProtobufEncoder })
} catch (err) {
  // A bad variable: the server reports it (naming the variable) and exits 2 before serving.
  if (!(err instanceof ConfigError)) throw err
}
