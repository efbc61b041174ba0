import { readFileSync } from 'node:fs'
import path from 'node:path'
import { ESLint } from 'eslint'
import { describe, expect, it } from 'vitest'
import { renderTelemetryReference, TELEMETRY_REFERENCE_FILE } from '../../src/cli/gen-docs'
import { maskSql, operationOf } from '../../src/telemetry/sql'
import { ATTR, ATTRIBUTE_DOCS, isKnownSpanName, METRIC, METRIC_DOCS, SPAN, SPAN_DOCS, spanCategory } from '../../src/telemetry/names'
import { expectNamedSignals, type ContractSpan } from '../kit/trace'

// One name per signal: src/telemetry/names.ts defines every span, attribute and metric name, the
// reference in docs/ is generated from it, and code that spells a name itself fails lint.

const ROOT = path.resolve(__dirname, '../..')

const span = (name: string, attributes: Record<string, unknown> = {}): ContractSpan => ({
  name, spanId: 'a'.repeat(16), parentId: undefined, kind: 'internal', attributes, startUs: 0, endUs: 1, error: false, order: 0
})

describe('the names module', () => {
  it('documents every attribute and metric it defines, and every span it names', () => {
    for (const name of Object.values(ATTR)) expect(ATTRIBUTE_DOCS[name], name).toBeDefined()
    for (const name of Object.values(METRIC)) expect(METRIC_DOCS[name], name).toBeDefined()
    for (const name of Object.values(SPAN)) expect(SPAN_DOCS.map((d) => d.name), name).toContain(name)
  })

  it('knows the app span names and the patterns of server, SQL and S3 spans, and nothing else', () => {
    for (const name of [...Object.values(SPAN), 'GET /blogs/show/:id', 'GET', 'SELECT', 'COMMIT', 'S3.PutObject']) expect(isKnownSpanName(name), name).toBe(true)
    for (const name of ['blog.image.writes', 'render', 'GET blogs', 'Select', 'fs.readFile', '']) expect(isKnownSpanName(name), name).toBe(false)
  })

  it('makes the trace contract fail on a span or an app attribute it does not define (the check can fail)', () => {
    expect(() => expectNamedSignals([span(SPAN.viewRender, { [ATTR.viewName]: 'blogs/index' })])).not.toThrow()
    expect(() => expectNamedSignals([span('blog.view.render')])).toThrow(/not defined in src\/telemetry\/names.ts/)
    expect(() => expectNamedSignals([span(SPAN.viewRender, { 'blog.view.template': 'x' })])).toThrow(/blog.view.template/)
  })

  it('classifies spans the same way for the inspector, the timing processor and the bench', () => {
    expect(spanCategory({ name: 'GET /blogs/', kind: 1, attributes: {} })).toBe('server')
    expect(spanCategory({ name: 'SELECT', kind: 2, attributes: { [ATTR.dbSystemName]: 'mysql' } })).toBe('sql')
    expect(spanCategory({ name: SPAN.poolAcquire, kind: 0, attributes: {} })).toBe('pool')
    expect(spanCategory({ name: SPAN.imageProcess, kind: 0, attributes: {} })).toBe('image')
    expect(spanCategory({ name: SPAN.imageWrite, kind: 0, attributes: {} })).toBe('store')
    expect(spanCategory({ name: 'S3.PutObject', kind: 2, attributes: {} })).toBe('store')
    expect(spanCategory({ name: 'dns.lookup', kind: 2, attributes: {} })).toBe('other')
  })

  it('docs/telemetry-reference.md is what `npm run gen:docs` makes from it', () => {
    expect(readFileSync(TELEMETRY_REFERENCE_FILE, 'utf8'), 'run `npm run gen:docs`').toBe(renderTelemetryReference())
  })
})

describe('SQL text on spans', () => {
  it('has every literal masked and identifiers kept', () => {
    expect(maskSql("SELECT `id`, `t2` FROM `blog` WHERE `id` = 42 AND `title` = 'it''s' OR x = \"a\\\"b\" LIMIT 0x1F, 1.5e3")).toBe(
      'SELECT `id`, `t2` FROM `blog` WHERE `id` = ? AND `title` = ? OR x = ? LIMIT ?, ?'
    )
    expect(maskSql("INSERT INTO `session` VALUES (_utf8mb4'secret', X'00ff', N'n')")).toBe('INSERT INTO `session` VALUES (?, ?, ?)')
    expect(maskSql('SELECT `a` FROM `blog` WHERE `id` = ?')).toBe('SELECT `a` FROM `blog` WHERE `id` = ?')
  })

  it('names a statement by its first word', () => {
    expect(operationOf('COMMIT;')).toBe('COMMIT')
    expect(operationOf('  start TRANSACTION')).toBe('START')
    expect(operationOf('')).toBe('UNKNOWN')
  })
})

describe('lint rules that keep the shape', () => {
  const eslint = new ESLint({ cwd: ROOT })
  const messages = async (code: string, file: string) => (await eslint.lintText(code, { filePath: path.join(ROOT, file) }))[0]!.messages.map((m) => m.message)

  it('refuse an import of the inspector from telemetry, and allow the other direction', async () => {
    expect(await messages("export { INSPECTOR_PREFIX } from '../inspector/prefix'\n", 'src/telemetry/example.ts')).toEqual([
      expect.stringMatching(/telemetry must not depend on the inspector/)
    ])
    expect(await messages("export { ATTR } from '../telemetry/names'\n", 'src/inspector/example.ts')).toEqual([])
  })

  it('refuse a span or attribute name spelled outside the names module', async () => {
    const found = await messages(
      "import { withSpan } from '../telemetry/tracer'\nexport const f = () => withSpan('blog.thing', { 'blog.thing.size': 1 }, async () => 1)\n",
      'src/plugins/example.ts'
    )
    expect(found).toEqual(expect.arrayContaining([expect.stringMatching(/span names come from/), expect.stringMatching(/attribute and metric names come from/)]))
  })
})
