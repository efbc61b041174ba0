import fp from 'fastify-plugin'

// Fixed messages keyed by a short code: the cookie never carries user content.
const MESSAGES = {
  created: 'Your post was published.',
  updated: 'Your changes were saved.',
  deleted: 'The post was deleted.',
  signedUp: 'Welcome! Your account is ready and you are signed in.',
  signedIn: 'You are signed in.',
  signedOut: 'You are signed out.',
  tokenRevoked: 'The API token was revoked.',
  renamed: 'Your display name was changed, on your posts too.',
  passwordChanged: 'Your password was changed. Other browsers signed in as you were signed out.',
  accountDeleted: 'Your account was deleted. Your posts stay, shown as by “deleted user”.'
} as const
export type FlashKind = keyof typeof MESSAGES
const COOKIE = 'flash'

declare module 'fastify' {
  interface FastifyReply {
    /** Shows a one-time message on the next page this browser loads. */
    flash(kind: FlashKind): this
    /** Reads and clears the pending message, if any. */
    takeFlash(): string | null
  }
}

export default fp(
  async (fastify) => {
    fastify.decorateReply('flash', function (kind: FlashKind) {
      return this.setCookie(COOKIE, kind, { path: '/', httpOnly: true, sameSite: 'lax', maxAge: 60 })
    })
    fastify.decorateReply('takeFlash', function () {
      const kind = this.request.cookies[COOKIE]
      if (kind === undefined) return null
      this.clearCookie(COOKIE, { path: '/' })
      return Object.hasOwn(MESSAGES, kind) ? MESSAGES[kind as FlashKind] : null
    })
  },
  { name: 'flash', dependencies: ['@fastify/cookie'] }
)
