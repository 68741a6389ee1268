/**
 * The connector assembled from its parts: a follower per ledger feeding the payment state
 * machine through the store, the job runner making the calls it owes, quoting, and the status
 * an operator reads. Plain TypeScript; the gRPC layer (grpc.ts) maps messages only.
 */
import { int8Maximum } from '../ledger/model';
import { isContentRejection } from '../platform/database';
import { flushLogsNow, type Logger } from '../platform/logger';
import { LedgerFollower } from './follower';
import type { Backoff } from './jobs';
import type { LedgerGateway } from './ledgers';
import type { ConnectorSettings, LedgerEndpoint, Payment, RateEntry, Route, TransferNotification } from './model';
import { jobStates } from './model';
import { applyNotification, classifyNotification, createTransitionContext } from './payments';
import { createLiquidityReader } from './liquidity';
import { createQuoting, type Liquidity, type NextHopQuoter, type Quote, type QuoteRequest } from './quoting';
import type { QuoteFailure } from './errors';
import { JobRunner } from './runner';
import type { PaymentStore } from './store';

/** Tunables, with production defaults; tests shorten them. */
export interface ConnectorTuning {
  /** A fresh job belongs to the process that created it for this long before the poller retries it. */
  jobLeaseMs: number;
  backoff: Backoff;
  jobConcurrency: number;
  jobPollIntervalMs: number;
  reconnect: { initialMs: number; maximumMs: number };
  /** How long a quote reuses the connector's balance read from a ledger (see liquidity.ts); 0: never. */
  liquidityMaxAgeMs: number;
}

export const defaultTuning: ConnectorTuning = {
  jobLeaseMs: 10_000,
  backoff: { initialMs: 50, maximumMs: 2_000 },
  jobConcurrency: 256,
  jobPollIntervalMs: 200,
  reconnect: { initialMs: 100, maximumMs: 5_000 },
  liquidityMaxAgeMs: 200,
};

/** What the connector needs. */
export interface ConnectorDependencies {
  settings: ConnectorSettings;
  store: PaymentStore;
  gateways: ReadonlyMap<string, LedgerGateway>;
  nextHop: NextHopQuoter;
  logger: Logger;
  now?: () => Date;
  tuning?: Partial<ConnectorTuning>;
  /** Test hook: never run pass-backs (see JobRunnerOptions.holdPassBacks). */
  holdPassBacks?: boolean;
  /** Called when every stream is connected, or one is not any more. */
  onReadinessChange?: (ready: boolean) => void;
}

/** One ledger in the status. */
export interface LedgerStatus {
  ledger: LedgerEndpoint;
  streamConnected: boolean;
  streamError: string | undefined;
  lastSequence: bigint;
  /** Undefined when the ledger could not be asked. */
  account: { balance: bigint; heldAmount: bigint } | undefined;
  inFlightOutgoingAmount: bigint;
  inFlightIncomingAmount: bigint;
}

/** What GetStatus reports. */
export interface ConnectorStatus {
  name: string;
  ilpAddress: string;
  ledgers: LedgerStatus[];
  payments: { forwarding: bigint; prepared: bigint; rejecting: bigint };
  passBack: { pending: bigint; retriesTotal: bigint; lostTotal: bigint };
  time: Date;
}

