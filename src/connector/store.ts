/**
 * SQL of the connector's hot path on its own database: applying a batch of notifications (the
 * payments they change and the ledger's cursor, in one transaction), the job queue, and the
 * figures of the status RPC.
 */
import type pg from 'pg';
// The ledger's jsonb form of an ILP error: one spelling for the same data in every database.
import { ilpErrorFromStored, ilpErrorToStored, type StoredIlpError } from '../ledger/rows';
import type { IlpError, Payment, PaymentState } from './model';

interface PaymentRow {
  id: string;
  incoming_ledger: string;
  incoming_transfer_id: string;
  incoming_amount: bigint;
  incoming_expires_at: Date;
  execution_condition: Buffer;
  ilp_packet: Buffer;
  trace_parent: string | null;
  outgoing_ledger: string | null;
  outgoing_credit_account: string | null;
  outgoing_amount: bigint | null;
  outgoing_expires_at: Date | null;
  state: PaymentState;
  fulfillment: Buffer | null;
  ilp_error: StoredIlpError | null;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
}

const paymentColumns =
  'id, incoming_ledger, incoming_transfer_id, incoming_amount, incoming_expires_at, execution_condition, ' +
  'ilp_packet, trace_parent, outgoing_ledger, outgoing_credit_account, outgoing_amount, outgoing_expires_at, state, ' +
  'fulfillment, ilp_error, attempts, next_attempt_at, last_error, created_at, updated_at';

