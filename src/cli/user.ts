import pino from 'pino'
import { AccountRepository } from '../repositories/account-repository'
import { loadConfig } from '../config'
import { migrate, prepareDatabase } from '../db/bootstrap'
import { createSequelize } from '../db/sequelize'

// `npm run user:admin -- email`: makes an existing user an admin (they may change any post).
async function main(command: string | undefined, email: string | undefined): Promise<void> {
  if (command !== 'admin' || !email) throw new Error('usage: npm run user:admin -- <email>')
  const config = loadConfig()
  const log = pino({ level: config.logLevel })
  await prepareDatabase(config.db, log)
  const sequelize = createSequelize(config.db)
  try {
    await migrate(sequelize, log)
    const normal = email.trim().toLowerCase()
    if (!(await new AccountRepository(sequelize).makeAdmin(normal))) throw new Error(`no user has the email ${normal} (sign up first)`)
    process.stdout.write(`${normal} is now an admin\n`)
  } finally {
    await sequelize.close()
  }
}

main(process.argv[2], process.argv[3]).catch((err: unknown) => {
  process.stderr.write(`blog_app user: ${(err as Error).message}\n`)
  process.exit(1)
})
