/**
 * Runs the connector's jobs (jobs.ts): at once when a notification creates one, and from the
 * database when one is due again (a retry) or was left by a previous process (a crash). At most
 * `concurrency` forwards and as many pass-backs and rejections are in flight; a caller submitting
 * more waits, which slows the notification stream that produced them instead of growing a queue.
 * The two kinds never wait for each other: forwards stuck on a ledger that does not answer must
 * not keep a pass-back, due before its incoming transfer expires, from its call.
 */
import type { Logger } from '../platform/logger';
import { contextFromTraceParent, inSpan, SpanKind } from '../platform/tracing';
import {
  backoffDelayMs,
  forwardOutcome,
  jobOf,
  nextAttemptAt,
  passBackOutcome,
  rejectOutcome,
  type Backoff,
  type JobOutcome,
} from './jobs';
import type { LedgerGateway } from './ledgers';
import type { Payment } from './model';
import type { PaymentStore } from './store';

/** Options of {@link JobRunner}. */
export interface JobRunnerOptions {
  store: PaymentStore;
  gateways: ReadonlyMap<string, LedgerGateway>;
  connectorAddress: string;
  logger: Logger;
  now: () => Date;
  backoff: Backoff;
  /** Calls in flight at most. */
  concurrency: number;
  /** How often the database is asked for due jobs. */
  pollIntervalMs: number;
  /**
   * Test hook: pass-backs are never run (logged once per payment), so a test can kill the process
   * between the outgoing transfer's execution and the pass-back.
   */
  holdPassBacks: boolean;
  /** Called when a pass-back fails for good: the connector lost money. */
  onLostMoney: (payment: Payment, reason: string) => void;
}

/** Forwards move no money of the connector's yet; pass-backs and rejections settle what it holds. */
type JobClass = 'forward' | 'settle';

function classOf(payment: Payment): JobClass {
  return payment.state === 'forwarding' ? 'forward' : 'settle';
}

/** Executes and retries jobs. */
export class JobRunner {
  /** Jobs in flight, by payment id and state: a pass-back may start while the forward's call is still out. */
  private readonly running = new Set<string>();
  private readonly runningByClass: Record<JobClass, number> = { forward: 0, settle: 0 };
  private readonly slotWaiters: Record<JobClass, Array<() => void>> = { forward: [], settle: [] };
  /** In-memory retries of jobs whose retry could not be recorded (the database down a moment). */
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly heldPassBacks = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private stopped = false;

  constructor(private readonly options: JobRunnerOptions) {}

  /**
   * Starts polling. Every pending job is made due first: the process that scheduled them (and
   * leased the fresh ones) is gone, so waiting for their schedule would only waste time.
   */
  async start(): Promise<void> {
    await this.options.store.makeJobsDue(this.options.now());
    const tick = () => {
      if (this.stopped) return;
      void this.poll().finally(() => {
        if (!this.stopped) this.pollTimer = setTimeout(tick, this.options.pollIntervalMs);
      });
    };
    tick();
  }

  /** Runs the jobs of `payments` now, waiting for free slots first. */
  async submit(payments: Payment[]): Promise<void> {
    for (const payment of payments) {
      if (this.stopped) return;
      if (!jobOf(payment.state) || this.running.has(jobKey(payment))) continue;
      await this.acquireSlot(classOf(payment));
      if (this.stopped) return;
      this.launch(payment);
    }
  }

