import pino from 'pino'
import { loadConfig } from '../config'
import { migrate, prepareDatabase, seed, withMigrationLock } from '../db/bootstrap'
import { createSequelize } from '../db/sequelize'

// `npm run db:migrate` / `npm run db:seed`: the same steps the server runs at start-up.
async function main(command: string | undefined): Promise<void> {
  if (command !== 'migrate' && command !== 'seed') throw new Error('usage: db.js migrate|seed')
  const config = loadConfig()
  const log = pino({ level: config.logLevel })
  await prepareDatabase(config.db, log)
  const sequelize = createSequelize(config.db)
  try {
    await withMigrationLock(config.db, log, async () => {
      await migrate(sequelize, log)
      if (command === 'seed') await seed(sequelize, log)
    })
  } finally {
    await sequelize.close()
  }
}

main(process.argv[2]).catch((err: unknown) => {
  process.stderr.write(`blog_app db: ${(err as Error).message}\n`)
  process.exit(1)
})
