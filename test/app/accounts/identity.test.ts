import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../../../src/paths'
import { useTestApp, type TestEnv } from '../../kit/app'
import {
  anonymousForm, csrfFor, FORM_HEADERS, newPassword, send, setCookie, signIn, signUp, urlencoded, type Account
} from '../../kit/accounts'
import { createPost, rowById, unique } from '../../kit/posts'
import { assertBuilt, startServer } from '../../kit/server'

// Issue 25, "Identity, done right": each numbered item as an attacker tried it on the accounts
// as first shipped. Every test here failed on that code.

let env: TestEnv
let app: FastifyInstance
useTestApp((t) => ({ env, app } = t), { LOGIN_MAX_FAILURES: '3' })

const tag = () => randomBytes(4).toString('hex')

/** Sends the sign-up form with a fresh form token; returns the response. */
async function trySignUp(fields: { email?: string; display_name?: string; password?: string }) {
  const anon = await anonymousForm(app, 'signup')
  return send(app, 'POST', '/account/signup', {
    cookie: anon.cookie,
    headers: FORM_HEADERS,
    body: urlencoded({ _csrf: anon.csrf, email: `u-${tag()}@example.test`, display_name: `Someone ${tag()}`, password: newPassword(), ...fields })
  })
}

const userCli = (...args: string[]) =>
  promisify(execFile)(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'user.js'), ...args], { cwd: ROOT, env: { ...env.env, LOG_LEVEL: 'silent' } })

describe('1. one canonical email', () => {
  it('stores the canonical form (NFKC, case folded) in a binary-collated column with a unique key', async () => {
    const t = tag()
    const account = await signUp(app, { email: `ＣＨＩＥＦ-${t}@Example.test` })
    const rows = await env.query<{ email: string }>('SELECT `email` FROM `user` WHERE `display_name` = ?', [account.displayName])
    expect(rows).toEqual([{ email: `chief-${t}@example.test` }])
    const [column] = await env.query<{ COLLATION_NAME: string }>(
      "SELECT `COLLATION_NAME` FROM information_schema.`COLUMNS` WHERE `TABLE_SCHEMA` = ? AND `TABLE_NAME` = 'user' AND `COLUMN_NAME` = 'email'",
      [env.database]
    )
    expect(column!.COLLATION_NAME).toBe('utf8mb4_bin')
    const keys = await env.query<{ Key_name: string; Non_unique: number }>("SHOW INDEX FROM `user` WHERE `Column_name` = 'email'")
    expect(keys).toEqual([expect.objectContaining({ Key_name: 'uq_user_email', Non_unique: 0 })])
    // Any spelling of it signs in to that account.
    expect((await signIn(app, `chief-${t}@example.test`, account.password)).res.status).toBe(303)
    expect((await signIn(app, `ｃｈｉｅｆ-${t}@EXAMPLE.TEST`, account.password)).res.status).toBe(303)
  })

  it('refuses invisible and mixed-script look-alikes at sign-up, creating nobody', async () => {
    const t = tag()
    for (const email of [`ali\u200dce-${t}@example.test`, `ali\u200bce-${t}@example.test`, `\u0430lice-${t}@example.test`, `alice-${t}@\u0435xample.test`, `alice-${t}\u{E0041}@example.test`]) {
      const res = await trySignUp({ email })
      expect(res.status, JSON.stringify(email)).toBe(400)
      expect(res.body).toMatch(/invisible characters|different scripts/)
    }
    expect(await env.query('SELECT `id` FROM `user` WHERE `email` LIKE ?', [`%${t}%`])).toEqual([])
  })

  it('the CLI changes exactly the account whose canonical email matches, shows it, and refuses when none does', async () => {
    assertBuilt()
    const t = tag()
    const chief = await signUp(app, { email: `chief-${t}@example.test`, displayName: `Chief ${t}` })
    // A look-alike left from before (the binary column holds it as another address).
    await env.query('INSERT INTO `user` (`email`, `display_name`, `display_name_key`) VALUES (?, ?, ?)', [`\u0441hief-${t}@example.test`, `Mallory ${t}`, t.padEnd(64, '0')])
    const { stdout } = await userCli('admin', `ＣＨＩＥＦ-${t}@example.test`)
    expect(stdout).toContain(`chief-${t}@example.test is now an admin`)
    expect(stdout).toContain(`display name: Chief ${t}`)
    const admins = await env.query<{ display_name: string }>('SELECT `display_name` FROM `user` WHERE `is_admin` = 1 AND `display_name` LIKE ?', [`%${t}`])
    expect(admins).toEqual([{ display_name: chief.displayName }])

    const failed = await userCli('admin', `chief-${t}@example.tes`).then(() => null, (err: { code?: number; stderr?: string }) => err)
    expect(failed?.code).toBe(1)
    expect(failed?.stderr).toContain(`no user has the email chief-${t}@example.tes`)
    expect(failed?.stderr).toContain('nothing changed')
  })
})

