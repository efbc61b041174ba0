import { ROOT_CONTEXT, type Context } from '@opentelemetry/api'
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace'
import { describe, expect, it } from 'vitest'
import { TailSpanProcessor } from '../../src/telemetry/tail'

// Other instrumentations' spans (the S3 client's) wait for their request's keep decision, and
// for a request held for a second look, for that look.

/** What the processors after the tail were handed. */
class Capture implements SpanProcessor {
  started: string[] = []
  ended: string[] = []
  onStart(span: Span, _ctx: Context): void {
    this.started.push((span as unknown as ReadableSpan).name)
  }
  onEnd(span: ReadableSpan): void {
    this.ended.push(span.name)
  }
  forceFlush = async () => undefined
  shutdown = async () => undefined
}

const span = (traceId: string, name: string) =>
  ({ name, spanContext: () => ({ traceId, spanId: '00f067aa0ba902b7', traceFlags: 1 }) }) as unknown as ReadableSpan & Span

/** A request's trace with its S3 calls: two ended while it ran, one (`late`) still open when it answered. */
function running(tail: TailSpanProcessor, traceId: string) {
  tail.open(traceId)
  const calls = ['S3.PutObject', 'S3.CopyObject', 'S3.DeleteObject'].map((n) => span(traceId, n))
  for (const c of calls) tail.onStart(c, ROOT_CONTEXT)
  tail.onEnd(calls[0]!)
  tail.onEnd(calls[1]!)
  return { late: calls[2]! }
}

describe('TailSpanProcessor', () => {
  it('holds a running request\'s spans until its decision: kept, they go on with the late one; dropped, none do', () => {
    const next = new Capture()
    const tail = new TailSpanProcessor(next)
    const kept = running(tail, 'a'.repeat(32))
    const dropped = running(tail, 'b'.repeat(32))
    expect(next.started).toHaveLength(6)
    expect(next.ended).toEqual([])
    tail.decide('a'.repeat(32), true)
    tail.decide('b'.repeat(32), false)
    expect(next.ended).toEqual(['S3.PutObject', 'S3.CopyObject'])
    tail.onEnd(kept.late)
    tail.onEnd(dropped.late)
    expect(next.ended).toEqual(['S3.PutObject', 'S3.CopyObject', 'S3.DeleteObject'])
  })

  it('sets aside the spans of a request held for a second look, ended or ending later, to pass on if it is kept late', () => {
    const next = new Capture()
    const tail = new TailSpanProcessor(next)
    const { late } = running(tail, 'c'.repeat(32))
    const aside = tail.setAside('c'.repeat(32))
    expect(aside.spans.map((s) => s.name)).toEqual(['S3.PutObject', 'S3.CopyObject'])
    // A store call still open when the request answered (a download streamed after it) joins them.
    tail.onEnd(late)
    expect(aside.spans.map((s) => s.name)).toEqual(['S3.PutObject', 'S3.CopyObject', 'S3.DeleteObject'])
    expect(next.ended, 'nothing exported while it waits').toEqual([])
    tail.pass(aside)
    expect(next.ended).toEqual(['S3.PutObject', 'S3.CopyObject', 'S3.DeleteObject'])
  })

  it('passes a span that ends after its trace was kept late straight on', () => {
    const next = new Capture()
    const tail = new TailSpanProcessor(next)
    const { late } = running(tail, 'e'.repeat(32))
    const aside = tail.setAside('e'.repeat(32))
    tail.pass(aside)
    expect(next.ended).toEqual(['S3.PutObject', 'S3.CopyObject'])
    tail.onEnd(late)
    expect(next.ended).toEqual(['S3.PutObject', 'S3.CopyObject', 'S3.DeleteObject'])
  })

  it('exports nothing of a trace set aside and let go', () => {
    const next = new Capture()
    const tail = new TailSpanProcessor(next)
    const { late } = running(tail, 'f'.repeat(32))
    tail.setAside('f'.repeat(32))
    tail.onEnd(late)
    expect(next.ended).toEqual([])
  })

  it('has nothing to set aside for a trace it was not holding', () => {
    const tail = new TailSpanProcessor(new Capture())
    expect(tail.setAside('d'.repeat(32)).spans).toEqual([])
  })
})
