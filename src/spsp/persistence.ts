/**
 * The SPSP service's own database: the migration that creates its tables (hand-written SQL, so
 * the payment state machine's invariants live in CHECK constraints) and the MikroORM entities of
 * its tables. The store's rare paths go through the entities; what every payment does is SQL on a
 * pg pool (store.ts), with the row types below as the shape of its results.
 *
 * - `spsp_payments`: the payments this DFSP sends, one row per payment id.
 * - `spsp_incoming_payments`: the transfers to this DFSP's receivers and what became of them.
 * - `spsp_cursor`: the sequence number of the last ledger notification fully handled, so that a
 *   restart resumes after it and misses nothing.
 *
 * The receiver secret is not stored here: fulfillments are derived from it and the packet.
 */
import type { StoredIlpError as LedgerStoredIlpError } from '../ledger/rows';
import { BigIntType, EntitySchema, MikroORM } from '@mikro-orm/core';
import { Migration, Migrator } from '@mikro-orm/migrations';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import type { FixedAmount, IncomingPayment, PaymentState } from './model';

/** An ILP error as stored in a jsonb column. */
/** How an ILP error is stored in jsonb columns: the ledger's form. */
export type StoredIlpError = LedgerStoredIlpError;

/** A row of `spsp_payments`. */
export interface PaymentRow {
  id: string;
  state: PaymentState;
  attempt: number;
  senderAccount: string;
  receiver: string;
  fixedAmount: FixedAmount;
  amount: bigint;
  maximumSourceAmount: bigint | null;
  data: Buffer;
  sourceAmount: bigint | null;
  sourceCurrencyCode: string;
  sourceScale: number;
  destinationAmount: bigint | null;
  destinationCurrencyCode: string | null;
  destinationScale: number | null;
  destinationAddress: string | null;
  connectorAccount: string | null;
  connectors: string[];
  transferId: string | null;
  executionCondition: Buffer | null;
  ilpPacket: Buffer | null;
  fulfillment: Buffer | null;
  ilpError: StoredIlpError | null;
  failureReason: string | null;
  failureMessage: string | null;
  failureIlpCode: string | null;
  createdAt: Date;
  updatedAt: Date;
  preparedAt: Date | null;
  expiresAt: Date | null;
  finishedAt: Date | null;
}

/** MikroORM mapping of `spsp_payments`. */
export const PaymentEntity = new EntitySchema<PaymentRow>({
  name: 'SpspPayment',
  tableName: 'spsp_payments',
  properties: {
    id: { type: 'uuid', primary: true },
    state: { type: 'string' },
    attempt: { type: 'integer' },
    senderAccount: { type: 'string' },
    receiver: { type: 'string' },
    fixedAmount: { type: 'string' },
    amount: { type: new BigIntType('bigint') },
    maximumSourceAmount: { type: new BigIntType('bigint'), nullable: true },
    data: { type: 'blob' },
    sourceAmount: { type: new BigIntType('bigint'), nullable: true },
    sourceCurrencyCode: { type: 'string' },
    sourceScale: { type: 'integer' },
    destinationAmount: { type: new BigIntType('bigint'), nullable: true },
    destinationCurrencyCode: { type: 'string', nullable: true },
    destinationScale: { type: 'integer', nullable: true },
    destinationAddress: { type: 'string', nullable: true },
    connectorAccount: { type: 'string', nullable: true },
    connectors: { type: 'json' },
    transferId: { type: 'uuid', nullable: true },
    executionCondition: { type: 'blob', nullable: true },
    ilpPacket: { type: 'blob', nullable: true },
    fulfillment: { type: 'blob', nullable: true },
    ilpError: { type: 'json', nullable: true },
    failureReason: { type: 'string', nullable: true },
    failureMessage: { type: 'string', nullable: true },
    failureIlpCode: { type: 'string', nullable: true },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime' },
    preparedAt: { type: 'datetime', nullable: true },
    expiresAt: { type: 'datetime', nullable: true },
    finishedAt: { type: 'datetime', nullable: true },
  },
});

/** A row of `spsp_incoming_payments`: the domain's record as it is. */
export type IncomingPaymentRow = IncomingPayment;

/** MikroORM mapping of `spsp_incoming_payments`. */
export const IncomingPaymentEntity = new EntitySchema<IncomingPaymentRow>({
  name: 'SpspIncomingPayment',
  tableName: 'spsp_incoming_payments',
  properties: {
    transferId: { type: 'uuid', primary: true },
    receiver: { type: 'string', nullable: true },
    account: { type: 'string' },
    amount: { type: new BigIntType('bigint') },
    destinationAddress: { type: 'string', nullable: true },
    packetAmount: { type: new BigIntType('bigint'), nullable: true },
    data: { type: 'blob' },
    executionCondition: { type: 'blob' },
    state: { type: 'string' },
    ilpErrorCode: { type: 'string', nullable: true },
    ilpErrorMessage: { type: 'string', nullable: true },
    receivedAt: { type: 'datetime' },
  },
});

/** The row of `spsp_cursor`. */
export interface CursorRow {
  id: boolean;
  sequence: bigint;
  updatedAt: Date;
}

