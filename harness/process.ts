import type { ChildProcess } from 'node:child_process'

// Child-process helpers shared by the test kit (test/kit) and the bench (bench/): neither
// imports the other, both import this folder.

/** Drains a child's stdout and stderr as they come (an unread pipe blocks its writes); returns the last `maxChars` of both. */
export function keepOutput(child: ChildProcess, maxChars: number): () => string {
  let out = ''
  const keep = (d: string) => {
    out = (out + d).slice(-maxChars)
  }
  child.stdout?.setEncoding('utf8').on('data', keep)
  child.stderr?.setEncoding('utf8').on('data', keep)
  return () => out
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child is gone (at once if it already is). */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}
