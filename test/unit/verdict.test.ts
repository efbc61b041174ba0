import { describe, expect, it } from 'vitest'
import { verdict } from '../../bench/lib/report'
import type { Breakdown } from '../../bench/lib/spans'

// The bench's verdict rules on the numbers of real runs (README "Where the time goes"); the
// e2e bench test produces them from real loads.

const phases = (total: number, SQL: number, sqlLoop: number, sqlServer: number, sqlJoined = SQL): Breakdown =>
  ({ 'pool wait': 0, SQL, render: 0.3, image: 0, 'image write': 0, other: 0, total, queries: 1, sqlServer, sqlJoined, sqlLoop, loop: 0 })

describe('the bench verdict', () => {
  it('says app CPU at saturation: the loop busy nearly all the SQL time, the database a sliver', () => {
    expect(verdict({ appCpu: 106, appCpuMs: 1.35, dbCpu: 27, phases: phases(49.7, 42.58, 42.26, 0.33) }))
      .toBe('bottleneck: app CPU (loop busy 99% of SQL span time, DB server time 0.33 ms per query, app CPU 106%, DB CPU 27%)')
  })

  it('says app CPU for a process starved of its core (requests open 30x their CPU time) even below 80% CPU', () => {
    expect(verdict({ appCpu: 70, appCpuMs: 1.4, dbCpu: 15, phases: phases(45, 40, 39.6, 0.42) })).toMatch(/^bottleneck: app CPU/)
  })

  it('says no bottleneck yet below capacity, naming where SQL time goes', () => {
    expect(verdict({ appCpu: 72, appCpuMs: 1.79, dbCpu: 17, phases: phases(3.02, 2.1, 1.69, 0.37) }))
      .toBe('no bottleneck yet, but SQL spans wait on the busy event loop (loop busy 80% of SQL span time, DB server time 0.37 ms per query, app CPU 72%, DB CPU 17%)')
  })

  it('says database when the database itself is most of the SQL time, and SQL most of the request', () => {
    expect(verdict({ appCpu: 42, appCpuMs: 2.84, dbCpu: 144, phases: phases(260, 258.8, 36.8, 221.9) })).toMatch(/^bottleneck: database \(DB server time 86% of SQL span time, 221\.90 ms per query/)
  })

  it('without performance_schema says the server time was not joined, and never calls it the database', () => {
    const v = verdict({ appCpu: 100, appCpuMs: 1, dbCpu: 20, phases: phases(40, 35, 34, 0, 0) })
    expect(v).toMatch(/^bottleneck: app CPU .*DB server time not joined \(performance_schema off\)/)
  })
})
