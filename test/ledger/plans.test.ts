/**
 * The batch's statements keep index plans as the ledger's tables grow. PostgreSQL caches a
 * prepared statement's generic plan from the statistics of the moment; a ledger that starts on
 * empty tables would otherwise keep plans that scan the transfers table whole, on every batch,
 * until autovacuum next analyzes it (in the benchmark: a quarter of the throughput lost within
 * seconds, and more every second).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { CommandProcessor, type LedgerCommand } from '../../src/ledger/processor';
import { createPool } from '../../src/platform/database';
import { adminPrepare, migratedLedgerDatabase } from '../support/ledger';

function prepares(count: number): LedgerCommand[] {
  return Array.from({ length: count }, (_, index) => adminPrepare(index));
}

/**
 * Runs batches of 100 transfers on a young ledger (as its first seconds do: the plan is cached
 * while the table holds a page or two), then grows the table and returns the plan the batch's
 * locking statement now uses on the pool's one connection.
 */
async function lockingPlanAfterGrowth(pool: pg.Pool): Promise<string> {
  await pool.query(
    "insert into accounts (name, owner, balance) select 'account-' || g, 'bank', 1000000000 from generate_series(0, 9) g",
  );
  const processor = new CommandProcessor(pool);
  for (let batch = 0; batch < 8; batch += 1) {
    const outcomes = await processor.submitAll(prepares(100));
    expect(outcomes.every((outcome) => outcome.status === 'fulfilled')).toBe(true);
  }
  await pool.query(
    'insert into transfers (id, debit_account, credit_account, amount, state, prepared_at, executed_at) ' +
      "select gen_random_uuid(), 'account-1', 'account-2', 1, 'executed', now(), now() from generate_series(1, 50000)",
  );
  const client = await pool.connect();
  try {
    const ids = `{${Array.from({ length: 100 }, () => randomUUID()).join(',')}}`;
    const { rows: statements } = await client.query<{ generic_plans: string }>(
      "select generic_plans from pg_prepared_statements where name = 'ledger-lock-batch'",
    );
    expect(Number(statements[0].generic_plans)).toBeGreaterThan(0);
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(
      `explain execute "ledger-lock-batch"('${ids}', '{account-1,account-2}', 0)`,
    );
    return rows.map((row) => row['QUERY PLAN']).join('\n');
  } finally {
    client.release();
  }
}

test("the ledger's pool keeps the batch's locking statement on the transfers' index as the table grows", async () => {
  const database = await migratedLedgerDatabase('plans');
  const pool = createPool(database.url, { size: 1, indexLookups: true });
  try {
    const plan = await lockingPlanAfterGrowth(pool);
    expect(plan).toMatch(/Index Scan using transfers_pkey|Bitmap Index Scan on transfers_pkey/);
    expect(plan).not.toMatch(/Seq Scan on transfers/);
  } finally {
    await pool.end();
    await database.drop();
  }
});

test('without the option, the plan cached on the young table scans the grown table whole (why it exists)', async () => {
  const database = await migratedLedgerDatabase('plans');
  const pool = createPool(database.url, { size: 1 });
  try {
    const plan = await lockingPlanAfterGrowth(pool);
    expect(plan).toMatch(/Seq Scan on transfers/);
  } finally {
    await pool.end();
    await database.drop();
  }
});
