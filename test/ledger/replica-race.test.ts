/**
 * Two ledger replicas on one database (test/ledger/replicas.test.ts). A connector's prepare times
 * out on replica 1 (slow commit) and its retry — same id, same content — lands on replica 2
 * while replica 1's batch still holds the debit account's lock. Replica 2's statement snapshot
 * said "no such transfer", then it waited for the account row and got its new version (the hold
 * taken): it decided a NEW transfer against the reduced balance and answered INSUFFICIENT_FUNDS
 * — a final refusal — for a transfer that exists, and the connector would have rejected its
 * incoming transfer while its outgoing one could execute. The refusal is now checked against a
 * fresh look, and the batch runs again: the retry gets the stored transfer. */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { createPool } from '../../src/platform/database';
import { CommandProcessor, type PrepareCommand } from '../../src/ledger/processor';
import { migrateLedgerDatabase, openLedgerOrm } from '../../src/ledger/persistence';
import { ServiceError } from '../../src/platform/errors';
import { createTestDatabase } from '../support/database';

test("a repeated prepare on another replica, racing the first one's commit, gets the stored transfer", async () => {
  const database = await createTestDatabase('ledger_replica_race');
  const orm = await openLedgerOrm(database.url);
  await migrateLedgerDatabase(orm);
  await orm.close(true);
  const pool1 = createPool(database.url, { size: 2 });
  const pool2 = createPool(database.url, { size: 2 });
  await pool1.query(
    "insert into accounts (name, owner, balance, minimum_balance) values ('conn', 'conn', 100, 0), ('next', 'next', 0, 0)",
  );

  // Replica 1's COMMIT is slow (fsync stall): it waits on a gate.
  let reachedCommit!: () => void;
  const atCommit = new Promise<void>((resolve) => (reachedCommit = resolve));
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  const slowPool = {
    connect: async () => {
      const client = await pool1.connect();
      return new Proxy(client, {
        get(target, property, receiver) {
          if (property === 'query') {
            return async (...args: unknown[]) => {
              if (args[0] === 'commit') {
                reachedCommit();
                await gate;
              }
              return (target.query as (...a: unknown[]) => unknown).apply(target, args);
            };
          }
          const value = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    },
  } as unknown as pg.Pool;
  const replica1 = new CommandProcessor(slowPool);
  const replica2 = new CommandProcessor(pool2);

  const fulfillment = randomBytes(32);
  const command: PrepareCommand = {
    kind: 'prepare',
    principal: { name: 'conn', isAdmin: false },
    transfer: {
      id: randomUUID(),
      debitAccount: 'conn',
      creditAccount: 'next',
      amount: 100n,
      executionCondition: createHash('sha256').update(fulfillment).digest(),
      expiresAt: new Date(Date.now() + 60_000),
      ilpPacket: Buffer.from('packet'),
      memo: Buffer.alloc(0),
      traceParent: null,
    },
  };
  try {
    const first = replica1.submit(command); // the connector's call; its deadline passes meanwhile
    await atCommit;
    const retry = replica2.submit({ ...command, transfer: { ...command.transfer } }).then(
      (transfer) => ({ ok: transfer.state }),
      (error: unknown) => ({ refused: error instanceof ServiceError ? error.reason : String(error) }),
    );
    await new Promise((resolve) => setTimeout(resolve, 500)); // replica 2 waits on the account lock
    openGate();
    expect((await first).state).toBe('prepared');
    const stored = await pool2.query('select state from transfers where id = $1', [command.transfer.id]);
    expect(stored.rows).toEqual([{ state: 'prepared' }]);
    expect(await retry).toEqual({ ok: 'prepared' });
  } finally {
    openGate();
    await pool1.end();
    await pool2.end();
    await database.drop();
  }
});
