import { createHmac, hkdfSync } from 'node:crypto'
import type { AccountsConfig } from '../config'
import { hashPassword, verifyPassword } from './password'
import type { AccountRepository, ApiTokenSummary, UserRecord } from '../repositories/account-repository'
import { DELETED_AUTHOR, storedNameKey } from './fields'
import { digest, newApiToken, newSecret, sameSecret, seal, unseal } from './secrets'

/** Who is making a request: what routes and templates may use. */
export interface Viewer {
  id: number
  displayName: string
  /** The stored flag, set only by an operator (`npm run user:admin`). */
  isAdmin: boolean
}

/** A live session: the cookie's token (never logged or stored), its CSRF token, its user. */
export interface SessionState {
  token: string
  csrfToken: string
  viewer: Viewer
}

export type Throttled = { status: 'throttled'; retryAfterS: number }
export type SignInOutcome = { status: 'ok'; viewer: Viewer } | { status: 'wrong' } | Throttled
export type PasswordCheck = { status: 'ok' } | { status: 'wrong' } | Throttled

/** New API tokens a user may make per hour (each is a credential: a stolen session must not mint hundreds). */
export const TOKENS_PER_HOUR = 10
/** How long the page after "make a token" may still show it (the redirect is followed at once; this covers a slow link). */
export const NEW_TOKEN_SHOWN_FOR_S = 120

const revealContext = (session: SessionState) => `api-token-reveal\n${session.viewer.id}\n${session.csrfToken}`

const viewerOf = (user: UserRecord): Viewer => ({ id: user.id, displayName: user.displayName, isAdmin: user.isAdmin })

/** Accounts: sign-up, sign-in with throttling, sessions and API tokens. State lives in the database. */
export class AccountService {
  private formKey: Buffer | undefined
  private revealKey: Buffer | undefined

  constructor(
    private readonly repo: AccountRepository,
    private readonly config: AccountsConfig
  ) {}

  /** Loads the secret that signs the forms' tokens before sign-in (stored once, shared by every replica). */
  async start(): Promise<void> {
    this.formKey = Buffer.from(await this.repo.appSecret('form_csrf', newSecret()), 'base64url')
    // Its own key for encryption, derived so that no second secret has to be stored.
    this.revealKey = Buffer.from(hkdfSync('sha256', this.formKey, Buffer.alloc(0), 'api-token-reveal', 32))
  }

  /**
   * The CSRF token of the forms shown before sign-in: an HMAC of the browser's random form cookie
   * (a signed double-submit), so no server-side row is needed for anonymous visitors.
   */
  formToken(cookie: string): string {
    if (!this.formKey) throw new Error('AccountService.start() has not run')
    return createHmac('sha256', this.formKey).update(`form-csrf\n${cookie}`).digest('base64url')
  }

  /** True when `given` is the token of this form cookie. */
  formTokenMatches(cookie: string, given: string): boolean {
    return sameSecret(given, this.formToken(cookie))
  }

  /** Creates a user; says which field is taken instead when the email or the name (or one that looks like it) is. */
  async signUp(email: string, displayName: string, password: string): Promise<{ viewer: Viewer } | { taken: 'email' | 'displayName' }> {
    const nameKey = storedNameKey(displayName)
    if (await this.repo.emailTaken(email)) return { taken: 'email' }
    if (await this.repo.displayNameTaken(displayName, nameKey)) return { taken: 'displayName' }
    const created = await this.repo.createUser(email, displayName, nameKey, await hashPassword(password))
    if ('taken' in created) return created
    return { viewer: viewerOf({ id: created.id, email, displayName, isAdmin: false }) }
  }

  /**
   * Counts the attempt first, then checks the password: past LOGIN_MAX_FAILURES attempts per
   * (canonical email, client) and window the answer is "throttled" before any hashing, however
   * many attempts arrive at once. A success clears the count.
   */
  private async throttledCheck(email: string, client: string, check: () => Promise<boolean>): Promise<PasswordCheck> {
    const key = digest(`${email}\n${client}`)
    const attempt = await this.repo.countAttempt(key, this.config.loginWindowSeconds)
    const max = this.config.loginMaxFailures
    if (attempt > max) return { status: 'throttled', retryAfterS: await this.repo.windowLeft(key) }
    if (await check()) {
      await this.repo.clearFailures(key)
      return { status: 'ok' }
    }
    return attempt === max ? { status: 'throttled', retryAfterS: await this.repo.windowLeft(key) } : { status: 'wrong' }
  }

