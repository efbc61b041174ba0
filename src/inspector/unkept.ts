/**
 * Trace ids of recent requests whose trace was not kept, so the trace page can say so instead of
 * "not found" (the timing badge links to a page's trace before the keep decision). Bounded; the
 * oldest id goes first. A Set iterates in insertion order.
 */
export class UnkeptTraces {
  private readonly ids = new Set<string>()

  constructor(readonly max = 10_000) {}

  add(traceId: string): void {
    if (this.ids.size >= this.max) this.ids.delete(this.ids.values().next().value!)
    this.ids.add(traceId)
  }

  has(traceId: string): boolean {
    return this.ids.has(traceId)
  }
}