/** Creates the connector; {@link Connector.start} begins following the ledgers. */
export function createConnector(dependencies: ConnectorDependencies) {
  const { settings, store, gateways, logger } = dependencies;
  const now = dependencies.now ?? (() => new Date());
  const tuning = { ...defaultTuning, ...dependencies.tuning };
  const followers = new Map<string, LedgerFollower>();
  const maxHoldMs = (ledgerPrefix: string) =>
    Math.min(settings.maxHoldMs, followers.get(ledgerPrefix)?.info?.maxHoldMs ?? Number.MAX_SAFE_INTEGER);
  // Until a ledger has said what it takes, amounts are capped by what any ledger stores.
  const maxAmount = (ledgerPrefix: string) => followers.get(ledgerPrefix)?.info?.maxAmount ?? int8Maximum;
  const transitionContext = createTransitionContext(settings, { jobLeaseMs: tuning.jobLeaseMs, maxHoldMs, maxAmount });
  const { ledgers, routing, rates } = transitionContext;

  const runner = new JobRunner({
    store,
    gateways,
    connectorAddress: settings.ilpAddress,
    logger,
    now,
    backoff: tuning.backoff,
    concurrency: tuning.jobConcurrency,
    pollIntervalMs: tuning.jobPollIntervalMs,
    holdPassBacks: dependencies.holdPassBacks ?? false,
    onLostMoney: (payment, reason) => {
      logger.error(
        {
          paymentId: payment.id,
          incomingLedger: payment.incomingLedgerPrefix,
          incomingTransferId: payment.incomingTransferId,
          incomingAmount: payment.incomingAmount.toString(),
          outgoingLedger: payment.outgoing?.ledgerPrefix,
          outgoingTransferId: payment.id,
          outgoingAmount: payment.outgoing?.amount.toString(),
          reason,
        },
        'connector lost money: the outgoing transfer executed but the incoming transfer could not be fulfilled',
      );
      // The alarm must reach the log even if the process dies right after (the loss itself is
      // recorded with the payment, and GetStatus counts it).
      flushLogsNow(logger);
    },
  });

  const quoting = createQuoting({
    settings,
    ledgers,
    routing,
    rates,
    maxHoldMs,
    maxAmount,
    nextHop: dependencies.nextHop,
    liquidity: createLiquidityReader({
      maxAgeMs: tuning.liquidityMaxAgeMs,
      // Monotonic, and the real one even when tests inject `now`: it measures how old a read is.
      nowMs: () => performance.now(),
      read: readLiquidity,
    }),
  });

  /** The connector's available balance on a ledger, asked of the ledger. */
  async function readLiquidity(ledgerPrefix: string): Promise<Liquidity> {
    const gateway = gateways.get(ledgerPrefix);
    if (!gateway) return { kind: 'unknown', message: 'not connected' };
    const account = await gateway.account();
    if (account.kind !== 'ok') {
      return {
        kind: 'unknown',
        message: account.kind === 'refused' ? `${account.reason}: ${account.message}` : account.message,
      };
    }
    const { balance, minimumBalance } = account.value;
    return { kind: 'ok', available: minimumBalance === null ? null : balance - minimumBalance };
  }

  let ready = false;
  const updateReadiness = () => {
    const allConnected = [...followers.values()].every((follower) => follower.connected);
    if (allConnected !== ready) {
      ready = allConnected;
      dependencies.onReadinessChange?.(ready);
    }
  };

  /**
   * Runs the state machine over `notifications` from `ledger` (`sides[i]` classifies the i-th),
   * starting from `payments`: a payment not among them is not recorded. Returns the payments to
   * insert and those to update.
   */
  function applyNotifications(
    ledger: LedgerEndpoint,
    notifications: TransferNotification[],
    sides: ReturnType<typeof classifyNotification>[],
    payments: ReadonlyMap<string, Payment>,
  ): { changed: Payment[]; created: Payment[] } {
    const working = new Map(payments);
    const touched = new Set<string>();
    const time = now();
    notifications.forEach((notification, index) => {
      const side = sides[index];
      if (!side) return;
      const transition = applyNotification(
        working.get(side.paymentId),
        notification,
        ledger,
        transitionContext,
        time,
        side,
      );
      if (transition.note) {
        logger[transition.note.level](
          {
            ledger: ledger.prefix,
            transferId: notification.transfer.id,
            sequence: notification.sequence.toString(),
            paymentId: side.paymentId,
          },
          transition.note.message,
        );
      }
      if (transition.changed && transition.payment) {
        working.set(side.paymentId, transition.payment);
        touched.add(side.paymentId);
        logger.debug(
          {
            paymentId: side.paymentId,
            state: transition.payment.state,
            ledger: ledger.prefix,
            sequence: notification.sequence.toString(),
          },
          'payment moved',
        );
      }
    });
    const changed: Payment[] = [];
    const created: Payment[] = [];
    for (const id of touched) {
      const payment = working.get(id) as Payment;
      (payments.has(id) ? changed : created).push(payment);
    }
    return { changed, created };
  }

  /**
   * Applies notifications from `ledger` to their payments and stores them with the cursor, then
   * runs the jobs they created.
   */
  async function handleBatch(
    ledger: LedgerEndpoint,
    notifications: TransferNotification[],
    lastSequence: bigint,
  ): Promise<void> {
    const sides = notifications.map((notification) => classifyNotification(notification, ledger, settings.name));
    // An incoming transfer's `prepared` notification creates its payment, or changes nothing
    // when the payment exists (a replay), whatever its state: a batch of only those needs no
    // payment read or locked, and is stored with one statement.
    const creationsOnly = notifications.every((notification, index) => {
      const side = sides[index];
      return !side || (side.side === 'incoming' && notification.type === 'prepared');
    });
    const written = creationsOnly
      ? await store.createPayments(
          ledger.prefix,
          lastSequence,
          applyNotifications(ledger, notifications, sides, new Map()).created,
        )
      : await store.applyBatch(
          ledger.prefix,
          lastSequence,
          sides.flatMap((side) => side?.paymentId ?? []),
          (locked) => applyNotifications(ledger, notifications, sides, locked),
        );
    const jobs = written.filter((payment) => jobStates.includes(payment.state));
    for (const payment of jobs) {
      if (payment.state === 'rejecting' && payment.ilpError) {
        logger.info(
          {
            paymentId: payment.id,
            incomingTransferId: payment.incomingTransferId,
            ilpCode: payment.ilpError.code,
            reason: payment.ilpError.message,
          },
          'rejecting the incoming transfer',
        );
      }
    }
    await runner.submit(jobs);
  }

  /**
   * {@link handleBatch}, isolating a notification the database refuses for its content (a data
   * or integrity error, not an unreachable database): the follower would replay the same batch
   * forever, holding every later notification of that ledger — pass-backs included. The batch is
   * stored one notification at a time; one that still fails alone is given up if it would only
   * create a payment (its incoming transfer is not forwarded: it expires and its hold returns),
   * and holds the stream otherwise, as before (an error in the log, the stream's status).
   */
  async function storeBatch(
    ledger: LedgerEndpoint,
    notifications: TransferNotification[],
    lastSequence: bigint,
  ): Promise<void> {
    try {
      await handleBatch(ledger, notifications, lastSequence);
      return;
    } catch (error) {
      if (!isContentRejection(error) || notifications.length === 0) throw error;
      if (notifications.length > 1) {
        logger.warn(
          { err: error, ledger: ledger.prefix, notifications: notifications.length },
          'the database refused a batch of notifications; storing them one at a time',
        );
        for (const notification of notifications) await storeBatch(ledger, [notification], notification.sequence);
        await handleBatch(ledger, [], lastSequence);
        return;
      }
      const [notification] = notifications;
      const side = classifyNotification(notification, ledger, settings.name);
      if (side?.side !== 'incoming' || notification.type !== 'prepared') throw error;
      logger.error(
        {
          err: error,
          ledger: ledger.prefix,
          sequence: notification.sequence.toString(),
          incomingTransferId: notification.transfer.id,
          amount: notification.transfer.amount.toString(),
        },
        'cannot store the payment of an incoming transfer: not forwarding it (it expires and its hold returns)',
      );
      await handleBatch(ledger, [], lastSequence);
    }
  }

  return {
    settings,

    /** Starts following every ledger from its stored cursor, and the job runner. */
    async start(): Promise<void> {
      const cursors = await store.loadCursors();
      for (const ledger of settings.ledgers) {
        const gateway = gateways.get(ledger.prefix) as LedgerGateway;
        const follower = new LedgerFollower({
          gateway,
          initialSequence: cursors.get(ledger.prefix) ?? 0n,
          handleBatch: (notifications, lastSequence) => storeBatch(ledger, notifications, lastSequence),
          onConnectionChange: updateReadiness,
          logger,
          reconnect: tuning.reconnect,
        });
        followers.set(ledger.prefix, follower);
      }
      await runner.start();
      for (const follower of followers.values()) follower.start();
    },

    async stop(): Promise<void> {
      await Promise.all([...followers.values()].map((follower) => follower.stop()));
      await runner.stop();
    },

    /** Whether every ledger stream is live. */
    isReady: () => ready,

    /** Each ledger's stream, for metrics. */
    followerStates: () =>
      settings.ledgers.map((ledger) => ({
        prefix: ledger.prefix,
        connected: followers.get(ledger.prefix)?.connected ?? false,
      })),

    async status(): Promise<ConnectorStatus> {
      const [figures, accounts] = await Promise.all([
        store.status(),
        // A status page must answer while a ledger is down: ask briefly.
        Promise.all(settings.ledgers.map((ledger) => (gateways.get(ledger.prefix) as LedgerGateway).account(1000))),
      ]);
      return {
        name: settings.name,
        ilpAddress: settings.ilpAddress,
        ledgers: settings.ledgers.map((ledger, index) => {
          const follower = followers.get(ledger.prefix);
          const account = accounts[index];
          const inFlight = figures.inFlight.get(ledger.prefix);
          return {
            ledger,
            streamConnected: follower?.connected ?? false,
            streamError: follower?.lastError,
            lastSequence: follower?.lastSequence ?? 0n,
            account:
              account.kind === 'ok'
                ? { balance: account.value.balance, heldAmount: account.value.heldAmount }
                : undefined,
            inFlightOutgoingAmount: inFlight?.outgoing ?? 0n,
            inFlightIncomingAmount: inFlight?.incoming ?? 0n,
          };
        }),
        payments: {
          forwarding: figures.counts.forwarding,
          prepared: figures.counts.prepared,
          rejecting: figures.counts.rejecting,
        },
        passBack: {
          pending: figures.counts.fulfilling,
          retriesTotal: figures.passBackRetries,
          lostTotal: figures.counts.lost,
        },
        time: now(),
      };
    },

    routes: (): Route[] => routing.list(),

    rates: (): Array<RateEntry & { derived: boolean }> => rates.list(),

    quote: (request: QuoteRequest): Promise<Quote | QuoteFailure> => quoting.quote(request),

    /** The connector's ledgers by prefix (for validating quote requests). */
    ledgers: ledgers as ReadonlyMap<string, LedgerEndpoint>,
  };
}

export type Connector = ReturnType<typeof createConnector>;
