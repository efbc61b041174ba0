// OpenTelemetry SDK bootstrap, loaded before the app:  node --require ./dist/otel/bootstrap.js ...
// Configured by the standard OTEL_* variables (docs/telemetry.md, .env.example) and, for the
// request inspector and the DB server timings, by the app's own validated configuration.
import { ConfigError, loadConfig } from '../src/config'
import { publishObservability, startObservability } from '../src/observability'

try {
  publishObservability(startObservability(loadConfig()))
} catch (err) {
  // A bad variable: the server reports it (naming the variable) and exits 2 before serving.
  if (!(err instanceof ConfigError)) throw err
}
