/**
 * The connector's own database: the migration that creates its tables (hand-written SQL, so the
 * state machine's invariants live in CHECK constraints), MikroORM to run it, and the lock that
 * keeps a second process from running the same connector.
 *
 * - `connector_cursors`: per ledger, the sequence of the last notification processed. Written in
 *   the same transaction as the payments the notifications changed, so a restart resumes exactly
 *   after what was handled: nothing missed, nothing applied twice.
 * - `connector_payments`: one row per incoming transfer, keyed by the outgoing transfer's id,
 *   holding the state, the persisted fulfillment and the job schedule.
 * - `connector_identity`: the connector's name, checked at start.
 * - `connector_counters`: rare events counted for the status RPC (pass-back retries).
 */
import { BigIntType, EntitySchema, MikroORM } from '@mikro-orm/core';
import { Migration, Migrator } from '@mikro-orm/migrations';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';

/** A cursor row, as MikroORM maps it. */
export interface LedgerCursorRow {
  ledgerPrefix: string;
  sequence: bigint;
  updatedAt: Date;
}

/** MikroORM mapping of `connector_cursors`. */
export const LedgerCursorEntity = new EntitySchema<LedgerCursorRow>({
  name: 'LedgerCursor',
  tableName: 'connector_cursors',
  properties: {
    ledgerPrefix: { type: 'string', primary: true },
    sequence: { type: new BigIntType('bigint') },
    updatedAt: { type: 'datetime' },
  },
});

/** Creates the connector's schema. Never edit after it has landed: add a new migration instead. */
export class Migration20261201000000Connector extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table connector_cursors (
        ledger_prefix text primary key,
        sequence bigint not null check (sequence >= 0),
        updated_at timestamptz not null default clock_timestamp()
      );

      create table connector_payments (
        id uuid primary key,
        incoming_ledger text not null,
        incoming_transfer_id uuid not null,
        incoming_amount bigint not null check (incoming_amount > 0),
        incoming_expires_at timestamptz not null,
        execution_condition bytea not null check (length(execution_condition) = 32),
        ilp_packet bytea not null,
        trace_parent text,
        outgoing_ledger text,
        outgoing_credit_account text,
        outgoing_amount bigint check (outgoing_amount > 0),
        outgoing_expires_at timestamptz,
        state text not null
          check (state in ('forwarding', 'prepared', 'fulfilling', 'fulfilled', 'rejecting', 'rejected', 'lost')),
        fulfillment bytea check (fulfillment is null or length(fulfillment) = 32),
        ilp_error jsonb,
        attempts integer not null default 0 check (attempts >= 0),
        next_attempt_at timestamptz not null,
        last_error text,
        created_at timestamptz not null,
        updated_at timestamptz not null,
        unique (incoming_ledger, incoming_transfer_id),
        check (
          (outgoing_ledger is null and outgoing_credit_account is null and outgoing_amount is null
            and outgoing_expires_at is null)
          or (outgoing_ledger is not null and outgoing_credit_account is not null and outgoing_amount is not null
            and outgoing_expires_at is not null)
        ),
        check (state not in ('forwarding', 'prepared') or outgoing_ledger is not null),
        check ((state in ('fulfilling', 'fulfilled', 'lost')) = (fulfillment is not null)),
        check (state <> 'rejecting' or ilp_error is not null)
      );
      -- The job queue: only payments with a call to make, by due time.
      create index connector_payments_jobs on connector_payments (next_attempt_at)
        where state in ('forwarding', 'fulfilling', 'rejecting');
      -- Money in flight, per ledger, for the status RPC.
      create index connector_payments_open on connector_payments (outgoing_ledger, incoming_ledger)
        where state in ('forwarding', 'prepared', 'fulfilling', 'rejecting');
      create index connector_payments_lost on connector_payments (updated_at) where state = 'lost';

      -- The connector this database belongs to: outgoing transfer ids derive from its name.
      create table connector_identity (
        singleton boolean primary key default true check (singleton),
        name text not null
      );

      create table connector_counters (
        name text primary key,
        value bigint not null default 0 check (value >= 0)
      );
      insert into connector_counters (name) values ('pass_back_retries');
    `);
  }
}

/** Opens MikroORM on the connector database at `url`. */
export async function openConnectorOrm(url: string): Promise<MikroORM<PostgreSqlDriver>> {
  return MikroORM.init<PostgreSqlDriver>({
    driver: PostgreSqlDriver,
    clientUrl: url,
    entities: [LedgerCursorEntity],
    extensions: [Migrator],
    migrations: {
      // Its own table, so that a connector sharing a database with a ledger never mixes the lists.
      tableName: 'interclear_connector_migrations',
      migrationsList: [{ name: 'Migration20261201000000Connector', class: Migration20261201000000Connector }],
      snapshot: false,
      transactional: true,
      allOrNothing: true,
      silent: true,
    },
    pool: { min: 0, max: 2 },
    allowGlobalContext: false,
    debug: false,
    discovery: { warnWhenNoEntities: false },
  });
}

const migrationLockKey = 0x1c0c70;
/** The key of the connector's instance lock (platform/instance-lock.ts). */
export const connectorInstanceLockKey = 0x1c0c71;

/**
 * Brings the connector database up to date. An advisory lock makes concurrent starts (or a Helm
 * migration job racing a pod) take turns instead of failing.
 */
export async function migrateConnectorDatabase(orm: MikroORM<PostgreSqlDriver>): Promise<void> {
  const knex = orm.em.getConnection().getKnex();
  await knex.transaction(async (transaction) => {
    await transaction.raw('select pg_advisory_xact_lock(?)', [migrationLockKey]);
    await orm.getMigrator().up();
  });
}
