import pino from 'pino'
import { canonicalEmail } from '../accounts/fields'
import { AccountRepository, type AccountSummary } from '../repositories/account-repository'
import { loadConfig } from '../config'
import { migrate, prepareDatabase } from '../db/bootstrap'
import { createSequelize } from '../db/sequelize'

const USAGE = 'usage: npm run user:admin -- <email>   (or: node dist/src/cli/user.js admin|unadmin <email>)'

/** Characters beyond ASCII as \u{...}, so an operator sees a look-alike for what it is. */
const visible = (text: string) => text.replace(/[^\x20-\x7e]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}`)

function describe(account: AccountSummary): string {
  const email = account.email ?? ''
  const lines = [
    `  user id:      ${account.id}`,
    `  email:        ${email}${visible(email) === email ? '' : `  (as code points: ${visible(email)})`}`,
    `  display name: ${visible(account.displayName)}`,
    `  signed up:    ${account.createdAt}`
  ]
  return lines.join('\n')
}

// `npm run user:admin -- email`: makes the one existing account whose canonical email is exactly
// this one an admin (they may change any post), and shows it. The only way to make an admin.
async function main(command: string | undefined, email: string | undefined): Promise<void> {
  if ((command !== 'admin' && command !== 'unadmin') || !email) throw new Error(USAGE)
  const config = loadConfig()
  const log = pino({ level: config.logLevel })
  await prepareDatabase(config.db, log)
  const sequelize = createSequelize(config.db)
  try {
    await migrate(sequelize, log)
    // The same canonical form as sign-up and sign-in; the column compares bytes, so a look-alike
    // (`ｃｈｉｅｆ@`, another script's letters) is another account, never this one.
    const canonical = canonicalEmail(email).email
    const repo = new AccountRepository(sequelize)
    const account = await repo.accountByEmail(canonical)
    if (!account) throw new Error(`no user has the email ${canonical}${visible(canonical) === canonical ? '' : ` (${visible(canonical)})`}; nothing changed (the account must sign up first)`)
    const makeAdmin = command === 'admin'
    await repo.setAdmin(account.id, makeAdmin)
    process.stdout.write(`${account.email} ${makeAdmin ? 'is now an admin' : 'is no longer an admin'}${account.isAdmin === makeAdmin ? ' (unchanged)' : ''}:\n${describe(account)}\n`)
  } finally {
    await sequelize.close()
  }
}

main(process.argv[2], process.argv[3]).catch((err: unknown) => {
  process.stderr.write(`blog_app user: ${(err as Error).message}\n`)
  process.exit(1)
})
