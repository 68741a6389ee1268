/**
 * In-process wake-ups for callers waiting on a payment (Pay, WatchPayment): whoever changes a
 * payment calls {@link PaymentNotifier.notify}; waiters then re-read it from the database. A
 * wake-up carries no data, so a waiter never trusts a stale copy, and nothing queues up: a waiter
 * holds one pending promise at most. Waiters also wake on a timeout, which covers changes made by
 * another replica.
 */
export class PaymentNotifier {
  private readonly waiters = new Map<string, Set<() => void>>();

  /** Wakes everyone waiting on `paymentId`. */
  notify(paymentId: string): void {
    const waiting = this.waiters.get(paymentId);
    if (!waiting) return;
    this.waiters.delete(paymentId);
    for (const wake of waiting) wake();
  }

  /** Resolves on the next {@link notify} of `paymentId`, after `timeoutMs`, or when `signal` aborts. */
  wait(paymentId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      let waiting = this.waiters.get(paymentId);
      if (!waiting) this.waiters.set(paymentId, (waiting = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        const current = this.waiters.get(paymentId);
        current?.delete(done);
        if (current?.size === 0) this.waiters.delete(paymentId);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      waiting.add(done);
    });
  }

  /** Number of payments with waiters (for tests and metrics). */
  get size(): number {
    return this.waiters.size;
  }
}
