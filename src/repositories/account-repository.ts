import { QueryTypes, UniqueConstraintError, type Sequelize } from 'sequelize'

/** A signed-in user as the app sees one. `isAdmin` is the stored flag only (see the service). */
export interface UserRecord {
  id: number
  email: string | null
  displayName: string
  isAdmin: boolean
}

/** A session row joined to its (signed-in) user. */
export interface SessionRecord {
  csrfToken: string
  user: UserRecord
}

/** What the CLI shows of the account it changes. */
export interface AccountSummary extends UserRecord {
  /** ISO 8601 UTC. */
  createdAt: string
}

export interface ApiTokenSummary {
  id: number
  name: string
  /** ISO 8601 UTC. */
  createdAt: string
  lastUsedAt: string | null
}

interface UserRow {
  id: number
  email: string | null
  display_name: string
  is_admin: number
}

const toUser = (r: UserRow): UserRecord => ({ id: r.id, email: r.email, displayName: r.display_name, isAdmin: r.is_admin === 1 })

const ISO = (column: string) => `DATE_FORMAT(${column}, '%Y-%m-%dT%H:%i:%sZ')`

const SESSION_SQL =
  'SELECT `session`.`csrf_token`, `user`.`id`, `user`.`email`, `user`.`display_name`, `user`.`is_admin` ' +
  'FROM `session` LEFT JOIN `user` ON `user`.`id` = `session`.`user_id` ' +
  'WHERE `session`.`id` = $1 AND `session`.`expires_dt` > UTC_TIMESTAMP()'

const TOKEN_SQL =
  'SELECT `user`.`id`, `user`.`email`, `user`.`display_name`, `user`.`is_admin` ' +
  'FROM `api_token` JOIN `user` ON `user`.`id` = `api_token`.`user_id` WHERE `api_token`.`token_hash` = $1'

const isDuplicate = (err: unknown) => err instanceof UniqueConstraintError || (err as { parent?: { code?: string } }).parent?.code === 'ER_DUP_ENTRY'
const duplicateKey = (err: unknown) => String((err as { parent?: { sqlMessage?: string } }).parent?.sqlMessage ?? '')

/**
 * The account tables: users, sessions, API tokens and the sign-in throttle. Plain objects in and
 * out; secrets arrive here already hashed (session ids, API tokens) or derived (passwords).
 * Emails arrive canonical (src/accounts/fields.ts) and are compared as bytes (utf8mb4_bin);
 * display names are unique by their look-alike key (`display_name_key`).
 */
export class AccountRepository {
  constructor(private readonly sequelize: Sequelize) {}

  private select<T extends object>(sql: string, bind: unknown[]): Promise<T[]> {
    return this.sequelize.query<T>(sql, { type: QueryTypes.SELECT, bind })
  }

  private async run(sql: string, bind: unknown[]): Promise<number> {
    const [result] = await this.sequelize.query(sql, { bind })
    return (result as { affectedRows?: number }).affectedRows ?? 0
  }

  /** The new user's id, or which unique field is taken. */
  async createUser(email: string, displayName: string, nameKey: string, passwordHash: string): Promise<{ id: number } | { taken: 'email' | 'displayName' }> {
    try {
      const [result] = await this.sequelize.query(
        'INSERT INTO `user` (`email`, `display_name`, `display_name_key`, `password_hash`, `created_dt`) VALUES ($1, $2, $3, $4, UTC_TIMESTAMP())',
        { bind: [email, displayName, nameKey, passwordHash] }
      )
      return { id: Number((result as unknown as { insertId?: number }).insertId ?? result) }
    } catch (err) {
      if (isDuplicate(err)) return { taken: duplicateKey(err).includes('uq_user_email') ? 'email' : 'displayName' }
      throw err
    }
  }

  async emailTaken(email: string): Promise<boolean> {
    return (await this.select('SELECT `id` FROM `user` WHERE `email` = $1', [email])).length > 0
  }

  /** True when another user's name has this key, or is equal by the column's collation. */
  async displayNameTaken(displayName: string, nameKey: string, exceptUserId = 0): Promise<boolean> {
    const rows = await this.select('SELECT `id` FROM `user` WHERE (`display_name_key` = $1 OR `display_name` = $2) AND `id` <> $3', [nameKey, displayName, exceptUserId])
    return rows.length > 0
  }

  /** The user with this email and their password hash (null: none, or no password). */
  async findByEmail(email: string): Promise<{ user: UserRecord; passwordHash: string | null } | null> {
    const rows = await this.select<UserRow & { password_hash: string | null }>(
      'SELECT `id`, `email`, `display_name`, `is_admin`, `password_hash` FROM `user` WHERE `email` = $1',
      [email]
    )
    const r = rows[0]
    return r ? { user: toUser(r), passwordHash: r.password_hash } : null
  }

