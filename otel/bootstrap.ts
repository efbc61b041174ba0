// OpenTelemetry SDK bootstrap, loaded before the app:  node --require ./dist/otel/bootstrap.js ...
// Configured by the standard OTEL_* variables (see README "Tracing" and .env.example).
import { startTelemetry } from './sdk'

startTelemetry()