describe('2. admin rights never come from what a sign-up form typed', () => {
  it('the server refuses to start with ADMIN_EMAILS set, and says how admins are made', async () => {
    assertBuilt()
    const child = await startServer({ ...env.env, ADMIN_EMAILS: 'boss@example.test', LOG_LEVEL: 'info' })
    const exit = await Promise.race([child.exited, sleep(15_000).then(() => null)])
    if (!exit) await child.kill()
    expect(exit?.code, 'the server should exit at once').toBe(2)
    expect(child.stdout() + child.stderr()).toMatch(/ADMIN_EMAILS is no longer read.*npm run user:admin/)
  })

  it('an account signed up with any address is not an admin', async () => {
    const boss = await signUp(app, { email: `admin-${tag()}@example.test` })
    const post = await createPost(app, env, {}, undefined)
    expect((await send(app, 'GET', `/blogs/modify/${post.id}`, { cookie: boss.cookie })).status).toBe(403)
    expect((await send(app, 'GET', '/account', { cookie: boss.cookie })).body).not.toContain('(admin)')
  })
})

describe('3. the sign-in throttle counts every guess', () => {
  it('shares one budget between every spelling of the email: after 3 failures no spelling gets in, even with the right password', async () => {
    const t = tag()
    const alice = await signUp(app, { email: `alice-${t}@example.test` })
    const anon = await anonymousForm(app)
    for (let i = 1; i <= 3; i++) expect((await signIn(app, `alice-${t}@example.test`, 'wrong password!', anon)).res.status).toBe(i < 3 ? 401 : 429)
    for (const spelling of [`ALICE-${t}@example.test`, `ａｌｉｃｅ-${t}@example.test`, `alıce-${t}@example.test`, ` Alice-${t}@Example.Test `]) {
      const { res } = await signIn(app, spelling, alice.password, anon)
      expect(res.status, spelling).toBe(429)
    }
    // Spellings that are other addresses (an accent, a zero-width joiner) are not Alice's account.
    for (const other of [`alicé-${t}@example.test`, `alice\u0301-${t}@example.test`, `ali\u200dce-${t}@example.test`, `ALİCE-${t}@example.test`]) {
      expect((await signIn(app, other, alice.password, anon)).res.status, other).toBe(401)
    }
  })

  it('tries no more than LOGIN_MAX_FAILURES passwords when 30 arrive at once (the right one, sent last, is not among them)', async () => {
    const t = tag()
    const victim = await signUp(app, { email: `target-${t}@example.test` })
    const anon = await anonymousForm(app)
    // Checked one by one, 29 wrong guesses and then the right password would let the last one
    // in whenever all 30 passed the "too many failures?" check before the first hash finished.
    const guesses = [...Array.from({ length: 29 }, (_, i) => `guess ${i} is wrong`), victim.password]
    const results = await Promise.all(guesses.map((password) => signIn(app, `target-${t}@example.test`, password, anon)))
    const statuses = results.map((r) => r.res.status)
    // 3 passwords checked (2 answered 401, the 3rd 429 as it ends the budget), 27 refused unchecked.
    expect(statuses.filter((s) => s === 401)).toHaveLength(2)
    expect(statuses.filter((s) => s === 429)).toHaveLength(28)
    expect(statuses.at(-1)).toBe(429)
    expect(results.every((r) => r.cookie === undefined)).toBe(true)
  }, 90_000)
})

