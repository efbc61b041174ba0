import { hrTimeToMicroseconds } from '@opentelemetry/core'
import { TracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace'
import { describe, expect, it } from 'vitest'
import { anchorToClock, hrTime, now } from '../../src/telemetry/clock'

/** Busy for about `ms` milliseconds, so spans have lengths that are not whole milliseconds. */
function spin(ms: number): void {
  const until = now() + ms
  while (now() < until);
}

/**
 * A parent started the way the http instrumentation starts its server span (no time given) and
 * a child timed on the app's clock inside it, as the app's SQL and render spans are; `anchor`
 * puts the parent on the app's clock as the timing processor does.
 */
function nested(anchor: boolean): { parent: ReadableSpan; child: ReadableSpan } {
  const exporter = new InMemorySpanExporter()
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] })
  const tracer = provider.getTracer('clock-test')
  const parent = tracer.startSpan('server')
  if (anchor) anchorToClock(parent)
  spin(0.3)
  const child = tracer.startSpan('child', { startTime: hrTime(now()) })
  spin(0.4)
  child.end(hrTime(now()))
  parent.end()
  const [c, p] = exporter.getFinishedSpans()
  return { parent: p!, child: c! }
}

const inside = ({ parent, child }: { parent: ReadableSpan; child: ReadableSpan }) =>
  hrTimeToMicroseconds(child.startTime) >= hrTimeToMicroseconds(parent.startTime) &&
  hrTimeToMicroseconds(child.endTime) <= hrTimeToMicroseconds(parent.endTime)

describe('the one clock', () => {
  it("puts a span the SDK started without a time (the http instrumentation's) on the app's clock, so its children lie inside it", () => {
    // Unanchored, the SDK's Date.now() start (whole milliseconds) shifts the parent early by up to
    // a millisecond: most of these children would end after their parent.
    const runs = 200
    const unanchored = Array.from({ length: runs }, () => nested(false)).filter(inside).length
    expect(unanchored).toBeLessThan(runs)
    const anchored = Array.from({ length: runs }, () => nested(true)).filter(inside).length
    expect(anchored).toBe(runs)
  })

  it('leaves a span started at a given time as it is', () => {
    const provider = new TracerProvider()
    const given = hrTime(now() - 5)
    const span = provider.getTracer('clock-test').startSpan('given', { startTime: given })
    anchorToClock(span)
    expect((span as unknown as ReadableSpan).startTime).toEqual(given)
    span.end()
  })
})
