/**
 * Notification fan-out. Each ledger process keeps one LISTEN connection and one bounded ring of
 * recent events read from the outbox (one query per burst of commits, however many subscribers),
 * and each subscriber walks the sequence from its own cursor: from the ring when it is current,
 * straight from the outbox when it is behind (resuming after a disconnect, or slower than the
 * ring's turnover). Nothing grows with a slow subscriber: it is paced by its own stream.
 *
 * A subscriber may follow only the accounts its principal owns, and an account can change owner
 * while a stream is open. UpdateAccount announces such a change on its own channel in the same
 * transaction; the hub counts the changes, and a stream compares that counter (a number, not a
 * query) before each event, asking its subscription to check the owners again only when it moved.
 */
import type pg from 'pg';
import { createClient } from '../platform/database';
import type { EventType, LedgerEvent, Transfer } from './model';
import { eventChannel } from './processor';
import { messageFromRow, transferColumns, transferFromRow, type TransferRow } from './rows';

/** The LISTEN/NOTIFY channel on which UpdateAccount announces an account's new owner (payload: its name). */
export const ownerChannel = 'interclear_ledger_owners';

/** Options of {@link EventHub}. */
export interface EventHubOptions {
  /** Events kept in memory for subscribers that are up to date. */
  ringCapacity?: number;
  /** Safety-net poll of the head, for notifications lost while LISTEN reconnects. */
  pollIntervalMs?: number;
  /** Called when the LISTEN connection fails (it is re-established). */
  onError?: (error: unknown) => void;
  /** Whether this process has batches committing, whose events publishCommitted will bring. */
  localCommitsInFlight?: () => boolean;
}

const pageSize = 500;
/**
 * The longest a NOTIFY waits, while this process has commits in flight, for publishCommitted to
 * bring the events it announces before the outbox is read: the commit's reply and the
 * notification travel on different connections.
 */
const notificationGraceMs = 50;

/** Reads events with their transfer or message as they were right after the change. */
export async function readEvents(pool: pg.Pool, afterSequence: bigint, limit: number): Promise<LedgerEvent[]> {
  const result = await pool.query<
    TransferRow & {
      sequence: bigint;
      event_type: EventType;
      event_accounts: string[];
      occurred_at: Date;
      has_transfer: boolean;
      message_id: string | null;
      from_account: string;
      to_account: string;
      message_data: Buffer;
      sent_at: Date;
    }
  >({
    name: 'hub-read-events',
    text:
      'select e.sequence, e.type as event_type, e.accounts as event_accounts, e.occurred_at, ' +
      `t.id is not null as has_transfer, ${transferColumns
        .split(', ')
        .map((column) => `t.${column}`)
        .join(', ')}, ` +
      'm.id as message_id, m.from_account, m.to_account, m.data as message_data, m.sent_at ' +
      'from events e left join transfers t on t.id = e.transfer_id left join messages m on m.id = e.message_id ' +
      'where e.sequence > $1 order by e.sequence limit $2',
    values: [afterSequence.toString(), limit],
  });
  return result.rows.map((row) => {
    const event: LedgerEvent = {
      sequence: row.sequence,
      type: row.event_type,
      occurredAt: row.occurred_at,
      accounts: row.event_accounts,
    };
    if (row.has_transfer) event.transfer = snapshotAt(transferFromRow(row), row.event_type);
    if (row.message_id) {
      event.message = messageFromRow({
        id: row.message_id,
        from_account: row.from_account,
        to_account: row.to_account,
        data: row.message_data,
        sent_at: row.sent_at,
      });
    }
    return event;
  });
}

/**
 * A transfer changes at most once after it is prepared, so its state at an event follows from
 * the current row and the event's type.
 */
function snapshotAt(transfer: Transfer, type: EventType): Transfer {
  if (type === 'transfer_prepared') {
    return {
      ...transfer,
      state: 'prepared',
      fulfillment: null,
      executedAt: null,
      rejectedAt: null,
      rejectionReason: null,
      ilpError: null,
    };
  }
  return transfer;
}

/** Reads the ledger's latest committed sequence number. */
export async function readHeadSequence(pool: pg.Pool): Promise<bigint> {
  const result = await pool.query<{ sequence: bigint }>('select sequence from ledger_head');
  return result.rows[0].sequence;
}

/** What a subscriber wants. `accounts` null: every account. `types` null: every type. */
export interface EventFilter {
  accounts: Set<string> | null;
  types: Set<EventType> | null;
}

/**
 * How a stream learns that accounts changed owner: the hub's change counter when the
 * subscription last checked owners, and the check to run (with the accounts changed since) when
 * the counter has moved. The check may narrow the filter's accounts or throw to end the stream.
 */
export interface OwnerCheck {
  checkedAt: number;
  /** `changedAccounts` null: any account may have changed owner (the announcements were missed). */
  recheck(changedAccounts: string[] | null): Promise<void>;
}