describe('4. anonymous forms need no server-side row', () => {
  const sessions = async () => Number((await env.query<{ n: number }>('SELECT COUNT(*) AS n FROM `session`'))[0]!.n)

  it('GET /account/signin and /account/signup without a cookie insert no session; the form token is signed', async () => {
    const before = await sessions()
    for (let i = 0; i < 20; i++) {
      const res = await send(app, 'GET', i % 2 ? '/account/signin' : '/account/signup')
      expect(res.status).toBe(200)
      expect(setCookie(res, 'blog_session')).toBeUndefined()
      expect(setCookie(res, 'blog_form')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    }
    expect(await sessions()).toBe(before)
  })

  it('accepts the token only with the cookie it was made for (a signed double-submit), and keeps one cookie per browser', async () => {
    const account = await signUp(app)
    const mine = await anonymousForm(app)
    const theirs = await anonymousForm(app)
    expect(mine.csrf).not.toBe(theirs.csrf)
    // The same browser (same cookie) gets the same token on every form.
    const again = await send(app, 'GET', '/account/signup', { cookie: mine.cookie })
    expect(setCookie(again, 'blog_form')).toBeUndefined()
    expect(/name="_csrf" value="([^"]*)"/.exec(again.body)![1]).toBe(mine.csrf)
    const post = (cookie: string, csrf: string) =>
      send(app, 'POST', '/account/signin', { cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: csrf, email: account.email, password: account.password }) })
    expect((await post(mine.cookie, theirs.csrf)).status).toBe(403)
    expect((await post(`blog_form=${'A'.repeat(43)}`, mine.csrf)).status).toBe(403)
    expect((await post(mine.cookie, mine.csrf.slice(0, -1) + (mine.csrf.endsWith('A') ? 'B' : 'A'))).status).toBe(403)
    const ok = await post(mine.cookie, mine.csrf)
    expect(ok.status).toBe(303)
    // Signed in: the session's token now, the form cookie cleared.
    expect(setCookie(ok, 'blog_form')).toBe('')
  })
})

describe('5. display names that impersonate', () => {
  it('refuses look-alikes of an existing name and names that show nothing; the name stays free for its owner', async () => {
    const t = tag()
    const alice = await signUp(app, { displayName: `Alice${t}` })
    const refused: [string, number, RegExp][] = [
      [`\u0410lice${t}`, 400, /different scripts/],
      [`Alice${t}\u061c`, 400, /invisible/],
      [`Alice${t}\u{E0041}`, 400, /invisible/],
      [`\u{1D400}lice${t}`, 409, /looks the same/],
      [`ALICE${t}`, 409, /looks the same/],
      [`Ａｌｉｃｅ${t}`, 409, /looks the same/],
      ['\u3164\u3164\u3164', 400, /invisible/],
      ['\u2800\u2800\u2800', 400, /invisible/],
      ['\u200b', 400, /invisible/],
      ['deleted user', 400, /reserved/]
    ]
    for (const [name, status, why] of refused) {
      const res = await trySignUp({ display_name: name })
      expect(res.status, JSON.stringify(name)).toBe(status)
      expect(res.body, JSON.stringify(name)).toMatch(why)
    }
    const names = await env.query<{ display_name: string }>('SELECT `display_name` FROM `user` WHERE `display_name` LIKE ?', [`%${t}%`])
    expect(names).toEqual([{ display_name: alice.displayName }])
  })
})

