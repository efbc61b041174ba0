import { PHASES, type Breakdown } from './spans'

interface Row {
  variant: string
  path: string
  rps: number
  p90: number
  p95: number
  p99: number
  avg: number
  phases: Breakdown | null
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const COLORS = ['#2f5d8a', '#7fb0e0', '#e07b39', '#5aa469', '#b0b0b0', '#a05195']

/** Horizontal bars: one chart per measure, one bar (or stacked bar) per variant and path. */
function bars(title: string, unit: string, rows: { label: string; parts: number[] }[], legend: string[], y: number): { svg: string; height: number } {
  const width = 900
  const left = 260
  const barH = 18
  const max = Math.max(1e-9, ...rows.map((r) => r.parts.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0)))
  let out = `<text x="10" y="${y + 16}" font-weight="bold">${esc(title)}</text>`
  legend.forEach((l, i) => {
    if (legend.length > 1) out += `<rect x="${left + i * 120}" y="${y + 5}" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${left + 14 + i * 120}" y="${y + 14}" font-size="11">${esc(l)}</text>`
  })
  rows.forEach((r, i) => {
    const ry = y + 26 + i * (barH + 6)
    out += `<text x="${left - 8}" y="${ry + 13}" text-anchor="end" font-size="12">${esc(r.label)}</text>`
    let x = left
    r.parts.forEach((v, j) => {
      const w = ((Number.isFinite(v) ? v : 0) / max) * (width - left - 90)
      out += `<rect x="${x.toFixed(1)}" y="${ry}" width="${Math.max(0, w).toFixed(1)}" height="${barH}" fill="${COLORS[j % COLORS.length]}"/>`
      x += w
    })
    const total = r.parts.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0)
    out += `<text x="${(x + 6).toFixed(1)}" y="${ry + 13}" font-size="12">${total.toFixed(total >= 100 ? 0 : 2)} ${esc(unit)}</text>`
  })
  return { svg: out, height: 40 + rows.length * (barH + 6) }
}

/** Throughput, latency percentiles and the phase breakdown by variant, as one SVG. */
export function renderSvg(rows: Row[]): string {
  let y = 10
  let body = ''
  const add = (c: { svg: string; height: number }) => {
    body += c.svg
    y += c.height + 10
  }
  const label = (r: Row) => `${r.variant} ${r.path}`
  add(bars('Throughput (median req/s)', 'req/s', rows.map((r) => ({ label: label(r), parts: [r.rps] })), ['req/s'], y))
  for (const p of ['avg', 'p90', 'p99'] as const) {
    add(bars(`Latency ${p} (ms, median of rounds)`, 'ms', rows.map((r) => ({ label: label(r), parts: [r[p]] })), [p], y))
  }
  const traced = rows.filter((r) => r.phases)
  if (traced.length > 0) {
    add(bars('Server time by phase (mean ms per traced request)', 'ms', traced.map((r) => ({ label: label(r), parts: PHASES.map((ph) => r.phases![ph]) })), [...PHASES], y))
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="900" height="${y}" font-family="system-ui, sans-serif"><rect width="100%" height="100%" fill="#fff"/>${body}</svg>\n`
}