export function matchesFilter(event: LedgerEvent, filter: EventFilter): boolean {
  if (filter.types && !filter.types.has(event.type)) return false;
  if (filter.accounts && !event.accounts.some((account) => filter.accounts?.has(account))) return false;
  return true;
}

/** One process's view of the ledger's event stream. */
export class EventHub {
  private ring: LedgerEvent[] = [];
  private lastFetched = 0n;
  private knownHead = 0n;
  /** The highest head announced by NOTIFY. */
  private notifiedHead = 0n;
  private notificationTimer: NodeJS.Timeout | undefined;
  private listener: pg.Client | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private fetching: Promise<void> | undefined;
  private fetchAgain = false;
  private closed = false;
  private readonly waiters = new Set<() => void>();
  /** Owner changes seen (announced or made here), and the latest change of each account. */
  private ownerChanges = 0;
  private readonly ownerChangedAt = new Map<string, number>();
  /** The change count at which any owner may have changed unannounced (a LISTEN outage). */
  private everyOwnerChangedAt = 0;
  private listenedBefore = false;
  private readonly ringCapacity: number;
  private readonly pollIntervalMs: number;
  private readonly onError: (error: unknown) => void;
  private readonly localCommitsInFlight: () => boolean;
  /** Current subscribers (for metrics). */
  subscribers = 0;
  /** Reads of the outbox into the ring (a batch committed by this process needs none). */
  /** Reads of the outbox, and how many of them a NOTIFY caused after waiting the grace time in vain. */
  readonly statistics = { outboxReads: 0, graceExpiredReads: 0 };

  constructor(
    private readonly pool: pg.Pool,
    private readonly url: string,
    options: EventHubOptions = {},
  ) {
    this.ringCapacity = options.ringCapacity ?? 4096;
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.onError = options.onError ?? (() => undefined);
    this.localCommitsInFlight = options.localCommitsInFlight ?? (() => false);
  }

  /** Starts listening; events committed from now on reach the ring. */
  async start(): Promise<void> {
    this.lastFetched = await readHeadSequence(this.pool);
    this.knownHead = this.lastFetched;
    await this.listen();
    this.pollTimer = setInterval(() => this.requestFetch(), this.pollIntervalMs);
    this.pollTimer.unref();
  }