function paymentFromRow(row: PaymentRow): Payment {
  return {
    id: row.id,
    incomingLedgerPrefix: row.incoming_ledger,
    incomingTransferId: row.incoming_transfer_id,
    incomingAmount: row.incoming_amount,
    incomingExpiresAt: row.incoming_expires_at,
    executionCondition: row.execution_condition,
    ilpPacket: row.ilp_packet,
    traceParent: row.trace_parent,
    outgoing:
      row.outgoing_ledger !== null
        ? {
            ledgerPrefix: row.outgoing_ledger,
            creditAccount: row.outgoing_credit_account as string,
            amount: row.outgoing_amount as bigint,
            expiresAt: row.outgoing_expires_at as Date,
          }
        : null,
    state: row.state,
    fulfillment: row.fulfillment,
    ilpError: row.ilp_error ? ilpErrorFromStored(row.ilp_error) : null,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const storedIlpError = (error: IlpError | null) => (error ? JSON.stringify(ilpErrorToStored(error)) : null);

/**
 * Writes a batch's changes with one statement: the new payments (a payment that exists already
 * is left as it is, and only the ids of those inserted are returned), the changed payments, and
 * the ledger's cursor. One column array per parameter; amounts travel as decimal text, never as
 * floats.
 */
const writeBatchStatement =
  'with inserted as (' +
  `insert into connector_payments (${paymentColumns}) select * from unnest(` +
  '$1::uuid[], $2::text[], $3::uuid[], $4::bigint[], $5::timestamptz[], $6::bytea[], $7::bytea[], $8::text[], ' +
  '$9::text[], $10::text[], $11::bigint[], $12::timestamptz[], $13::text[], $14::bytea[], $15::jsonb[], ' +
  '$16::integer[], $17::timestamptz[], $18::text[], $19::timestamptz[], $20::timestamptz[]) ' +
  'on conflict do nothing returning id), ' +
  'updated as (update connector_payments as payment set state = changed.state, ' +
  'fulfillment = changed.fulfillment, ilp_error = changed.ilp_error, attempts = changed.attempts, ' +
  'next_attempt_at = changed.next_attempt_at, last_error = changed.last_error, updated_at = changed.updated_at ' +
  'from unnest($21::uuid[], $22::text[], $23::bytea[], $24::jsonb[], $25::integer[], $26::timestamptz[], ' +
  '$27::text[], $28::timestamptz[]) ' +
  'as changed (id, state, fulfillment, ilp_error, attempts, next_attempt_at, last_error, updated_at) ' +
  'where payment.id = changed.id), ' +
  'moved_cursor as (insert into connector_cursors (ledger_prefix, sequence) values ($29, $30) ' +
  'on conflict (ledger_prefix) do update set sequence = greatest(connector_cursors.sequence, excluded.sequence), ' +
  'updated_at = clock_timestamp()) ' +
  'select id from inserted';

/** The named query of {@link writeBatchStatement} for these changes. */
function writeBatchQuery(
  ledgerPrefix: string,
  sequence: bigint,
  created: Payment[],
  changed: Payment[],
): pg.QueryConfig<unknown[]> {
  return {
    name: 'connector-write-batch',
    text: writeBatchStatement,
    values: [
      created.map((payment) => payment.id),
      created.map((payment) => payment.incomingLedgerPrefix),
      created.map((payment) => payment.incomingTransferId),
      created.map((payment) => payment.incomingAmount.toString()),
      created.map((payment) => payment.incomingExpiresAt.toISOString()),
      created.map((payment) => payment.executionCondition),
      created.map((payment) => payment.ilpPacket),
      created.map((payment) => payment.traceParent),
      created.map((payment) => payment.outgoing?.ledgerPrefix ?? null),
      created.map((payment) => payment.outgoing?.creditAccount ?? null),
      created.map((payment) => payment.outgoing?.amount.toString() ?? null),
      created.map((payment) => payment.outgoing?.expiresAt.toISOString() ?? null),
      created.map((payment) => payment.state),
      created.map((payment) => payment.fulfillment),
      created.map((payment) => storedIlpError(payment.ilpError)),
      created.map((payment) => payment.attempts),
      created.map((payment) => payment.nextAttemptAt.toISOString()),
      created.map((payment) => payment.lastError),
      created.map((payment) => payment.createdAt.toISOString()),
      created.map((payment) => payment.updatedAt.toISOString()),
      changed.map((payment) => payment.id),
      changed.map((payment) => payment.state),
      changed.map((payment) => payment.fulfillment),
      changed.map((payment) => storedIlpError(payment.ilpError)),
      changed.map((payment) => payment.attempts),
      changed.map((payment) => payment.nextAttemptAt.toISOString()),
      changed.map((payment) => payment.lastError),
      changed.map((payment) => payment.updatedAt.toISOString()),
      ledgerPrefix,
      sequence.toString(),
    ],
  };
}

/** Figures of the status RPC. */
export interface StoreStatus {
  counts: Record<'forwarding' | 'prepared' | 'fulfilling' | 'rejecting' | 'lost', bigint>;
  passBackRetries: bigint;
  /** Per ledger prefix: outgoing amounts not final, incoming amounts not final. */
  inFlight: Map<string, { outgoing: bigint; incoming: bigint }>;
}

/** The connector's queries, on a pool of its database. */
export function createPaymentStore(pool: pg.Pool) {
  return {
    /** The last processed sequence of every ledger with one. */
    async loadCursors(): Promise<Map<string, bigint>> {
      const result = await pool.query<{ ledger_prefix: string; sequence: bigint }>(
        'select ledger_prefix, sequence from connector_cursors',
      );
      return new Map(result.rows.map((row) => [row.ledger_prefix, row.sequence]));
    },

    /**
     * In one transaction: locks the payments `ids` (in id order, so concurrent batches from two
     * ledgers never deadlock), lets `apply` compute their new states, writes the created and
     * changed ones and moves the ledger's cursor to `sequence`. Returns the payments it wrote:
     * every changed one, then the created ones it inserted. As in {@link createPayments}, a
     * created payment whose row exists already is left as it is and not returned: another
     * writer inserted it after the lock (which cannot see a row not yet committed), and its
     * jobs are that writer's.
     *
     * Four statements whatever the batch's size: BEGIN, the locking statement, the one write
     * statement and COMMIT, each awaiting the one before.
     */
    async applyBatch(
      ledgerPrefix: string,
      sequence: bigint,
      ids: string[],
      apply: (payments: Map<string, Payment>) => { changed: Payment[]; created: Payment[] },
    ): Promise<Payment[]> {
      const client = await pool.connect();
      let releaseError: Error | undefined;
      try {
        await client.query('begin');
        const sortedIds = [...new Set(ids)].sort();
        const locked = await client.query<PaymentRow>({
          name: 'connector-lock-payments',
          text: `select ${paymentColumns} from connector_payments where id = any($1::uuid[]) order by id for update`,
          values: [sortedIds],
        });
        const payments = new Map(locked.rows.map((row) => [row.id, paymentFromRow(row)]));
        const { changed, created } = apply(payments);
        // Assertion: a payment is either new or locked, never both (one statement cannot insert
        // and update the same row).
        for (const payment of created) {
          if (payments.has(payment.id)) throw new Error(`payment ${payment.id} is both created and changed`);
        }
        const written = await client.query<{ id: string }>(writeBatchQuery(ledgerPrefix, sequence, created, changed));
        await client.query('commit');
        const inserted = new Set(written.rows.map((row) => row.id));
        return [...changed, ...created.filter((payment) => inserted.has(payment.id))];
      } catch (error) {
        await client.query('rollback').catch((rollbackError: Error) => {
          // The session's state is unknown: the pool must not hand it out again.
          releaseError = rollbackError;
        });
        throw error;
      } finally {
        client.release(releaseError);
      }
    },

    /**
     * Inserts `payments` unless they exist and moves the ledger's cursor to `sequence`, in one
     * statement (atomic without a transaction block). Returns the payments it inserted: a payment
     * that existed already (a replayed notification) is left as it is.
     */
    async createPayments(ledgerPrefix: string, sequence: bigint, payments: Payment[]): Promise<Payment[]> {
      const result = await pool.query<{ id: string }>(writeBatchQuery(ledgerPrefix, sequence, payments, []));
      const inserted = new Set(result.rows.map((row) => row.id));
      return payments.filter((payment) => inserted.has(payment.id));
    },

    /** One payment, or undefined. */
    async loadPayment(id: string): Promise<Payment | undefined> {
      const result = await pool.query<PaymentRow>({
        name: 'connector-load-payment',
        text: `select ${paymentColumns} from connector_payments where id = $1`,
        values: [id],
      });
      return result.rows[0] ? paymentFromRow(result.rows[0]) : undefined;
    },

    /** Payments whose job is due at `now`, pass-backs first (money is at stake), then earliest first. */
    async dueJobs(now: Date, limit: number): Promise<Payment[]> {
      const result = await pool.query<PaymentRow>({
        name: 'connector-due-jobs',
        text:
          `select ${paymentColumns} from connector_payments ` +
          "where state in ('forwarding', 'fulfilling', 'rejecting') and next_attempt_at <= $2 " +
          "order by state = 'fulfilling' desc, next_attempt_at limit $1",
        values: [limit, now],
      });
      return result.rows.map(paymentFromRow);
    },

    /** Makes every pending job due at `now` (at start: the previous process's schedule is void). */
    async makeJobsDue(now: Date): Promise<number> {
      const result = await pool.query(
        "update connector_payments set next_attempt_at = $1 where state in ('forwarding', 'fulfilling', 'rejecting') and next_attempt_at > $1",
        [now],
      );
      return result.rowCount ?? 0;
    },

    /**
     * Records which connector this database belongs to, or checks it: the outgoing transfer ids
     * derive from the name, so a renamed connector would forward replayed payments again.
     */
    async claimDatabase(connectorName: string): Promise<void> {
      await pool.query('insert into connector_identity (name) values ($1) on conflict do nothing', [connectorName]);
      const result = await pool.query<{ name: string }>('select name from connector_identity');
      const owner = result.rows[0]?.name;
      if (owner !== connectorName) {
        throw new Error(
          `this database belongs to connector "${owner}", not "${connectorName}": outgoing transfer ids derive from the name`,
        );
      }
    },

    /** Records a failed attempt of the job of a payment still in `state`; false if it moved on. */
    async recordRetry(
      id: string,
      state: PaymentState,
      retry: { attempts: number; nextAttemptAt: Date; error: string; now: Date },
    ): Promise<boolean> {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const result = await client.query({
          name: 'connector-record-retry',
          text:
            'update connector_payments set attempts = $3, next_attempt_at = $4, last_error = $5, updated_at = $6 ' +
            'where id = $1 and state = $2',
          values: [id, state, retry.attempts, retry.nextAttemptAt, retry.error.slice(0, 2000), retry.now],
        });
        if (result.rowCount === 1 && state === 'fulfilling') {
          await client.query("update connector_counters set value = value + 1 where name = 'pass_back_retries'");
        }
        await client.query('commit');
        return result.rowCount === 1;
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },

    /**
     * Moves a payment from `from` to `to` (with an ILP error, or the last error), unless
     * something else moved it first; true when it moved.
     */
    async moveState(
      id: string,
      from: PaymentState,
      to: PaymentState,
      changes: { ilpError?: IlpError; lastError?: string; now: Date; nextAttemptAt?: Date },
    ): Promise<boolean> {
      const result = await pool.query({
        name: 'connector-move-state',
        text:
          'update connector_payments set state = $3, ilp_error = coalesce($4, ilp_error), ' +
          'last_error = coalesce($5, last_error), updated_at = $6, attempts = 0, ' +
          'next_attempt_at = coalesce($7, next_attempt_at) where id = $1 and state = $2',
        values: [
          id,
          from,
          to,
          changes.ilpError ? JSON.stringify(ilpErrorToStored(changes.ilpError)) : null,
          changes.lastError?.slice(0, 2000) ?? null,
          changes.now,
          changes.nextAttemptAt ?? null,
        ],
      });
      return result.rowCount === 1;
    },

    /** Counts and amounts for GetStatus. */
    async status(): Promise<StoreStatus> {
      const [open, lost, counters] = await Promise.all([
        pool.query<{
          state: PaymentState;
          outgoing_ledger: string | null;
          incoming_ledger: string;
          count: bigint;
          outgoing: bigint;
          incoming: bigint;
        }>(
          'select state, outgoing_ledger, incoming_ledger, count(*) as count, ' +
            'coalesce(sum(outgoing_amount), 0)::bigint as outgoing, coalesce(sum(incoming_amount), 0)::bigint as incoming ' +
            "from connector_payments where state in ('forwarding', 'prepared', 'fulfilling', 'rejecting') " +
            'group by state, outgoing_ledger, incoming_ledger',
        ),
        pool.query<{ count: bigint }>("select count(*) as count from connector_payments where state = 'lost'"),
        pool.query<{ name: string; value: bigint }>('select name, value from connector_counters'),
      ]);
      const counts: StoreStatus['counts'] = {
        forwarding: 0n,
        prepared: 0n,
        fulfilling: 0n,
        rejecting: 0n,
        lost: lost.rows[0].count,
      };
      const inFlight = new Map<string, { outgoing: bigint; incoming: bigint }>();
      const entry = (prefix: string) => {
        let value = inFlight.get(prefix);
        if (!value) inFlight.set(prefix, (value = { outgoing: 0n, incoming: 0n }));
        return value;
      };
      for (const row of open.rows) {
        if (row.state in counts) counts[row.state as keyof StoreStatus['counts']] += row.count;
        // An outgoing transfer is in flight until it is final: while forwarding and prepared.
        if (row.outgoing_ledger && (row.state === 'forwarding' || row.state === 'prepared')) {
          entry(row.outgoing_ledger).outgoing += row.outgoing;
        }
        // An incoming transfer is in flight until the connector fulfilled or rejected it.
        entry(row.incoming_ledger).incoming += row.incoming;
      }
      const retries = counters.rows.find((row) => row.name === 'pass_back_retries')?.value ?? 0n;
      return { counts, passBackRetries: retries, inFlight };
    },
  };
}

export type PaymentStore = ReturnType<typeof createPaymentStore>;
