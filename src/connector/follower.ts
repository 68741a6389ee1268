/**
 * Follows one ledger's notification stream for the connector's account, from the last sequence
 * the connector processed. Notifications are handled in batches, each batch and the new cursor in
 * one transaction (see PaymentStore.applyBatch); a stream that ends or fails, or a batch that
 * cannot be stored, is re-opened with backoff from the last stored sequence, so a notification
 * is never lost and an already stored one is never applied again.
 *
 * The queue between the stream and the handler is bounded: when it is full the stream is paused,
 * and HTTP/2 flow control slows the ledger down.
 */
import type { Logger } from '../platform/logger';
import type { LedgerGateway, NotificationStream, ObservedLedgerInfo } from './ledgers';
import type { TransferNotification } from './model';

/** Options of {@link LedgerFollower}. */
export interface LedgerFollowerOptions {
  gateway: LedgerGateway;
  /** The last sequence already processed (0: from the ledger's beginning). */
  initialSequence: bigint;
  /** Stores a batch of notifications and the cursor `lastSequence`; throws when it could not. */
  handleBatch(notifications: TransferNotification[], lastSequence: bigint): Promise<void>;
  /** Called whenever the stream connects or disconnects. */
  onConnectionChange(): void;
  logger: Logger;
  reconnect?: { initialMs: number; maximumMs: number };
  batchSize?: number;
  queueCapacity?: number;
}

type QueueItem = TransferNotification | { ledgerPrefix: string; sequence: bigint; type: 'other' };

/** One ledger's stream, kept open until {@link LedgerFollower.stop}. */
export class LedgerFollower {
  /** Whether the stream is live. */
  connected = false;
  /** The sequence of the last notification stored. */
  lastSequence: bigint;
  /** Why the stream is down, when it is. */
  lastError: string | undefined;
  /** What the ledger said about itself at the last connection. */
  info: ObservedLedgerInfo | undefined;

  private stopped = false;
  private stream: NotificationStream | undefined;
  private wake: (() => void) | undefined;
  private sleeping: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: LedgerFollowerOptions) {
    this.lastSequence = options.initialSequence;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stream?.cancel();
    this.wake?.();
    if (this.sleeping) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.resolve();
    }
    await this.loop;
  }

  private async run(): Promise<void> {
    const { gateway, logger } = this.options;
    const reconnect = this.options.reconnect ?? { initialMs: 100, maximumMs: 5000 };
    let failures = 0;
    while (!this.stopped) {
      const info = await gateway.info();
      if (info.kind === 'ok') {
        const mismatch = this.checkInfo(info.value);
        if (mismatch) {
          this.setError(mismatch);
          logger.error({ ledger: gateway.endpoint.prefix, endpoint: gateway.endpoint.endpoint }, mismatch);
        } else {
          this.info = info.value;
          const delivered = await this.follow();
          if (delivered) failures = 0;
        }
      } else {
        this.setError(`ledger info: ${info.kind === 'refused' ? `${info.reason}: ${info.message}` : info.message}`);
      }
      if (this.stopped) break;
      failures += 1;
      const delayMs = Math.min(reconnect.maximumMs, reconnect.initialMs * 2 ** Math.min(failures - 1, 16));
      logger.warn(
        { ledger: gateway.endpoint.prefix, error: this.lastError, retryInMs: delayMs },
        'ledger stream down; reconnecting',
      );
      await this.sleep(Math.round(delayMs * (0.75 + Math.random() * 0.5)));
    }
  }

  private checkInfo(info: ObservedLedgerInfo): string | undefined {
    const expected = this.options.gateway.endpoint;
    if (info.prefix !== expected.prefix)
      return `the ledger at ${expected.endpoint} has prefix ${info.prefix}, configured ${expected.prefix}`;
    if (info.currency !== expected.currency || info.scale !== expected.scale) {
      return `the ledger ${expected.prefix} holds ${info.currency} at scale ${info.scale}, configured ${expected.currency} at scale ${expected.scale}`;
    }
    return undefined;
  }

  private setError(error: string | undefined): void {
    const wasConnected = this.connected;
    this.connected = false;
    this.lastError = error;
    if (wasConnected) this.options.onConnectionChange();
  }

  /** Opens the stream and handles it until it closes; true when it got as far as subscribing. */
  private follow(): Promise<boolean> {
    const { gateway, logger } = this.options;
    const batchSize = this.options.batchSize ?? 200;
    const capacity = this.options.queueCapacity ?? 1000;
    const queue: QueueItem[] = [];
    let closed = false;
    let subscribed = false;
    let paused = false;
    const notify = () => {
      const wake = this.wake;
      this.wake = undefined;
      wake?.();
    };
    const stream = gateway.subscribe(this.lastSequence, {
      onSubscribed: (headSequence) => {
        subscribed = true;
        this.connected = true;
        this.lastError = undefined;
        logger.info(
          {
            ledger: gateway.endpoint.prefix,
            afterSequence: this.lastSequence.toString(),
            headSequence: headSequence.toString(),
          },
          'ledger stream connected',
        );
        this.options.onConnectionChange();
      },
      onNotification: (notification) => {
        queue.push(notification);
        if (queue.length >= capacity && !paused) {
          paused = true;
          stream.pause();
        }
        notify();
      },
      onClosed: (error) => {
        closed = true;
        this.setError(error ?? 'the ledger ended the stream');
        notify();
      },
    });
    this.stream = stream;
    return (async () => {
      for (;;) {
        if (this.stopped) break;
        if (queue.length === 0) {
          if (closed || this.stopped) break;
          await new Promise<void>((resolve) => (this.wake = resolve));
          continue;
        }
        const batch = queue.splice(0, batchSize);
        if (paused && queue.length < capacity / 2) {
          paused = false;
          stream.resume();
        }
        // A reopened stream replays from the stored cursor; anything at or before it is done.
        const fresh = batch.filter((item) => item.sequence > this.lastSequence);
        if (fresh.length === 0) continue;
        const lastSequence = fresh[fresh.length - 1].sequence;
        const notifications = fresh.filter((item): item is TransferNotification => item.type !== 'other');
        try {
          await this.options.handleBatch(notifications, lastSequence);
          this.lastSequence = lastSequence;
        } catch (error) {
          logger.error({ err: error, ledger: gateway.endpoint.prefix }, 'storing notifications failed; resubscribing');
          stream.cancel();
          this.setError(`storing notifications failed: ${(error as Error).message}`);
          break;
        }
      }
      this.stream = undefined;
      stream.cancel();
      return subscribed;
    })();
  }

  private sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeping = undefined;
        resolve();
      }, delayMs);
      this.sleeping = { timer, resolve };
    });
  }
}