  /** Stops listening and releases every waiting subscriber. */
  async stop(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.notificationTimer) clearTimeout(this.notificationTimer);
    this.wakeAll();
    await this.fetching?.catch(() => undefined);
    await this.listener?.end().catch(() => undefined);
  }

  /** Whether the LISTEN connection is up (for readiness). */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  private async listen(): Promise<void> {
    const client = createClient(this.url, 'interclear-ledger-listener');
    client.on('notification', (notification) => {
      if (notification.channel === ownerChannel) {
        if (notification.payload) this.ownerChanged(notification.payload);
        return;
      }
      // The payload is the new head. A batch this process committed reaches the ring through
      // publishCommitted, usually a moment after its NOTIFY arrives here: wait that moment
      // before reading the outbox, and read only if the ring is still behind.
      const head = /^\d+$/.test(notification.payload ?? '') ? BigInt(notification.payload as string) : undefined;
      if (head === undefined) return this.requestFetch();
      if (head > this.notifiedHead) this.notifiedHead = head;
      if (this.notifiedHead <= this.lastFetched) return;
      // No commit of ours pending: another replica's events, to read now.
      if (!this.localCommitsInFlight()) return this.requestFetch();
      if (!this.notificationTimer) {
        this.notificationTimer = setTimeout(() => {
          this.notificationTimer = undefined;
          if (this.notifiedHead > this.lastFetched) {
            this.statistics.graceExpiredReads += 1;
            this.requestFetch();
          }
        }, notificationGraceMs);
        this.notificationTimer.unref();
      }
    });
    client.on('error', (error) => this.reconnect(client, error));
    client.on('end', () => this.reconnect(client, new Error('LISTEN connection ended')));
    await client.connect();
    await client.query(`listen ${eventChannel}; listen ${ownerChannel}`);
    this.listener = client;
    // Anything committed while we were not listening.
    this.requestFetch();
    // And any owner change announced meanwhile, which no one repeats: every stream checks its
    // accounts' owners again (one query each).
    if (this.listenedBefore) this.everyOwnerMayHaveChanged();
    this.listenedBefore = true;
  }

  private reconnect(client: pg.Client, error: unknown): void {
    if (this.listener !== client && this.listener !== undefined) return;
    this.listener = undefined;
    client.removeAllListeners();
    client.on('error', () => undefined);
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.onError(error);
    this.reconnectTimer = setTimeout(() => {
      this.listen().catch((nextError) => this.reconnect(client, nextError));
    }, 1000);
    this.reconnectTimer.unref();
  }

  /**
   * Takes the events of a batch this process just committed straight into the ring when they
   * follow on from it (no read needed); otherwise reads what is missing from the outbox.
   */
  publishCommitted(events: LedgerEvent[]): void {
    if (this.closed || events.length === 0) return;
    // A read in flight skips what is appended here meanwhile (it keeps only newer events).
    if (events[0].sequence !== this.lastFetched + 1n) {
      this.requestFetch();
      return;
    }
    this.appendToRing(events);
  }

  private appendToRing(events: LedgerEvent[]): void {
    for (const event of events) this.ring.push(event);
    if (this.ring.length > this.ringCapacity) this.ring.splice(0, this.ring.length - this.ringCapacity);
    this.lastFetched = events[events.length - 1].sequence;
    if (this.lastFetched > this.knownHead) this.knownHead = this.lastFetched;
    this.wakeAll();
  }

  /** Reads new events into the ring; concurrent requests collapse into one more read. */
  requestFetch(): void {
    if (this.closed) return;
    if (this.fetching) {
      this.fetchAgain = true;
      return;
    }
    this.fetching = this.fetchNew()
      .catch((error) => this.onError(error))
      .finally(() => {
        this.fetching = undefined;
        if (this.fetchAgain) {
          this.fetchAgain = false;
          this.requestFetch();
        }
      });
  }

  private async fetchNew(): Promise<void> {
    for (;;) {
      this.statistics.outboxReads += 1;
      const events = await readEvents(this.pool, this.lastFetched, pageSize);
      // Events published locally meanwhile may have moved the ring on.
      const fresh = events.filter((event) => event.sequence > this.lastFetched);
      if (fresh.length === 0 || fresh[0].sequence !== this.lastFetched + 1n) return;
      this.appendToRing(fresh);
      if (events.length < pageSize) return;
    }
  }

  /** The owner-change counter, read before a subscription checks its owners. */
  get ownerChangeCount(): number {
    return this.ownerChanges;
  }

  /**
   * Records that `account` changed owner (announced on {@link ownerChannel}, or by UpdateAccount
   * in this process, which need not wait for the announcement) and wakes the streams.
   */
  ownerChanged(account: string): void {
    this.ownerChanges += 1;
    this.ownerChangedAt.set(account, this.ownerChanges);
    this.wakeAll();
  }

  private everyOwnerMayHaveChanged(): void {
    this.ownerChanges += 1;
    this.everyOwnerChangedAt = this.ownerChanges;
    this.wakeAll();
  }

  /** The accounts that changed owner since `count`, or null when any may have. */
  private accountsChangedSince(count: number): string[] | null {
    if (this.everyOwnerChangedAt > count) return null;
    const accounts: string[] = [];
    for (const [account, changedAt] of this.ownerChangedAt) if (changedAt > count) accounts.push(account);
    return accounts;
  }

  private wakeAll(): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /**
   * Up to `limit` events after `cursor`, in order: from the ring when it holds the next one,
   * otherwise from the outbox. Empty when the subscriber is up to date.
   */
  async eventsAfter(cursor: bigint, limit = pageSize): Promise<LedgerEvent[]> {
    const first = this.ring[0];
    if (first && first.sequence <= cursor + 1n) {
      if (cursor >= this.lastFetched) return [];
      const start = Number(cursor + 1n - first.sequence);
      return this.ring.slice(start, start + limit);
    }
    if (cursor >= this.knownHead) return [];
    return readEvents(this.pool, cursor, limit);
  }

  /** Resolves once an event after `cursor` is known, or when `signal` aborts or the hub stops. */
  waitForEventsAfter(cursor: bigint, signal: AbortSignal): Promise<void> {
    if (this.lastFetched > cursor || this.closed || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        signal.removeEventListener('abort', wake);
        this.waiters.delete(wake);
        resolve();
      };
      this.waiters.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  /**
   * Streams the events after `cursor` that match `filter`, in sequence order, each once, until
   * `signal` aborts. The caller's consumption paces it (an async generator only reads on demand).
   * With `owners`, accounts that changed owner are checked again before the next event.
   */
  async *follow(
    cursor: bigint,
    filter: EventFilter,
    signal: AbortSignal,
    owners?: OwnerCheck,
  ): AsyncGenerator<LedgerEvent> {
    this.subscribers += 1;
    const checkOwners = async () => {
      if (!owners || owners.checkedAt === this.ownerChanges) return;
      const since = owners.checkedAt;
      owners.checkedAt = this.ownerChanges;
      await owners.recheck(this.accountsChangedSince(since));
    };
    try {
      while (!signal.aborted && !this.closed) {
        await checkOwners();
        const events = await this.eventsAfter(cursor);
        if (events.length === 0) {
          await this.waitForEventsAfter(cursor, signal);
          continue;
        }
        for (const event of events) {
          if (signal.aborted) return;
          cursor = event.sequence;
          if (owners && owners.checkedAt !== this.ownerChanges) await checkOwners();
          if (matchesFilter(event, filter)) yield event;
        }
      }
    } finally {
      this.subscribers -= 1;
    }
  }
}