  /** Signs in by canonical email (src/accounts/fields.ts canonicalEmail) and password. */
  async signIn(email: string, password: string, client: string): Promise<SignInOutcome> {
    const seen: { user?: UserRecord } = {}
    const outcome = await this.throttledCheck(email, client, async () => {
      const found = await this.repo.findByEmail(email)
      // An unknown email costs the same time as a wrong password.
      if (!found) return verifyPassword(password, null)
      seen.user = found.user
      return verifyPassword(password, found.passwordHash)
    })
    return outcome.status === 'ok' && seen.user ? { status: 'ok', viewer: viewerOf(seen.user) } : outcome.status === 'ok' ? { status: 'wrong' } : outcome
  }

  /** Checks a signed-in user's password again (to change it or delete the account), in the same throttle as signing in. */
  async checkPassword(userId: number, password: string, client: string): Promise<PasswordCheck> {
    const found = await this.repo.credentials(userId)
    return this.throttledCheck(found?.email ?? `#${userId}`, client, () => verifyPassword(password, found?.passwordHash ?? null))
  }

  /** Sets a new password and ends every session of the user (the route starts a new one for the browser that asked). */
  async changePassword(userId: number, password: string): Promise<void> {
    await this.repo.setPassword(userId, await hashPassword(password))
  }

  /** A new display name (also shown on the user's posts); 'taken' when another user's name looks the same. */
  async rename(userId: number, displayName: string): Promise<'ok' | 'taken'> {
    const nameKey = storedNameKey(displayName)
    if (await this.repo.displayNameTaken(displayName, nameKey, userId)) return 'taken'
    return this.repo.rename(userId, displayName, nameKey)
  }

  /** Deletes the account, its sessions and tokens; its posts stay, by DELETED_AUTHOR, changeable by admins only. */
  deleteAccount(userId: number): Promise<void> {
    return this.repo.deleteUser(userId, DELETED_AUTHOR)
  }

  /** A new session (a new token: sign-in never reuses one from before). */
  async startSession(viewer: Viewer): Promise<SessionState> {
    const token = newSecret()
    const csrfToken = newSecret()
    await this.repo.createSession(digest(token), viewer.id, csrfToken, this.config.sessionTtlSeconds)
    return { token, csrfToken, viewer }
  }

  /** The live session for a cookie's token, or null (unknown or expired). */
  async findSession(token: string): Promise<SessionState | null> {
    const found = await this.repo.findSession(digest(token))
    return found && { token, csrfToken: found.csrfToken, viewer: viewerOf(found.user) }
  }

  async endSession(token: string): Promise<void> {
    await this.repo.deleteSession(digest(token))
  }

  /** Seconds a session lasts (the cookie's Max-Age). */
  get sessionTtlSeconds(): number {
    return this.config.sessionTtlSeconds
  }

  async viewerForApiToken(token: string): Promise<Viewer | null> {
    const user = await this.repo.userForToken(digest(token))
    return user && viewerOf(user)
  }

  /** Makes a token and returns it (the only time it is shown: only its hash is stored); null past TOKENS_PER_HOUR. */
  async createApiToken(userId: number, name: string): Promise<string | null> {
    if ((await this.repo.tokensMadeSince(userId, 3600)) >= TOKENS_PER_HOUR) return null
    const token = newApiToken()
    await this.repo.createToken(userId, name, digest(token))
    return token
  }

  /**
   * A new token sealed for the one page that shows it (post-redirect-get): the browser carries it
   * across the redirect in a short-lived cookie, so the database still holds only the hash, and
   * it opens only for the same session within NEW_TOKEN_SHOWN_FOR_S.
   */
  sealNewToken(session: SessionState, token: string, now = Date.now()): string {
    if (!this.revealKey) throw new Error('AccountService.start() has not run')
    return seal(this.revealKey, revealContext(session), `${now}\n${token}`)
  }

  /** The token `sealNewToken` sealed for this session, or null (another session, altered, or too old). */
  openNewToken(session: SessionState, sealed: string, now = Date.now()): string | null {
    if (!this.revealKey) throw new Error('AccountService.start() has not run')
    const opened = unseal(this.revealKey, revealContext(session), sealed)
    const cut = opened?.indexOf('\n') ?? -1
    if (opened == null || cut < 0) return null
    const age = now - Number(opened.slice(0, cut))
    return age >= 0 && age <= NEW_TOKEN_SHOWN_FOR_S * 1000 ? opened.slice(cut + 1) : null
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
