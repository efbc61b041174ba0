import type { AccountsConfig } from '../config'
import { hashPassword, verifyPassword } from './password'
import type { AccountRepository, ApiTokenSummary, UserRecord } from '../repositories/account-repository'
import { digest, newApiToken, newSecret } from './secrets'

/** Who is making a request: what routes and templates may use. */
export interface Viewer {
  id: number
  displayName: string
  /** Stored flag or ADMIN_EMAILS. */
  isAdmin: boolean
}

/** A live session: the cookie's token (never logged or stored), its CSRF token, its user. */
export interface SessionState {
  token: string
  csrfToken: string
  viewer: Viewer | null
}

export type SignInOutcome = { status: 'ok'; viewer: Viewer } | { status: 'wrong' } | { status: 'throttled'; retryAfterS: number }

// Anonymous sessions exist only to give the sign-in and sign-up forms a CSRF token.
const ANONYMOUS_TTL_S = 3600

/** Accounts: sign-up, sign-in with throttling, sessions and API tokens. State lives in the database. */
export class AccountService {
  constructor(
    private readonly repo: AccountRepository,
    private readonly config: AccountsConfig
  ) {}

  private viewerOf(user: UserRecord): Viewer {
    const isAdmin = user.isAdmin || (user.email !== null && this.config.adminEmails.has(user.email))
    return { id: user.id, displayName: user.displayName, isAdmin }
  }

  /** Creates a user; says which field is taken instead when the email or the name is. */
  async signUp(email: string, displayName: string, password: string): Promise<{ viewer: Viewer } | { taken: 'email' | 'displayName' }> {
    if (await this.repo.emailTaken(email)) return { taken: 'email' }
    if (await this.repo.displayNameTaken(displayName)) return { taken: 'displayName' }
    const created = await this.repo.createUser(email, displayName, await hashPassword(password))
    if ('taken' in created) return created
    return { viewer: this.viewerOf({ id: created.id, email, displayName, isAdmin: false }) }
  }

  /**
   * Checks a password, counting failures per (email, client): past the limit the answer is
   * "throttled" before any hashing, until the window ends.
   */
  async signIn(email: string, password: string, client: string): Promise<SignInOutcome> {
    const key = digest(`${email}\n${client}`)
    const wait = await this.repo.throttled(key, this.config.loginMaxFailures)
    if (wait > 0) return { status: 'throttled', retryAfterS: wait }
    const found = await this.repo.findByEmail(email)
    if (found && (await verifyPassword(password, found.passwordHash))) {
      await this.repo.clearFailures(key)
      return { status: 'ok', viewer: this.viewerOf(found.user) }
    }
    if (!found) await verifyPassword(password, null)
    await this.repo.recordFailure(key, this.config.loginWindowSeconds)
    const now = await this.repo.throttled(key, this.config.loginMaxFailures)
    return now > 0 ? { status: 'throttled', retryAfterS: now } : { status: 'wrong' }
  }

  /** A new session (a new token: sign-in never reuses the one from before). */
  async startSession(viewer: Viewer | null): Promise<SessionState> {
    const token = newSecret()
    const csrfToken = newSecret()
    await this.repo.createSession(digest(token), viewer?.id ?? null, csrfToken, viewer ? this.config.sessionTtlSeconds : ANONYMOUS_TTL_S)
    return { token, csrfToken, viewer }
  }

  /** The live session for a cookie's token, or null (unknown or expired). */
  async findSession(token: string): Promise<SessionState | null> {
    const found = await this.repo.findSession(digest(token))
    return found && { token, csrfToken: found.csrfToken, viewer: found.user && this.viewerOf(found.user) }
  }

  async endSession(token: string): Promise<void> {
    await this.repo.deleteSession(digest(token))
  }

  /** Seconds a signed-in session lasts (the cookie's Max-Age). */
  sessionTtlSeconds(signedIn: boolean): number {
    return signedIn ? this.config.sessionTtlSeconds : ANONYMOUS_TTL_S
  }

  async viewerForApiToken(token: string): Promise<Viewer | null> {
    const user = await this.repo.userForToken(digest(token))
    return user && this.viewerOf(user)
  }

  /** Makes a token and returns it: the only time it is ever shown (only its hash is stored). */
  async createApiToken(userId: number, name: string): Promise<string> {
    const token = newApiToken()
    await this.repo.createToken(userId, name, digest(token))
    return token
  }

  listApiTokens(userId: number): Promise<ApiTokenSummary[]> {
    return this.repo.listTokens(userId)
  }

  revokeApiToken(userId: number, id: number): Promise<boolean> {
    return this.repo.deleteToken(userId, id)
  }

  sweep(): Promise<number> {
    return this.repo.sweep()
  }
}
