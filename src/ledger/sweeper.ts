/**
 * The expiry sweeper: rejects prepared transfers past their expiry and returns their holds.
 *
 * Its queue is the database (the partial index of prepared transfers by expiry), not a timer in
 * memory, so a restart loses nothing; SKIP LOCKED lets several replicas sweep side by side and
 * keeps the sweeper from waiting on transfers the hot path is changing. Expiry is judged on the
 * database clock after the transfer's lock is held, as FulfillTransfer does, so a transfer can
 * never both expire and execute.
 *
 * A hold always fits back into its balance on an account that keeps the ledger's invariant
 * (balance + held amount <= 2^63-1, see canCredit in model.ts). An account that broke it before
 * the ledger enforced it must not stall the sweep of everyone else's transfers: a transfer whose
 * hold does not fit is left prepared (and reported), and is not even selected while it cannot fit,
 * so a backlog of such transfers never fills the sweeper's batches. Withdrawing from the account
 * lets it expire on the next sweep.
 */
import type pg from 'pg';
import { isDatabaseUnavailableError, isRetryableTransactionError } from '../platform/database';
import { canReturnHold } from './model';
import { appendEvents, type PendingEvent } from './processor';

/** Options of {@link ExpirySweeper}. */
export interface ExpirySweeperOptions {
  /** Pause between sweeps when nothing was due. */
  intervalMs?: number;
  /** Most transfers expired per transaction. */
  batchSize?: number;
  /** Milliseconds added to the database clock (the same injected clock as the processor). */
  clockOffsetMs?: () => number;
  /** Failures other than lost races and an unavailable database. */
  onError?: (error: unknown) => void;
}

/** Rejects expired transfers, periodically or on demand. */
export class ExpirySweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = true;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly clockOffsetMs: () => number;
  private readonly onError: (error: unknown) => void;
  /** Transfers expired by this process, and how late the latest sweep found its oldest one. */
  readonly statistics = { expired: 0, lagMs: 0 };

  constructor(
    private readonly pool: pg.Pool,
    options: ExpirySweeperOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 100;
    this.batchSize = options.batchSize ?? 500;
    this.clockOffsetMs = options.clockOffsetMs ?? (() => 0);
    this.onError = options.onError ?? (() => undefined);
  }

  /** Sweeps every intervalMs until {@link stop}. */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops sweeping and waits for a sweep in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sweepUntilDone();
      void this.running
        .catch((error) => {
          if (!isDatabaseUnavailableError(error)) this.onError(error);
          return 0;
        })
        .then(() => this.schedule(this.intervalMs));
    }, delayMs);
  }

  /** Sweeps until no expired transfer is left; returns how many this call expired. */
  async sweepUntilDone(): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = await this.sweepOnce();
      total += expired;
      if (expired < this.batchSize || this.stopped) return total;
    }
  }

  /** Expires up to batchSize transfers in one transaction; returns how many. */
  async sweepOnce(): Promise<number> {
    for (let attempt = 1; ; attempt += 1) {
      const client = await this.pool.connect();
      try {
        await client.query('begin');
        const count = await this.expireBatch(client);
        await client.query('commit');
        client.release();
        this.statistics.expired += count;
        return count;
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        client.release(isDatabaseUnavailableError(error) ? (error as Error) : undefined);
        if (isRetryableTransactionError(error) && attempt < 5) continue;
        throw error;
      }
    }
  }

  private async expireBatch(client: pg.PoolClient): Promise<number> {
    const offset = this.clockOffsetMs();
    const due = await client.query<{
      id: string;
      debit_account: string;
      credit_account: string;
      amount: bigint;
      lag_ms: bigint;
    }>({
      name: 'sweeper-lock-due',
      text:
        "with now as (select clock_timestamp() + $1::int8 * interval '1 millisecond' as at) " +
        'select id, debit_account, credit_account, amount, ' +
        '(extract(epoch from (select at from now) - expires_at) * 1000)::int8 as lag_ms ' +
        "from transfers t where state = 'prepared' and expires_at <= (select at from now) " +
        // Written so that neither side can overflow: amount is between 1 and 2^63-1.
        'and (select balance from accounts a where a.name = t.debit_account) <= 9223372036854775807 - t.amount ' +
        'order by expires_at limit $2 for update of t skip locked',
      values: [offset, this.batchSize],
    });
    if (due.rows.length === 0) {
      this.statistics.lagMs = 0;
      return 0;
    }
    this.statistics.lagMs = Number(due.rows[0].lag_ms);
    // Holds return to the debit accounts, locked in name order like every other writer.
    const debitNames = [...new Set(due.rows.map((row) => row.debit_account))].sort();
    const locked = await client.query<{ name: string; balance: bigint }>({
      name: 'sweeper-lock-accounts',
      text: 'select name, balance from accounts where name = any($1::text[]) order by name for update',
      values: [debitNames],
    });
    // Checked again under the lock, on the balances the holds return to (see the file comment).
    const balances = new Map(locked.rows.map((row) => [row.name, row.balance]));
    const holds = new Map<string, bigint>();
    const expiring: typeof due.rows = [];
    const stuck: string[] = [];
    for (const row of due.rows) {
      const returned = holds.get(row.debit_account) ?? 0n;
      const balance = (balances.get(row.debit_account) ?? 0n) + returned;
      if (!canReturnHold({ balance }, row.amount)) {
        stuck.push(row.id);
        continue;
      }
      holds.set(row.debit_account, returned + row.amount);
      expiring.push(row);
    }
    if (stuck.length > 0) {
      this.onError(new Error(`expired transfers ${stuck.join(', ')} keep their holds: the balance would pass 2^63-1`));
    }
    if (expiring.length === 0) return 0;
    const names = [...holds.keys()].sort();
    const now = await client.query<{ at: Date }>({
      name: 'sweeper-now',
      text: "select clock_timestamp() + $1::int8 * interval '1 millisecond' as at",
      values: [offset],
    });
    const at = now.rows[0].at;
    await client.query({
      name: 'sweeper-return-holds',
      text:
        'update accounts as a set balance = a.balance + u.amount, held_amount = a.held_amount - u.amount ' +
        'from unnest($1::text[], $2::int8[]) as u(name, amount) where a.name = u.name',
      values: [names, names.map((name) => (holds.get(name) as bigint).toString())],
    });
    await client.query({
      name: 'sweeper-expire',
      text:
        "update transfers set state = 'rejected', rejection_reason = 'expired', rejected_at = $2 " +
        'where id = any($1::uuid[])',
      values: [expiring.map((row) => row.id), at.toISOString()],
    });
    const events: PendingEvent[] = expiring.map((row) => ({
      type: 'transfer_rejected',
      accounts: [row.debit_account, row.credit_account],
      transferId: row.id,
      messageId: null,
    }));
    await appendEvents(client, events, at);
    return expiring.length;
  }
}
