import { QueryTypes, UniqueConstraintError, type Sequelize } from 'sequelize'

/** A signed-in user as the app sees one. `isAdmin` is the stored flag only (see the service). */
export interface UserRecord {
  id: number
  email: string | null
  displayName: string
  isAdmin: boolean
}

/** A session row joined to its user (null: a session from before sign-in, for the forms' token). */
export interface SessionRecord {
  csrfToken: string
  user: UserRecord | null
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

/**
 * The account tables: users, sessions, API tokens and the sign-in throttle. Plain objects in and
 * out; secrets arrive here already hashed (session ids, API tokens) or derived (passwords).
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
  async createUser(email: string, displayName: string, passwordHash: string): Promise<{ id: number } | { taken: 'email' | 'displayName' }> {
    try {
      const [result] = await this.sequelize.query(
        'INSERT INTO `user` (`email`, `display_name`, `password_hash`, `created_dt`) VALUES ($1, $2, $3, UTC_TIMESTAMP())',
        { bind: [email, displayName, passwordHash] }
      )
      return { id: Number((result as unknown as { insertId?: number }).insertId ?? result) }
    } catch (err) {
      if (err instanceof UniqueConstraintError || (err as { parent?: { code?: string } }).parent?.code === 'ER_DUP_ENTRY') {
        const key = String((err as { parent?: { sqlMessage?: string } }).parent?.sqlMessage ?? '')
        return { taken: key.includes('uq_user_email') ? 'email' : 'displayName' }
      }
      throw err
    }
  }

  async emailTaken(email: string): Promise<boolean> {
    return (await this.select('SELECT `id` FROM `user` WHERE `email` = $1', [email])).length > 0
  }

  async displayNameTaken(displayName: string): Promise<boolean> {
    return (await this.select('SELECT `id` FROM `user` WHERE `display_name` = $1', [displayName])).length > 0
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

  /** Marks a user as admin; false when no user has that email. */
  async makeAdmin(email: string): Promise<boolean> {
    return (await this.run('UPDATE `user` SET `is_admin` = TRUE WHERE `email` = $1', [email])) > 0
  }

  async createSession(idHash: string, userId: number | null, csrfToken: string, ttlSeconds: number): Promise<void> {
    await this.sequelize.query(
      'INSERT INTO `session` (`id`, `user_id`, `csrf_token`, `created_dt`, `expires_dt`) VALUES ($1, $2, $3, UTC_TIMESTAMP(), DATE_ADD(UTC_TIMESTAMP(), INTERVAL $4 SECOND))',
      { bind: [idHash, userId, csrfToken, String(ttlSeconds)] }
    )
  }

  /** A live session (not expired), or null. */
  async findSession(idHash: string): Promise<SessionRecord | null> {
    const rows = await this.select<{ csrf_token: string } & { [K in keyof UserRow]: UserRow[K] | null }>(SESSION_SQL, [idHash])
    const r = rows[0]
    if (!r) return null
    return { csrfToken: r.csrf_token, user: r.id === null ? null : toUser(r as UserRow) }
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

  /** Seconds until the key may try again, when it has used up its failures; else 0. */
  async throttled(keyHash: string, maxFailures: number): Promise<number> {
    const rows = await this.select<{ wait: number }>(
      'SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), `reset_dt`) AS `wait` FROM `login_throttle` WHERE `key_hash` = $1 AND `failures` >= $2 AND `reset_dt` > UTC_TIMESTAMP()',
      [keyHash, String(maxFailures)]
    )
    return rows[0] ? Math.max(1, Number(rows[0].wait)) : 0
  }

  /** Counts a failure in the key's window (a new window when the last one is over). */
  async recordFailure(keyHash: string, windowSeconds: number): Promise<void> {
    await this.run('DELETE FROM `login_throttle` WHERE `key_hash` = $1 AND `reset_dt` <= UTC_TIMESTAMP()', [keyHash])
    await this.run(
      'INSERT INTO `login_throttle` (`key_hash`, `failures`, `reset_dt`) VALUES ($1, TRUE, DATE_ADD(UTC_TIMESTAMP(), INTERVAL $2 SECOND)) ' +
        'ON DUPLICATE KEY UPDATE `failures` = `failures` + TRUE',
      [keyHash, String(windowSeconds)]
    )
  }

  async clearFailures(keyHash: string): Promise<void> {
    await this.run('DELETE FROM `login_throttle` WHERE `key_hash` = $1', [keyHash])
  }

  /** Removes expired sessions and throttle windows; returns how many rows went. */
  async sweep(): Promise<number> {
    return (
      (await this.run('DELETE FROM `session` WHERE `expires_dt` <= UTC_TIMESTAMP()', [])) +
      (await this.run('DELETE FROM `login_throttle` WHERE `reset_dt` <= UTC_TIMESTAMP()', []))
    )
  }
}