  /** Stops polling and waits up to `graceMs` for calls in flight. */
  async stop(graceMs = 3000): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    for (const waiters of Object.values(this.slotWaiters)) for (const waiter of waiters.splice(0)) waiter();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const { concurrency } = this.options;
      const free = 2 * concurrency - this.running.size;
      if (free <= 0) return;
      // Pass-backs come first in the answer; each kind is launched while it has slots.
      const due = await this.options.store.dueJobs(this.options.now(), free + this.running.size);
      for (const payment of due) {
        if (this.running.has(jobKey(payment))) continue;
        if (this.runningByClass[classOf(payment)] >= concurrency) continue;
        this.launch(payment);
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, 'reading due jobs failed; retrying');
    } finally {
      this.polling = false;
    }
  }

  private acquireSlot(kind: JobClass): Promise<void> {
    if (this.runningByClass[kind] < this.options.concurrency) return Promise.resolve();
    return new Promise((resolve) => this.slotWaiters[kind].push(resolve));
  }

  private launch(payment: Payment): void {
    if (this.running.has(jobKey(payment))) return;
    if (payment.state === 'fulfilling' && this.options.holdPassBacks) {
      if (!this.heldPassBacks.has(payment.id)) {
        this.heldPassBacks.add(payment.id);
        this.options.logger.warn({ paymentId: payment.id }, 'pass-back held by test hook');
      }
      return;
    }
    const key = jobKey(payment);
    const kind = classOf(payment);
    this.running.add(key);
    this.runningByClass[kind] += 1;
    let followUp: Payment | undefined;
    const job = this.execute(payment)
      .then((next) => {
        followUp = next;
      })
      .catch((error) => this.recordUnexpectedFailure(payment, error))
      .finally(() => {
        this.running.delete(key);
        this.runningByClass[kind] -= 1;
        this.inFlight.delete(job);
        this.slotWaiters[kind].shift()?.();
        // A follow-up job (the rejection after a refused forward) runs at once: the incoming
        // transfer it settles is already held.
        if (followUp && !this.stopped) this.launch(followUp);
      });
    this.inFlight.add(job);
  }

  /**
   * A bug or the database failing: logged, and retried with backoff like a failed call. When even
   * the retry cannot be recorded, this process retries it from memory, so that a pass-back or a
   * rejection is not left to a lease that may end after its incoming transfer's expiry.
   */
  private async recordUnexpectedFailure(payment: Payment, error: unknown): Promise<void> {
    this.options.logger.error({ err: error, paymentId: payment.id }, 'job failed unexpectedly; it will be retried');
    const now = this.options.now();
    const attempts = payment.attempts + 1;
    const at = nextAttemptAt(payment, attempts, this.options.backoff, now);
    try {
      await this.options.store.recordRetry(payment.id, payment.state, {
        attempts,
        nextAttemptAt: at,
        error: String((error as Error)?.message ?? error),
        now,
      });
    } catch {
      this.retryFromMemory(payment.id, payment.state, Math.max(0, at.getTime() - now.getTime()), attempts);
    }
  }

  /**
   * Runs the job of payment `id` again after `delayMs` — as it is then (read again, so a payment
   * that moved on meanwhile is not acted on as it was), if it is still in `state`. While the
   * database cannot be read, tries again later.
   */
  private retryFromMemory(id: string, state: Payment['state'], delayMs: number, attempts: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      if (this.stopped) return;
      this.options.store.loadPayment(id).then(
        (current) => {
          if (current && current.state === state && !this.stopped) this.launch(current);
        },
        () => this.retryFromMemory(id, state, backoffDelayMs(attempts + 1, this.options.backoff), attempts + 1),
      );
    }, delayMs);
    this.retryTimers.add(timer);
  }

  /** Runs the job of `payment` in a span that continues the trace its incoming transfer was prepared in. */
  private execute(payment: Payment): Promise<Payment | undefined> {
    const job = jobOf(payment.state);
    return inSpan(
      `connector ${job}`,
      {
        kind: SpanKind.INTERNAL,
        parent: contextFromTraceParent(payment.traceParent),
        attributes: { 'interclear.payment_id': payment.id, 'interclear.job': job ?? 'none' },
      },
      () => this.executeJob(payment),
    );
  }

  private async executeJob(payment: Payment): Promise<Payment | undefined> {
    const { gateways, connectorAddress } = this.options;
    let outcome: JobOutcome;
    switch (jobOf(payment.state)) {
      case 'forward': {
        const outgoing = payment.outgoing;
        const gateway = outgoing ? gateways.get(outgoing.ledgerPrefix) : undefined;
        if (!outgoing || !gateway) throw new Error(`payment ${payment.id} is forwarding to no known ledger`);
        const result = await gateway.prepareTransfer({
          id: payment.id,
          creditAccount: outgoing.creditAccount,
          amount: outgoing.amount,
          executionCondition: payment.executionCondition,
          expiresAt: outgoing.expiresAt,
          ilpPacket: payment.ilpPacket,
        });
        outcome = forwardOutcome(payment, result, {
          connectorAddress,
          ownAccount: gateway.endpoint.account,
          now: this.options.now(),
        });
        break;
      }
      case 'pass-back': {
        const gateway = this.incomingGateway(payment);
        // Assertion: the state machine sets the fulfillment with the state (and a CHECK enforces it).
        if (!payment.fulfillment) throw new Error(`payment ${payment.id} is fulfilling without a fulfillment`);
        const result = await gateway.fulfillTransfer(payment.incomingTransferId, payment.fulfillment);
        outcome = passBackOutcome(payment, result, this.options.now());
        break;
      }
      case 'reject': {
        const gateway = this.incomingGateway(payment);
        if (!payment.ilpError) throw new Error(`payment ${payment.id} is rejecting without an ILP error`);
        const result = await gateway.rejectTransfer(payment.incomingTransferId, payment.ilpError);
        outcome = rejectOutcome(payment, result, { connectorAddress, now: this.options.now() });
        break;
      }
      default:
        return undefined;
    }
    return this.record(payment, outcome);
  }

  private incomingGateway(payment: Payment): LedgerGateway {
    const gateway = this.options.gateways.get(payment.incomingLedgerPrefix);
    if (!gateway) throw new Error(`payment ${payment.id} came from unknown ledger ${payment.incomingLedgerPrefix}`);
    return gateway;
  }

  private async record(payment: Payment, outcome: JobOutcome): Promise<Payment | undefined> {
    const { store, logger } = this.options;
    const now = this.options.now();
    const context = {
      paymentId: payment.id,
      job: jobOf(payment.state),
      incomingLedger: payment.incomingLedgerPrefix,
      incomingTransferId: payment.incomingTransferId,
    };
    switch (outcome.kind) {
      case 'done':
        if (outcome.note) logger.error(context, outcome.note);
        return undefined;
      case 'retry': {
        const attempts = payment.attempts + 1;
        const at = nextAttemptAt(payment, attempts, this.options.backoff, now);
        logger.warn(
          { ...context, attempts, error: outcome.error, retryAt: at.toISOString() },
          'ledger call failed; will retry',
        );
        await store.recordRetry(payment.id, payment.state, { attempts, nextAttemptAt: at, error: outcome.error, now });
        return undefined;
      }
      case 'move': {
        const moved = await store.moveState(payment.id, payment.state, outcome.to, {
          ilpError: outcome.ilpError,
          lastError: outcome.error,
          now,
          nextAttemptAt: now,
        });
        if (!moved) return undefined;
        if (outcome.lostMoney) {
          this.options.onLostMoney(payment, outcome.error);
          return undefined;
        }
        if (outcome.to === 'rejecting' && outcome.ilpError) {
          logger.info(
            { ...context, ilpCode: outcome.ilpError.code, reason: outcome.error },
            'rejecting the incoming transfer',
          );
          // The reject job runs at once, in this job's slot.
          return { ...payment, state: 'rejecting', ilpError: outcome.ilpError, attempts: 0 };
        }
        logger.info({ ...context, state: outcome.to, reason: outcome.error }, 'payment moved on');
        return undefined;
      }
    }
  }
}

function jobKey(payment: Payment): string {
  return `${payment.id}/${payment.state}`;
}
