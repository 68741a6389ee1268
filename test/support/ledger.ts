/** Starts real ledgers (real PostgreSQL, real gRPC socket) for integration tests. */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { PrepareTransferRequest } from '../../src/gen/interclear/ledger/v1/ledger';
import type { LedgerCommand } from '../../src/ledger/processor';
import { createLedgerClient, type LedgerClient } from '../../src/ledger/client';
import { migrateLedgerDatabase, openLedgerOrm } from '../../src/ledger/persistence';
import { startLedger, type LedgerConfig, type RunningLedger } from '../../src/ledger/server';
import { createPool } from '../../src/platform/database';
import { silentLogger } from '../../src/platform/logger';
import { createTestDatabase } from './database';

export interface TestLedger {
  ledger: RunningLedger;
  databaseUrl: string;
  /** A client acting as `principal` (insecure mode). */
  client(principal: string): LedgerClient;
  /** Moves the ledger's clock (database and application) forward. */
  advanceClock(milliseconds: number): void;
  stop(): Promise<void>;
}

export async function startTestLedger(
  overrides: Partial<LedgerConfig> & { databaseUrl?: string } = {},
): Promise<TestLedger> {
  const database = overrides.databaseUrl ? undefined : await createTestDatabase('ledger');
  let clockOffset = 0;
  const ledger = await startLedger({
    listen: '127.0.0.1:0',
    databaseUrl: overrides.databaseUrl ?? (database as { url: string }).url,
    ilpPrefix: 'test.ledger.',
    currencyCode: 'USD',
    scale: 2,
    insecure: true,
    admins: ['admin'],
    clockOffsetMs: () => clockOffset,
    logger: silentLogger,
    ...overrides,
  });
  const clients: LedgerClient[] = [];
  return {
    ledger,
    databaseUrl: overrides.databaseUrl ?? (database as { url: string }).url,
    client(principal: string) {
      const client = createLedgerClient(ledger.address, { principal });
      clients.push(client);
      return client;
    },
    advanceClock(milliseconds: number) {
      clockOffset += milliseconds;
    },
    async stop() {
      for (const client of clients) client.close();
      await ledger.stop();
      await database?.drop().catch(() => undefined);
    },
  };
}

export const newId = () => randomUUID();

/** A fresh database with the ledger's schema and no ledger process (for the processor alone). */
export async function migratedLedgerDatabase(label: string): Promise<{ url: string; drop(): Promise<void> }> {
  const database = await createTestDatabase(label);
  const orm = await openLedgerOrm(database.url);
  await migrateLedgerDatabase(orm);
  await orm.close(true);
  // An ANALYZE by autovacuum in the middle of a test would replace the plans a test looks at.
  const pool = createPool(database.url, { size: 1 });
  await pool.query(
    'alter table transfers set (autovacuum_enabled = false); alter table accounts set (autovacuum_enabled = false)',
  );
  await pool.end();
  return database;
}

/** A random fulfillment and its SHA-256 condition. */
export function preimagePair() {
  const fulfillment = randomBytes(32);
  return { fulfillment, condition: createHash('sha256').update(fulfillment).digest() };
}

/** A valid conditional transfer of 100 from alice to bob, expiring in 5 s, with `overrides`. */
export function prepareRequest(overrides: Partial<PrepareTransferRequest> = {}): PrepareTransferRequest {
  return {
    transferId: newId(),
    debitAccount: 'alice',
    creditAccount: 'bob',
    amount: 100n,
    executionCondition: preimagePair().condition,
    expiryTime: new Date(Date.now() + 5_000),
    ilpPacket: Buffer.from('packet'),
    memo: Buffer.alloc(0),
    traceParent: '',
    ...overrides,
  };
}

/** Sum of balances and holds, and net deposits: equal on a ledger that conserves money. */
export async function conservation(
  ledger: Pick<RunningLedger, 'pool'>,
): Promise<{ held: bigint; total: bigint; netDeposits: bigint }> {
  const result = await ledger.pool.query<{ total: bigint; held: bigint; net: bigint; prepared: bigint }>(
    `select (select coalesce(sum(balance + held_amount), 0) from accounts) as total,
            (select coalesce(sum(held_amount), 0) from accounts) as held,
            (select coalesce(sum(amount), 0) from transfers where state = 'prepared') as prepared,
            (select coalesce(sum(case kind when 'deposit' then amount else -amount end), 0) from movements) as net`,
  );
  const row = result.rows[0];
  if (row.held !== row.prepared)
    throw new Error(`held amounts ${row.held} differ from prepared transfers ${row.prepared}`);
  return { held: row.held, total: row.total, netDeposits: row.net };
}

/**
 * An unconditional prepare of 1 by an administrator between two of the accounts `account-0` …
 * `account-9` (the n-th command debits account n mod 10), for tests of the processor alone.
 */
export function adminPrepare(index: number): LedgerCommand {
  return {
    kind: 'prepare',
    principal: { name: 'admin', isAdmin: true },
    transfer: {
      id: randomUUID(),
      debitAccount: `account-${index % 10}`,
      creditAccount: `account-${(index + 1) % 10}`,
      amount: 1n,
      executionCondition: null,
      expiresAt: null,
      ilpPacket: Buffer.alloc(0),
      memo: Buffer.alloc(0),
      traceParent: null,
    },
  };
}
