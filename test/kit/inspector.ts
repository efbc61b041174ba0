import { setTimeout as sleep } from 'node:timers/promises'
import { parseTraceHeader } from './otlp-receiver'
import { request, type HttpResponse } from './server'

/** The trace id a response's `traceresponse` header names. */
export function traceIdOf(res: HttpResponse): string {
  return parseTraceHeader(res.headers.traceresponse).traceId
}

/**
 * GETs an inspector page, retrying a 404 for a moment: the server span ends (and its trace
 * reaches the buffer) just after the response that names it has been sent.
 */
export async function inspect(port: number, path: string, headers: Record<string, string> = {}, timeoutMs = 5000): Promise<HttpResponse> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const res = await request(port, { path, headers })
    if (res.status !== 404 || Date.now() > deadline) return res
    await sleep(50)
  }
}

/** The span names of a trace page's waterfall, top to bottom. */
export function waterfallLabels(html: string): string[] {
  return [...html.matchAll(/<span class="wf-label">([^<]*)<\/span>/g)].map((m) => m[1]!)
}

/** The values shown for one attribute on a trace page, in waterfall order (HTML-unescaped). */
export function attributeValues(html: string, key: string): string[] {
  const re = new RegExp(`<dt>${key.replace(/\./g, '\\.')}</dt><dd>(?:<code class="sql">)?([^<]*)`, 'g')
  return [...html.matchAll(re)].map((m) => unescapeHtml(m[1]!))
}

export function unescapeHtml(s: string): string {
  return s.replace(/&#39;/g, "'").replace(/&#34;/g, '"').replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')
}

/** Trace ids linked from a page. */
export function traceLinks(html: string): string[] {
  return [...new Set([...html.matchAll(/\/_inspect\/traces\/([0-9a-f]{32})/g)].map((m) => m[1]!))]
}


