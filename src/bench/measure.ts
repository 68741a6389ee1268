/** Measuring: throughput and latency percentiles of a phase of the benchmark. */

/** What a phase measured. */
export interface PhaseResult {
  /** Completed operations (pairs or payments). */
  count: number;
  perSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  errors: number;
  checks: { conservation: boolean; allFinal: boolean };
  /** CPU milliseconds per operation by process (services by name, and "postgresql"), if measured. */
  cpuMsPerOperation?: Record<string, number>;
}

/** Records operation latencies (bounded: a reservoir of at most 200,000 samples). */
export class LatencyRecorder {
  private readonly samples: number[] = [];
  private seen = 0;
  private static readonly capacity = 200_000;

  /** Records one operation that began at `begun` (process.hrtime.bigint()). */
  record(begun: bigint): void {
    const milliseconds = Number(process.hrtime.bigint() - begun) / 1e6;
    this.seen += 1;
    if (this.samples.length < LatencyRecorder.capacity) this.samples.push(milliseconds);
    else {
      const slot = Math.floor(Math.random() * this.seen);
      if (slot < LatencyRecorder.capacity) this.samples[slot] = milliseconds;
    }
  }

  get count(): number {
    return this.seen;
  }

  /** Throughput over `elapsedMs` and latency percentiles. */
  summary(elapsedMs: number): Pick<PhaseResult, 'count' | 'perSecond' | 'p50Ms' | 'p95Ms' | 'p99Ms'> {
    const sorted = [...this.samples].sort((left, right) => left - right);
    const percentile = (fraction: number) =>
      sorted.length === 0 ? 0 : round(sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]);
    return {
      count: this.seen,
      perSecond: elapsedMs > 0 ? Math.round((this.seen * 1000) / elapsedMs) : 0,
      p50Ms: percentile(0.5),
      p95Ms: percentile(0.95),
      p99Ms: percentile(0.99),
    };
  }
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
