import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { anonymousForm, csrfOf, makeApiToken, send, setCookie, signIn, signUp } from '../../kit/accounts'
import { parseTraceHeader } from '../../kit/otlp-receiver'
import { request } from '../../kit/server'
import { useTracedServer } from '../../kit/traced-server'

// No password, session token, CSRF token or API token in anything the app exports (spans,
// metrics) or logs, byte for byte, for a sign-up, a failed and a good sign-in, and a delete
// with an API token. Logs at debug, so nothing is hidden by the level.

const s = useTracedServer({ LOG_LEVEL: 'debug' })

describe('secrets in telemetry and logs', () => {
  it('a sign-in exports and logs neither the password nor the tokens', async () => {
    const password = `Pw${randomBytes(12).toString('hex')}`
    const wrong = `Wrong${randomBytes(12).toString('hex')}`
    const account = await signUp(s.child.port, { password })
    const failed = await signIn(s.child.port, account.email, wrong)
    expect(failed.res.status).toBe(401)
    const anon = await anonymousForm(s.child.port)
    const ok = await signIn(s.child.port, account.email, password, anon)
    expect(ok.res.status).toBe(303)
    const sessionToken = ok.cookie!.split('=')[1]!

    // A token made on the account page, used for a JSON delete.
    const csrf = csrfOf((await send(s.child.port, 'GET', '/account', { cookie: ok.cookie })).body)
    const { token: apiToken, carried: sealedToken } = await makeApiToken(s.child.port, { cookie: ok.cookie!, csrf }, 'ci')
    const del = await request(s.child.port, { method: 'DELETE', path: '/blogs/delete/999999', headers: { authorization: `Bearer ${apiToken}` } })
    expect(del.status).toBe(404)

    // Wait for the traces of the sign-in and the delete to be exported.
    for (const res of [ok.res, del]) await s.receiver.waitForTrace(parseTraceHeader(String(res.headers.traceresponse)).traceId)
    await sleep(200)

    // The key that signs the forms' tokens before sign-in (stored once, at start-up).
    const [formKey] = await s.env.query<{ secret: string }>('SELECT `secret` FROM `app_secret`')
    const secrets = { password, wrong, sessionToken, anonymousToken: anon.cookie.split('=')[1]!, csrf, anonymousCsrf: anon.csrf, apiToken, apiTokenBody: apiToken.slice(8), sealedToken, formKey: formKey!.secret }
    const logs = s.child.stdout() + s.child.stderr()
    expect(logs).toContain('/account/signin')
    expect(s.receiver.requests.length).toBeGreaterThan(0)
    for (const [what, secret] of Object.entries(secrets)) {
      expect(logs.includes(secret), `${what} in the logs`).toBe(false)
      for (const r of s.receiver.requests) expect(r.body.includes(secret), `${what} in an export to ${r.path}`).toBe(false)
    }
    expect(setCookie({ status: 0, headers: ok.res.headers, body: '' }, 'blog_session')).toBe(sessionToken)
  })
})
