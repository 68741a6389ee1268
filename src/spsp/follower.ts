/**
 * Follows the SPSP service's ledger: one notification stream over every account the SPSP
 * principal owns, resumed after restarts from a persisted cursor so that no transfer to a
 * receiver and no outcome of a payment passes unseen.
 *
 * Notifications are handled concurrently (bounded: the stream is read no faster than handlers
 * finish), and the cursor only advances over a gap-free prefix of handled ones, so a crash
 * replays what was in flight; handlers are idempotent. A handler failing because a service is
 * unavailable is retried with backoff; any other failure is logged loudly and skipped, so that
 * one bad notification cannot stop the receiver.
 *
 * The ledger fixes a subscription's accounts when it starts, so an account the service comes to
 * own later (a new customer) is followed by resubscribing from the cursor: see {@link follow}.
 */
import { isDatabaseUnavailableError, isRetryableTransactionError } from '../platform/database';
import type { Logger } from '../platform/logger';
import { RemoteError, type LedgerNotification, type SpspLedger } from './ports';

/** A notification about a transfer. */
export type TransferNotification = Extract<LedgerNotification, { kind: 'transfer' }>;

/** What the follower needs. */
export interface FollowerDependencies {
  ledger: Pick<SpspLedger, 'subscribe' | 'listOwnedAccounts'>;
  /** The persisted cursor. */
  cursor: { read(): Promise<bigint | undefined>; save(sequence: bigint): Promise<void> };
  /** Handles one notification; `owned` is the set of accounts the stream covers. */
  handle(notification: TransferNotification, owned: ReadonlySet<string>): Promise<void>;
  logger: Logger;
  /** Notifications handled at once (default 64). */
  concurrency?: number;
  /** Backoff between reconnections and retries: from `retryMinMs` doubling up to `retryMaxMs`. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

interface Slot {
  sequence: bigint;
  done: boolean;
}

/** follow() of an account this service's principal does not own on its ledger. */
export class AccountNotOwnedError extends Error {
  constructor(readonly account: string) {
    super(`account "${account}" is not among the accounts this service's principal owns`);
    this.name = 'AccountNotOwnedError';
  }
}

function isRetryable(error: unknown): boolean {
  return (
    (error instanceof RemoteError && error.kind === 'unavailable') ||
    isDatabaseUnavailableError(error) ||
    isRetryableTransactionError(error)
  );
}

const sleep = (milliseconds: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, milliseconds);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** The SPSP service's ledger notification stream. */
export class LedgerFollower {
  private owned = new Set<string>();
  private live = false;
  private readonly stopping = new AbortController();
  private subscription: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private resubscribe = false;
  private liveWaiters: Array<() => void> = [];
  private slots: Slot[] = [];
  private inFlight = 0;
  private slotWaiters: Array<() => void> = [];
  private watermark: bigint | undefined;
  private savedWatermark: bigint | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private readonly concurrency: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;

  constructor(private readonly dependencies: FollowerDependencies) {
    this.concurrency = dependencies.concurrency ?? 64;
    this.retryMinMs = dependencies.retryMinMs ?? 200;
    this.retryMaxMs = dependencies.retryMaxMs ?? 5_000;
  }

  /** Whether the stream is live. */
  get connected(): boolean {
    return this.live;
  }

  /** The accounts the current subscription covers. */
  get accounts(): ReadonlySet<string> {
    return this.owned;
  }

  /** Starts following; resolves once the stream is live or after `timeoutMs` (it keeps trying). */
  async start(timeoutMs = 10_000): Promise<void> {
    this.loop ??= this.run();
    await this.waitUntilLive(timeoutMs);
  }

  /**
   * Makes sure the stream covers `account`: when it is not among the followed accounts but the
   * principal owns it now, resubscribes from the cursor and waits until the stream is live again.
   * An account the principal does not own is left alone (a transfer from it would be refused).
   */
  async follow(account: string, timeoutMs = 5_000): Promise<void> {
    if (this.owned.has(account) && this.live) return;
    const deadline = Date.now() + timeoutMs;
    if (!this.owned.has(account)) {
      const owned = await this.dependencies.ledger.listOwnedAccounts();
      if (!owned.includes(account)) throw new AccountNotOwnedError(account);
      this.resubscribe = true;
      this.subscription?.abort();
    }
    // (Another account's resubscription may start while this one waits: wait on, within the time.)
    while (!this.live || this.resubscribe) {
      const left = deadline - Date.now();
      // A ledger that cannot be followed will not take a transfer either: better to fail the
      // payment now, with nothing sent, than to prepare a transfer whose answer may be lost.
      if (left <= 0) throw new Error(`the ledger's notification stream is not live after ${timeoutMs} ms`);
      await this.waitUntilLive(left);
    }
  }

