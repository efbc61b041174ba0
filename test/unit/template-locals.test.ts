import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import ejs from 'ejs'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../src/paths'
import { ejsOptions } from '../../src/plugins/view'
import { templateFiles, templateLocals } from '../../src/views'

const dir = mkdtempSync(path.join(os.tmpdir(), 'template-locals-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('the names destructured into every template', () => {
  it('lists what code tags read, not property names, globals or the engine own names', () => {
    writeFileSync(
      path.join(dir, 'a.ejs'),
      '<h1><%= pageTitle %></h1><% for (const post of page.items) { %><%- include("b", { badge }) %><%= String(post.title) %><% } %>' +
        '<% if (typeof viewer !== "undefined") { %><%= __append %><% } %>'
    )
    const names = templateLocals(dir)
    expect(names).toEqual(expect.arrayContaining(['pageTitle', 'page', 'post', 'badge', 'viewer']))
    for (const absent of ['items', 'title', 'String', 'include', 'typeof', 'const', 'for', '__append', 'locals']) expect(names).not.toContain(absent)
  })

  it('renders a template with a local it was not given as undefined, and a loop variable of the same name as a local', () => {
    writeFileSync(path.join(dir, 'c.ejs'), '<% for (const post of posts) { %><%= post %>,<% } %><%= typeof post %>|<%= typeof missing %>')
    const fn = ejs.compile(readFileSync(path.join(dir, 'c.ejs'), 'utf8'), { _with: false, destructuredLocals: templateLocals(dir) })
    expect(fn({ posts: ['x', 'y'] })).toBe('x,y,undefined|undefined')
  })

  it('compiles every view of the app with the app own options (a top-level declaration clashing with a destructured name would not)', () => {
    const files = templateFiles(path.join(ROOT, 'views'))
    expect(files.length).toBeGreaterThan(10)
    const options = ejsOptions(false)
    for (const file of files) expect(() => ejs.compile(readFileSync(file, 'utf8'), { ...options, filename: file }), file).not.toThrow()
  })
})
