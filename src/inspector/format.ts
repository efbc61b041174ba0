// Numbers and times as the inspector pages print them: templates only print.

/** 0.42 ms, 3.27 ms, 12.3 ms, 123 ms, 1.23 s */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-'
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`
  if (ms >= 100) return `${Math.round(ms)} ms`
  if (ms >= 10) return `${ms.toFixed(1)} ms`
  return `${ms.toFixed(2)} ms`
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1048576).toFixed(1)} MiB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${n} B`
}

/** "14:03:27 UTC" */
export function clockTime(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(11, 19) + ' UTC'
}

/** "3 s ago", "5 min ago" */
export function age(epochMs: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - epochMs) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  return `${Math.floor(s / 3600)} h ago`
}