/** MikroORM mapping of `spsp_cursor`. */
export const CursorEntity = new EntitySchema<CursorRow>({
  name: 'SpspCursor',
  tableName: 'spsp_cursor',
  properties: {
    id: { type: 'boolean', primary: true },
    sequence: { type: new BigIntType('bigint') },
    updatedAt: { type: 'datetime' },
  },
});

/** Creates the SPSP schema. Never edit after it has landed: add a new migration instead. */
export class Migration20261210000000Spsp extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table spsp_payments (
        id uuid primary key,
        state text not null
          check (state in ('pending', 'prepared', 'executed', 'rejected', 'expired', 'failed')),
        attempt integer not null default 1 check (attempt >= 1),
        sender_account text not null,
        receiver text not null,
        fixed_amount text not null check (fixed_amount in ('source', 'destination')),
        amount bigint not null check (amount > 0),
        maximum_source_amount bigint check (maximum_source_amount > 0),
        data bytea not null default '',
        source_amount bigint check (source_amount > 0),
        source_currency_code text not null,
        source_scale integer not null check (source_scale between 0 and 255),
        destination_amount bigint check (destination_amount > 0),
        destination_currency_code text,
        destination_scale integer check (destination_scale between 0 and 255),
        destination_address text,
        connector_account text,
        connectors jsonb not null default '[]',
        transfer_id uuid unique,
        execution_condition bytea check (execution_condition is null or length(execution_condition) = 32),
        ilp_packet bytea,
        fulfillment bytea check (fulfillment is null or length(fulfillment) = 32),
        ilp_error jsonb,
        failure_reason text,
        failure_message text,
        failure_ilp_code text,
        created_at timestamptz not null,
        updated_at timestamptz not null,
        prepared_at timestamptz,
        expires_at timestamptz,
        finished_at timestamptz,
        -- A transfer is only ever sent with everything needed to follow it.
        check (transfer_id is null or (execution_condition is not null and ilp_packet is not null
          and source_amount is not null and destination_amount is not null and expires_at is not null
          and connector_account is not null)),
        check (state not in ('prepared', 'executed', 'rejected', 'expired') or transfer_id is not null),
        check ((state = 'executed') = (fulfillment is not null)),
        check (state not in ('rejected', 'expired') or ilp_error is not null),
        check ((state = 'failed') = (failure_reason is not null)),
        check ((state in ('executed', 'rejected', 'expired', 'failed')) = (finished_at is not null))
      );
      -- The reconciler's queue: payments whose outcome is still open.
      create index spsp_payments_open on spsp_payments (expires_at) where state in ('pending', 'prepared');

      create table spsp_incoming_payments (
        transfer_id uuid primary key,
        receiver text,
        account text not null,
        amount bigint not null check (amount > 0),
        destination_address text,
        packet_amount bigint,
        data bytea not null default '',
        execution_condition bytea not null,
        state text not null check (state in ('executed', 'rejected', 'expired')),
        ilp_error_code text,
        ilp_error_message text,
        received_at timestamptz not null,
        check ((state = 'rejected') = (ilp_error_code is not null))
      );
      create index spsp_incoming_payments_receiver on spsp_incoming_payments (receiver, received_at);

      create table spsp_cursor (
        id boolean primary key default true check (id),
        sequence bigint not null check (sequence >= 0),
        updated_at timestamptz not null
      );
    `);
  }
}

/** ListIncomingPayments of every receiver pages in the order payments were decided. */
export class Migration20261211000000SpspIncomingOrder extends Migration {
  override async up(): Promise<void> {
    this.addSql('create index spsp_incoming_payments_received on spsp_incoming_payments (received_at, transfer_id)');
  }
}

/** Opens MikroORM on the SPSP database at `url`. */
export async function openSpspOrm(url: string): Promise<MikroORM<PostgreSqlDriver>> {
  return MikroORM.init<PostgreSqlDriver>({
    driver: PostgreSqlDriver,
    clientUrl: url,
    entities: [PaymentEntity, IncomingPaymentEntity, CursorEntity],
    extensions: [Migrator],
    migrations: {
      // Its own table, so that an SPSP service sharing a database never mixes the lists.
      tableName: 'interclear_spsp_migrations',
      migrationsList: [
        { name: 'Migration20261210000000Spsp', class: Migration20261210000000Spsp },
        { name: 'Migration20261211000000SpspIncomingOrder', class: Migration20261211000000SpspIncomingOrder },
      ],
      snapshot: false,
      transactional: true,
      allOrNothing: true,
      silent: true,
    },
    pool: { min: 0, max: 8 },
    allowGlobalContext: false,
    debug: false,
    discovery: { warnWhenNoEntities: false },
  });
}

const migrationLockKey = 0x1c5b5b;
/** The key of the SPSP service's instance lock (platform/instance-lock.ts). */
export const spspInstanceLockKey = 0x1c5b5c;

/**
 * Brings the SPSP database up to date. An advisory lock makes concurrent starts (replicas, or a
 * Helm migration job racing a pod) take turns instead of failing.
 */
export async function migrateSpspDatabase(orm: MikroORM<PostgreSqlDriver>): Promise<void> {
  const knex = orm.em.getConnection().getKnex();
  await knex.transaction(async (transaction) => {
    await transaction.raw('select pg_advisory_xact_lock(?)', [migrationLockKey]);
    await orm.getMigrator().up();
  });
}
