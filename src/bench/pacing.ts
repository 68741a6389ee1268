/**
 * Open-loop pacing for the paced benchmark phases: operation n (counting items, `step` per claim)
 * is due at n / rate seconds after the start, whatever happened before, on whichever worker
 * claims it first. Claims due at or after the deadline are refused, so that the last workers do
 * not sleep past the end of the run (which would stretch it and understate the rate reached).
 */
export class Pacer {
  private issued = 0;

  constructor(
    private readonly startedAt: number,
    private readonly deadline: number,
    /** Items per second. */
    private readonly rate: number,
  ) {}

  /** Claims the next `step` items: the time they are due (ms since the epoch), or null past the end. */
  claim(step = 1): number | null {
    const due = this.startedAt + (this.issued * 1000) / this.rate;
    if (due >= this.deadline) return null;
    this.issued += step;
    return due;
  }

  /**
   * Claims the next `step` items and waits until they are due. Returns how late they start (ms,
   * 0 when on time), to be counted in their latency — a run whose workers are all busy when an
   * operation falls due would otherwise hide that wait (coordinated omission) — or null when
   * the run is over.
   */
  async next(step = 1): Promise<number | null> {
    const due = this.claim(step);
    if (due === null) return null;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const now = Date.now();
    return now < this.deadline ? Math.max(0, now - due) : null;
  }

  /** A latency start (process.hrtime) moved back by `lateMs`, as {@link next} returned it. */
  static startedAt(lateMs: number): bigint {
    return process.hrtime.bigint() - BigInt(Math.round(lateMs * 1_000_000));
  }
}