describe('also: passwords, token creation, returning after sign-in', () => {
  it('counts a password in characters for the minimum too: 5 emoji are too short', async () => {
    const res = await trySignUp({ password: '😀'.repeat(5) })
    expect(res.status).toBe(400)
    expect(res.body).toContain('Use at least 10 characters')
  })

  it('limits API token creation per user (429 with Retry-After past 10 an hour)', async () => {
    const account = await signUp(app)
    const make = () => send(app, 'POST', '/account/tokens', { cookie: account.cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: account.csrf, name: 'bulk' }) })
    for (let i = 0; i < 10; i++) expect((await make()).status).toBe(303)
    const refused = await make()
    expect(refused.status).toBe(429)
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0)
    expect(await env.query('SELECT `id` FROM `api_token` WHERE `name` = ? AND `user_id` = (SELECT `id` FROM `user` WHERE `email` = ?)', ['bulk', account.email])).toHaveLength(10)
  })

  it('returns to the page that sent you to sign in, a path of this site only', async () => {
    const account = await signUp(app)
    const page = await send(app, 'GET', '/blogs/new')
    expect(page.headers.location).toBe('/account/signin?next=%2Fblogs%2Fnew')
    const form = await send(app, 'GET', page.headers.location as string)
    expect(form.body).toContain('name="next" value="/blogs/new"')
    const anon = await anonymousForm(app)
    const withNext = (next: string) =>
      send(app, 'POST', '/account/signin', { cookie: anon.cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: anon.csrf, email: account.email, password: account.password, next }) })
    expect((await withNext('/blogs/new')).headers.location).toBe('/blogs/new')
    for (const away of ['//evil.example/', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)', '/\t/evil.example']) {
      expect((await withNext(away)).headers.location, away).toBe('/blogs/')
    }
  })
})

describe('also: the account page changes the name and the password, and deletes the account', () => {
  const formOf = (account: Pick<Account, 'cookie' | 'csrf'>, path: string, fields: Record<string, string>) =>
    send(app, 'POST', path, { cookie: account.cookie, headers: FORM_HEADERS, body: urlencoded({ _csrf: account.csrf, ...fields }) })

  it('changes the display name, on the posts too, and refuses a look-alike of another name', async () => {
    const account = await signUp(app)
    const post = await createPost(app, env, {}, undefined, account)
    const other = await signUp(app)
    const newName = `Renamed ${tag()}`
    expect((await formOf(account, '/account/name', { display_name: newName })).status).toBe(303)
    expect((await rowById(env, post.id))?.author).toBe(newName)
    const taken = await formOf(account, '/account/name', { display_name: other.displayName.toUpperCase() })
    expect(taken.status).toBe(409)
    expect((await rowById(env, post.id))?.author).toBe(newName)
  })

  it('changes the password with the current one; every other session ends, this browser stays signed in', async () => {
    const account = await signUp(app)
    const elsewhere = await signIn(app, account.email, account.password)
    expect((await formOf(account, '/account/password', { current_password: 'not my password', new_password: newPassword() })).status).toBe(401)
    const fresh = newPassword()
    const changed = await formOf(account, '/account/password', { current_password: account.password, new_password: fresh })
    expect(changed.status).toBe(303)
    const cookie = `blog_session=${setCookie(changed, 'blog_session')}`
    expect((await send(app, 'GET', '/account', { cookie })).status).toBe(200)
    expect((await send(app, 'GET', '/account', { cookie: elsewhere.cookie })).status).toBe(303)
    expect((await send(app, 'GET', '/account', { cookie: account.cookie })).status).toBe(303)
    expect((await signIn(app, account.email, account.password)).res.status).toBe(401)
    expect((await signIn(app, account.email, fresh)).res.status).toBe(303)
  })

  it('deletes the account with its password: sessions and tokens go, the posts stay by "deleted user" (admins only may change them)', async () => {
    const account = await signUp(app)
    const post = await createPost(app, env, { title: unique('Left behind') }, undefined, account)
    const csrf = await csrfFor(app, account.cookie)
    expect((await formOf({ cookie: account.cookie, csrf }, '/account/delete', { password: 'not my password' })).status).toBe(401)
    const res = await formOf({ cookie: account.cookie, csrf }, '/account/delete', { password: account.password })
    expect(res.status).toBe(303)
    expect(setCookie(res, 'blog_session')).toBe('')
    expect(await env.query('SELECT `id` FROM `user` WHERE `email` = ?', [account.email])).toEqual([])
    expect(await rowById(env, post.id)).toMatchObject({ author: 'deleted user' })
    const [owner] = await env.query<{ user_id: number | null }>('SELECT `user_id` FROM `blog` WHERE `id` = ?', [post.id])
    expect(owner!.user_id).toBeNull()
    expect((await send(app, 'GET', '/account', { cookie: account.cookie })).status).toBe(303)
    expect((await signIn(app, account.email, account.password)).res.status).toBe(401)
  })
})
