/**
 * The ledger's tables: the migration that creates them (hand-written SQL, so the invariants live
 * in CHECK constraints) and the MikroORM entities used off the hot path (accounts, reads).
 * The hot path (prepare, fulfil, reject, deposit, withdraw, messages) is set-based SQL in
 * `processor.ts`.
 */
import { BigIntType, EntitySchema, MikroORM } from '@mikro-orm/core';
import { Migration } from '@mikro-orm/migrations';
import { Migrator } from '@mikro-orm/migrations';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';

/** An account row, as MikroORM maps it. */
export interface AccountRow {
  name: string;
  owner: string;
  balance: bigint;
  heldAmount: bigint;
  minimumBalance: bigint | null;
  disabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** MikroORM mapping of `accounts`. */
export const AccountEntity = new EntitySchema<AccountRow>({
  name: 'Account',
  tableName: 'accounts',
  properties: {
    name: { type: 'string', primary: true },
    owner: { type: 'string' },
    balance: { type: new BigIntType('bigint') },
    heldAmount: { type: new BigIntType('bigint') },
    minimumBalance: { type: new BigIntType('bigint'), nullable: true },
    disabled: { type: 'boolean' },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime' },
  },
});

/** Creates the ledger's schema. Never edit after it has landed: add a new migration instead. */
export class Migration20261125000000Ledger extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table ledger_head (
        id boolean primary key default true check (id),
        sequence bigint not null default 0 check (sequence >= 0)
      );
      insert into ledger_head default values;

      create table accounts (
        name text primary key check (name ~ '^[a-zA-Z0-9_-]{1,86}$'),
        owner text not null check (length(owner) between 1 and 256),
        balance bigint not null default 0,
        held_amount bigint not null default 0 check (held_amount >= 0),
        minimum_balance bigint,
        disabled boolean not null default false,
        created_at timestamptz not null default clock_timestamp(),
        updated_at timestamptz not null default clock_timestamp()
      );
      create index accounts_owner on accounts (owner, name);

      create table transfers (
        id uuid primary key,
        debit_account text not null references accounts (name),
        credit_account text not null references accounts (name),
        amount bigint not null check (amount > 0),
        execution_condition bytea check (execution_condition is null or length(execution_condition) = 32),
        expires_at timestamptz,
        state text not null check (state in ('prepared', 'executed', 'rejected')),
        rejection_reason text check (rejection_reason in ('cancelled', 'expired')),
        ilp_error jsonb,
        fulfillment bytea,
        ilp_packet bytea not null default '',
        memo bytea not null default '',
        prepared_at timestamptz not null,
        trace_parent text,
        executed_at timestamptz,
        rejected_at timestamptz,
        check (debit_account <> credit_account),
        check (execution_condition is null or expires_at is not null),
        check ((state = 'executed') = (executed_at is not null)),
        check ((state = 'rejected') = (rejected_at is not null and rejection_reason is not null)),
        check (fulfillment is null or state = 'executed')
      );
      -- The sweeper's queue: only prepared transfers, by expiry.
      create index transfers_expiry on transfers (expires_at) where state = 'prepared';
      create index transfers_debit on transfers (debit_account, prepared_at, id);
      create index transfers_credit on transfers (credit_account, prepared_at, id);
      create index transfers_prepared_at on transfers (prepared_at, id);

      create table movements (
        id uuid primary key,
        kind text not null check (kind in ('deposit', 'withdrawal')),
        account text not null references accounts (name),
        amount bigint not null check (amount > 0),
        external_reference text not null,
        balance_after bigint not null,
        created_at timestamptz not null
      );

      create table messages (
        id uuid primary key,
        from_account text not null references accounts (name),
        to_account text not null references accounts (name),
        data bytea not null,
        sent_at timestamptz not null
      );

      -- The outbox: one row per notification, numbered gap-free in commit order because the
      -- sequence comes from ledger_head, locked until the writing transaction commits.
      create table events (
        sequence bigint primary key,
        type text not null check (type in ('transfer_prepared', 'transfer_executed', 'transfer_rejected', 'message_sent')),
        accounts text[] not null,
        transfer_id uuid,
        message_id uuid,
        occurred_at timestamptz not null,
        check ((transfer_id is null) <> (message_id is null))
      );
    `);
  }
}

/** Opens MikroORM on the ledger database at `url`. */
export async function openLedgerOrm(url: string): Promise<MikroORM<PostgreSqlDriver>> {
  return MikroORM.init<PostgreSqlDriver>({
    driver: PostgreSqlDriver,
    clientUrl: url,
    entities: [AccountEntity],
    extensions: [Migrator],
    migrations: {
      tableName: 'interclear_migrations',
      migrationsList: [{ name: 'Migration20261125000000Ledger', class: Migration20261125000000Ledger }],
      snapshot: false,
      transactional: true,
      allOrNothing: true,
      silent: true,
    },
    pool: { min: 0, max: 4 },
    allowGlobalContext: false,
    debug: false,
    discovery: { warnWhenNoEntities: false },
  });
}

/**
 * Brings the ledger database up to date. An advisory lock makes concurrent replicas (or a Helm
 * migration job racing a pod) take turns instead of failing.
 */
export async function migrateLedgerDatabase(orm: MikroORM<PostgreSqlDriver>): Promise<void> {
  const connection = orm.em.getConnection();
  const knex = connection.getKnex();
  await knex.transaction(async (transaction) => {
    await transaction.raw('select pg_advisory_xact_lock(?)', [0x1c1ea8]);
    const migrator = orm.getMigrator();
    // The migrator uses its own connection; holding the lock in this transaction serialises runs.
    await migrator.up();
  });
}