  /** The account with exactly this (canonical) email, for the CLI to show; null: none. */
  async accountByEmail(email: string): Promise<AccountSummary | null> {
    const rows = await this.select<UserRow & { created: string }>(
      `SELECT \`id\`, \`email\`, \`display_name\`, \`is_admin\`, ${ISO('`created_dt`')} AS \`created\` FROM \`user\` WHERE \`email\` = $1`,
      [email]
    )
    const r = rows[0]
    return r ? { ...toUser(r), createdAt: r.created } : null
  }

  /** Marks one user, by id, as admin. */
  async setAdmin(userId: number, isAdmin: boolean): Promise<void> {
    await this.run('UPDATE `user` SET `is_admin` = $1 WHERE `id` = $2', [isAdmin ? 1 : 0, userId])
  }

  /** The user's email and password hash (null: no such user). */
  async credentials(userId: number): Promise<{ email: string | null; passwordHash: string | null } | null> {
    const rows = await this.select<{ email: string | null; password_hash: string | null }>('SELECT `email`, `password_hash` FROM `user` WHERE `id` = $1', [userId])
    const r = rows[0]
    return r ? { email: r.email, passwordHash: r.password_hash } : null
  }

  /** A new password; every session of the user ends (API tokens stay: they are revoked one by one on the account page). */
  async setPassword(userId: number, passwordHash: string): Promise<void> {
    await this.sequelize.transaction(async (transaction) => {
      await this.sequelize.query('UPDATE `user` SET `password_hash` = $1 WHERE `id` = $2', { bind: [passwordHash, userId], transaction })
      await this.sequelize.query('DELETE FROM `session` WHERE `user_id` = $1', { bind: [userId], transaction })
    })
  }

  /**
   * Renames a user and the author shown on their posts, in one transaction; 'taken' when another
   * user's name has the same key (the unique key decides, whatever raced).
   */
  async rename(userId: number, displayName: string, nameKey: string): Promise<'ok' | 'taken'> {
    try {
      await this.sequelize.transaction(async (transaction) => {
        await this.sequelize.query('UPDATE `user` SET `display_name` = $1, `display_name_key` = $2 WHERE `id` = $3', { bind: [displayName, nameKey, userId], transaction })
        await this.sequelize.query('UPDATE `blog` SET `author` = $1 WHERE `user_id` = $2', { bind: [displayName, userId], transaction })
      })
      return 'ok'
    } catch (err) {
      if (isDuplicate(err)) return 'taken'
      throw err
    }
  }

  /**
   * Deletes a user: their sessions and API tokens go with the row (ON DELETE CASCADE); their
   * posts stay, shown as by `deletedAuthor` and owned by nobody (only admins may change them).
   */
  async deleteUser(userId: number, deletedAuthor: string): Promise<void> {
    await this.sequelize.transaction(async (transaction) => {
      await this.sequelize.query('UPDATE `blog` SET `author` = $1, `user_id` = NULL WHERE `user_id` = $2', { bind: [deletedAuthor, userId], transaction })
      await this.sequelize.query('DELETE FROM `user` WHERE `id` = $1', { bind: [userId], transaction })
    })
  }

  async createSession(idHash: string, userId: number, csrfToken: string, ttlSeconds: number): Promise<void> {
    await this.sequelize.query(
      'INSERT INTO `session` (`id`, `user_id`, `csrf_token`, `created_dt`, `expires_dt`) VALUES ($1, $2, $3, UTC_TIMESTAMP(), DATE_ADD(UTC_TIMESTAMP(), INTERVAL $4 SECOND))',
      { bind: [idHash, userId, csrfToken, String(ttlSeconds)] }
    )
  }

  /** A live session (not expired), or null. */
  async findSession(idHash: string): Promise<SessionRecord | null> {
    const rows = await this.select<{ csrf_token: string } & { [K in keyof UserRow]: UserRow[K] | null }>(SESSION_SQL, [idHash])
    const r = rows[0]
    // A session without a user (the anonymous kind from before migration 004) is no session.
    return r && r.id !== null ? { csrfToken: r.csrf_token, user: toUser(r as UserRow) } : null
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.run('DELETE FROM `session` WHERE `id` = $1', [idHash])
  }

