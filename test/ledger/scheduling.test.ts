/**
 * How the command processor forms batches: one batch runs as soon as there is work; another
 * starts beside it only when a full batch is waiting, so commands arriving one by one while a
 * batch commits gather into the next batch instead of splitting into many small ones.
 */
import { CommandProcessor } from '../../src/ledger/processor';
import { createPool } from '../../src/platform/database';
import { adminPrepare, migratedLedgerDatabase } from '../support/ledger';

let database: { url: string; drop(): Promise<void> };

beforeAll(async () => {
  database = await migratedLedgerDatabase('scheduling');
  const pool = createPool(database.url, { size: 1 });
  await pool.query(
    "insert into accounts (name, owner, balance) select 'account-' || g, 'bank', 1000000 from generate_series(0, 9) g",
  );
  await pool.end();
});

afterAll(async () => {
  await database.drop();
});

test('commands arriving one by one while a batch runs wait and leave together in the next batch', async () => {
  const pool = createPool(database.url, { size: 4 });
  const processor = new CommandProcessor(pool, { maxConcurrentBatches: 3, maxBatchSize: 200 });
  try {
    const outcomes = Array.from({ length: 11 }, (_, index) => processor.submit(adminPrepare(index)));
    await Promise.all(outcomes);
    // The first alone, the ten that arrived meanwhile together (not three batches at once).
    expect(processor.statistics).toMatchObject({ batches: 2, commands: 11 });
  } finally {
    await pool.end();
  }
});

test('with a full batch waiting, further batches run beside the first, up to the limit', async () => {
  const pool = createPool(database.url, { size: 4 });
  const processor = new CommandProcessor(pool, { maxConcurrentBatches: 3, maxBatchSize: 10 });
  try {
    const first = processor.submit(adminPrepare(0));
    const rest = processor.submitAll(Array.from({ length: 30 }, (_, index) => adminPrepare(index + 1)));
    expect(processor.batchesRunning).toBe(3);
    await first;
    expect((await rest).every((outcome) => outcome.status === 'fulfilled')).toBe(true);
    expect(processor.statistics.commands).toBe(31);
  } finally {
    await pool.end();
  }
});
