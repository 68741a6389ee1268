import type { Payment, PaymentState } from './model';

/** States a payment never leaves. */
const settledStates: ReadonlySet<PaymentState> = new Set<PaymentState>(['executed', 'rejected', 'expired']);

/**
 * In-process wake-ups for callers waiting on a payment (Pay, WatchPayment): whoever changes a
 * payment calls {@link PaymentNotifier.notify}; waiters then re-read it from the database. Only
 * an outcome of money (executed, rejected, expired) travels with the wake-up — the transition
 * that reached it returned the whole record, and such a payment never changes again — so a
 * waiter never trusts a copy that could be stale. (Failed is final for Pay but not for ever: a
 * repeated Pay retries it, so it is always re-read.) Nothing queues up: a waiter holds one
 * pending promise at most. Waiters also wake on a timeout, which covers changes made by another
 * replica.
 */
export class PaymentNotifier {
  private readonly waiters = new Map<string, Set<(final: Payment | undefined) => void>>();

  /**
   * Wakes everyone waiting on `paymentId`, handing them `payment` if it is settled (executed,
   * rejected or expired) as the transition that settled it returned it.
   */
  notify(paymentId: string, payment?: Payment): void {
    const waiting = this.waiters.get(paymentId);
    if (!waiting) return;
    this.waiters.delete(paymentId);
    const final = payment && settledStates.has(payment.state) ? payment : undefined;
    for (const wake of waiting) wake(final);
  }

  /**
   * Resolves on the next {@link notify} of `paymentId` (with the payment if it settled),
   * after `timeoutMs`, or when `signal` aborts (both with undefined).
   */
  wait(paymentId: string, timeoutMs: number, signal?: AbortSignal): Promise<Payment | undefined> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve(undefined);
      let waiting = this.waiters.get(paymentId);
      if (!waiting) this.waiters.set(paymentId, (waiting = new Set()));
      const done = (final?: Payment) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const current = this.waiters.get(paymentId);
        current?.delete(done);
        if (current?.size === 0) this.waiters.delete(paymentId);
        resolve(final);
      };
      /** A timeout or an abort: nothing to hand over. */
      const onAbort = () => done();
      const timer = setTimeout(onAbort, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      waiting.add(done);
    });
  }

  /** Number of payments with waiters (for tests and metrics). */
  get size(): number {
    return this.waiters.size;
  }
}