  /** Stops following, after the notifications in flight are handled and the cursor is saved. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.subscription?.abort();
    await this.loop;
    this.wakeLiveWaiters();
  }

  private async waitUntilLive(timeoutMs: number): Promise<void> {
    if (this.live && !this.resubscribe) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.liveWaiters.push(done);
    });
  }

  private wakeLiveWaiters(): void {
    const waiters = this.liveWaiters;
    this.liveWaiters = [];
    for (const wake of waiters) wake();
  }

  private async run(): Promise<void> {
    const { ledger, cursor, logger } = this.dependencies;
    const stop = this.stopping.signal;
    let backoffMs = this.retryMinMs;
    while (!stop.aborted) {
      const subscription = new AbortController();
      this.subscription = subscription;
      try {
        this.owned = new Set(await ledger.listOwnedAccounts());
        this.watermark = await cursor.read();
        this.savedWatermark = this.watermark;
        this.resubscribe = false;
        for await (const message of ledger.subscribe(this.watermark, subscription.signal)) {
          if (message.kind === 'subscribed') {
            // The first subscription ever starts at the head: remember it at once, so that a
            // crash before the first notification does not skip what happens meanwhile.
            if (this.watermark === undefined) {
              this.watermark = message.headSequence;
              await this.saveCursor();
            }
            this.live = true;
            backoffMs = this.retryMinMs;
            logger.info(
              { accounts: this.owned.size, afterSequence: this.watermark?.toString() },
              'following the ledger',
            );
            this.wakeLiveWaiters();
            continue;
          }
          await this.dispatch(message);
        }
      } catch (error) {
        if (!subscription.signal.aborted)
          logger.warn({ err: error }, 'ledger notification stream failed; reconnecting');
      }
      this.live = false;
      await this.drain();
      await this.saveCursor().catch((error) => logger.warn({ err: error }, 'cannot save the ledger cursor'));
      if (stop.aborted) break;
      if (this.resubscribe) continue;
      await sleep(backoffMs, stop);
      backoffMs = Math.min(backoffMs * 2, this.retryMaxMs);
    }
    clearTimeout(this.saveTimer);
  }

  private async dispatch(message: LedgerNotification): Promise<void> {
    if (message.kind === 'subscribed') return;
    while (this.inFlight >= this.concurrency) {
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    }
    const slot: Slot = { sequence: message.sequence, done: false };
    this.slots.push(slot);
    if (message.kind === 'other') {
      slot.done = true;
      this.advance();
      return;
    }
    this.inFlight += 1;
    const owned = this.owned;
    void this.handleWithRetry(message, owned).then((handled) => {
      slot.done = handled;
      this.inFlight -= 1;
      this.advance();
      const waiters = this.slotWaiters;
      this.slotWaiters = [];
      for (const wake of waiters) wake();
    });
  }

  /** True once handled (or skipped as unhandleable); false when stopped before it could be. */
  private async handleWithRetry(notification: TransferNotification, owned: ReadonlySet<string>): Promise<boolean> {
    const { handle, logger } = this.dependencies;
    const stop = this.stopping.signal;
    let delayMs = this.retryMinMs;
    for (;;) {
      try {
        await handle(notification, owned);
        return true;
      } catch (error) {
        if (!isRetryable(error)) {
          logger.error(
            { err: error, sequence: notification.sequence.toString(), transferId: notification.transfer.id },
            'cannot handle a ledger notification; skipped',
          );
          return true;
        }
        if (stop.aborted) return false;
        logger.warn({ err: error, transferId: notification.transfer.id }, 'handling a notification failed; retrying');
        await sleep(delayMs, stop);
        if (stop.aborted) return false;
        delayMs = Math.min(delayMs * 2, this.retryMaxMs);
      }
    }
  }

  /** Moves the watermark over the handled prefix and schedules saving it. */
  private advance(): void {
    while (this.slots.length > 0 && this.slots[0].done) {
      this.watermark = this.slots.shift()!.sequence;
    }
    if (this.saveTimer === undefined && this.watermark !== this.savedWatermark) {
      this.saveTimer = setTimeout(() => {
        this.saveTimer = undefined;
        this.saveCursor().catch((error) =>
          this.dependencies.logger.warn({ err: error }, 'cannot save the ledger cursor'),
        );
      }, 200);
    }
  }

  private async saveCursor(): Promise<void> {
    const watermark = this.watermark;
    if (watermark === undefined || watermark === this.savedWatermark) return;
    await this.dependencies.cursor.save(watermark);
    if (this.savedWatermark === undefined || watermark > this.savedWatermark) this.savedWatermark = watermark;
  }

  /** Waits for the handlers in flight; the ones never done stay ahead of the watermark. */
  private async drain(): Promise<void> {
    while (this.inFlight > 0) {
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    }
    this.slots = [];
  }
}
