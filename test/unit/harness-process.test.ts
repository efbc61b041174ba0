import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { keepOutput, stopChild } from '../../harness/process'

// The child-process helpers the test kit and the bench share (harness/process.ts).

const node = (script: string) => spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })

describe('stopChild', () => {
  it('ends a child that exits on SIGTERM without waiting for the grace period', async () => {
    const child = node("console.log('ready'); setInterval(() => {}, 1000)")
    await once(child.stdout!, 'data')
    const started = performance.now()
    await stopChild(child, 10_000)
    expect(child.signalCode).toBe('SIGTERM')
    expect(performance.now() - started).toBeLessThan(5000)
  })

  it('kills a child that ignores SIGTERM once the grace period is over', async () => {
    const child = node("process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)")
    await once(child.stdout!, 'data')
    await stopChild(child, 200)
    expect(child.signalCode).toBe('SIGKILL')
  })

  it('resolves at once for a child that was already killed by a signal', async () => {
    const child = node('setInterval(() => {}, 1000)')
    child.kill('SIGKILL')
    await once(child, 'exit')
    await stopChild(child, 10_000)
    expect(child.signalCode).toBe('SIGKILL')
  })
})

describe('keepOutput', () => {
  it('keeps the last characters of stdout and stderr together, whole UTF-8 characters only', async () => {
    const child = node("process.stdout.write('x'.repeat(100)); process.stderr.write('é'.repeat(10))")
    const output = keepOutput(child, 15)
    await once(child, 'close')
    expect(output()).toBe('xxxxx' + 'é'.repeat(10))
  })
})