  /** The user an API token belongs to (and notes its use), or null. */
  async userForToken(tokenHash: string): Promise<UserRecord | null> {
    const rows = await this.select<UserRow>(TOKEN_SQL, [tokenHash])
    const r = rows[0]
    if (!r) return null
    await this.run('UPDATE `api_token` SET `last_used_dt` = UTC_TIMESTAMP() WHERE `token_hash` = $1', [tokenHash])
    return toUser(r)
  }

  async createToken(userId: number, name: string, tokenHash: string): Promise<void> {
    await this.sequelize.query(
      'INSERT INTO `api_token` (`user_id`, `name`, `token_hash`, `created_dt`) VALUES ($1, $2, $3, UTC_TIMESTAMP())',
      { bind: [userId, name, tokenHash] }
    )
  }

  /** How many API tokens the user made in the last `seconds`. */
  async tokensMadeSince(userId: number, seconds: number): Promise<number> {
    const rows = await this.select<{ n: number }>(
      'SELECT COUNT(*) AS `n` FROM `api_token` WHERE `user_id` = $1 AND `created_dt` > DATE_SUB(UTC_TIMESTAMP(), INTERVAL $2 SECOND)',
      [userId, String(seconds)]
    )
    return Number(rows[0]?.n ?? 0)
  }

  async listTokens(userId: number): Promise<ApiTokenSummary[]> {
    const rows = await this.select<{ id: number; name: string; created: string; used: string | null }>(
      `SELECT \`id\`, \`name\`, ${ISO('`created_dt`')} AS \`created\`, ${ISO('`last_used_dt`')} AS \`used\` FROM \`api_token\` WHERE \`user_id\` = $1 ORDER BY \`id\``,
      [userId]
    )
    return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created, lastUsedAt: r.used }))
  }

  /** Revokes one of the user's tokens; false when they have no such token. */
  async deleteToken(userId: number, id: number): Promise<boolean> {
    return (await this.run('DELETE FROM `api_token` WHERE `id` = $1 AND `user_id` = $2', [id, userId])) > 0
  }

  /**
   * Counts one more password attempt in the key's window (a new window when the last one is
   * over) and returns the count with this one, in one statement: concurrent attempts each get a
   * distinct count (the row lock orders them), so no more than the limit are ever let through.
   * LAST_INSERT_ID(expr) hands the new count back in the statement's own result.
   */
  async countAttempt(keyHash: string, windowSeconds: number): Promise<number> {
    const [result] = await this.sequelize.query(
      'INSERT INTO `login_throttle` (`key_hash`, `failures`, `reset_dt`) VALUES ($1, LAST_INSERT_ID(1), DATE_ADD(UTC_TIMESTAMP(), INTERVAL $2 SECOND)) ' +
        'ON DUPLICATE KEY UPDATE `failures` = LAST_INSERT_ID(IF(`reset_dt` <= UTC_TIMESTAMP(), 1, `failures` + 1)), ' +
        '`reset_dt` = IF(`reset_dt` <= UTC_TIMESTAMP(), DATE_ADD(UTC_TIMESTAMP(), INTERVAL $2 SECOND), `reset_dt`)',
      { bind: [keyHash, String(windowSeconds)] }
    )
    return Number((result as unknown as { insertId?: number }).insertId ?? result)
  }

  /** Seconds until the key's window ends (at least 1). */
  async windowLeft(keyHash: string): Promise<number> {
    const rows = await this.select<{ wait: number }>('SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), `reset_dt`) AS `wait` FROM `login_throttle` WHERE `key_hash` = $1', [keyHash])
    return Math.max(1, Number(rows[0]?.wait ?? 1))
  }

  async clearFailures(keyHash: string): Promise<void> {
    await this.run('DELETE FROM `login_throttle` WHERE `key_hash` = $1', [keyHash])
  }

  /**
   * The app's secret of this name, shared by every replica: `candidate` is stored when there is
   * none yet (the first replica to ask wins; the others read its secret).
   */
  async appSecret(name: string, candidate: string): Promise<string> {
    await this.run('INSERT IGNORE INTO `app_secret` (`name`, `secret`, `created_dt`) VALUES ($1, $2, UTC_TIMESTAMP())', [name, candidate])
    const rows = await this.select<{ secret: string }>('SELECT `secret` FROM `app_secret` WHERE `name` = $1', [name])
    return rows[0]!.secret
  }

  /** Removes expired sessions and throttle windows; returns how many rows went. */
  async sweep(): Promise<number> {
    return (
      (await this.run('DELETE FROM `session` WHERE `expires_dt` <= UTC_TIMESTAMP()', [])) +
      (await this.run('DELETE FROM `login_throttle` WHERE `reset_dt` <= UTC_TIMESTAMP()', []))
    )
  }
}
