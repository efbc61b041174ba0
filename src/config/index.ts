// The app's configuration: the environment's schema (./schema.ts), the typed objects built from it
// (./types.ts), the parsers of the structured variables (./parse.ts) and loadConfig (./load.ts).
export { loadConfig } from './load'
export { ConfigError, parseDatabaseUrl } from './parse'
export type { AccountsConfig, AppConfig, DbConfig, InspectorConfig, LoadConfig, S3Config, StorageConfig } from './types'
