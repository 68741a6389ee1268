/**
 * The baseline: the same two-phase transfer as the ledger (hold on prepare; SHA-256 check,
 * release and credit on fulfil; an event row for each) done by PostgreSQL alone, in PL/pgSQL,
 * with no application in between — the ceiling of this machine's database.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { createPool, databaseOf } from '../platform/database';
import { perOperation, startCpuWindow } from './cpu';
import { LatencyRecorder, type PhaseResult } from './measure';

const schema = `
  drop table if exists baseline_events, baseline_transfers, baseline_accounts cascade;
  create table baseline_accounts (id int primary key, balance bigint not null, held bigint not null default 0);
  create table baseline_transfers (
    id uuid primary key, debit int not null, credit int not null, amount bigint not null check (amount > 0),
    condition bytea not null, expires_at timestamptz not null, state text not null, fulfillment bytea
  );
  create table baseline_events (sequence bigserial primary key, transfer_id uuid not null, type text not null,
    occurred_at timestamptz not null default now());

  create or replace function baseline_prepare(p_id uuid, p_debit int, p_credit int, p_amount bigint, p_condition bytea)
  returns void language plpgsql as $$
  begin
    update baseline_accounts set balance = balance - p_amount, held = held + p_amount
      where id = p_debit and balance >= p_amount;
    if not found then raise exception 'insufficient funds'; end if;
    perform 1 from baseline_accounts where id = p_credit;
    insert into baseline_transfers values (p_id, p_debit, p_credit, p_amount, p_condition,
      clock_timestamp() + interval '30 seconds', 'prepared', null);
    insert into baseline_events (transfer_id, type) values (p_id, 'prepared');
  end $$;

  create or replace function baseline_fulfil(p_id uuid, p_fulfillment bytea)
  returns void language plpgsql as $$
  declare t baseline_transfers;
  begin
    select * into t from baseline_transfers where id = p_id for update;
    if t.state <> 'prepared' or sha256(p_fulfillment) <> t.condition or t.expires_at <= clock_timestamp() then
      raise exception 'cannot fulfil';
    end if;
    perform 1 from baseline_accounts where id in (t.debit, t.credit) order by id for update;
    update baseline_accounts set held = held - t.amount where id = t.debit;
    update baseline_accounts set balance = balance + t.amount where id = t.credit;
    update baseline_transfers set state = 'executed', fulfillment = p_fulfillment where id = p_id;
    insert into baseline_events (transfer_id, type) values (p_id, 'executed');
  end $$;

  -- Batched: many transfers per call and per commit, accounts locked in id order first.
  create or replace function baseline_prepare_batch(p_ids uuid[], p_debits int[], p_credits int[], p_amounts bigint[],
    p_conditions bytea[]) returns void language plpgsql as $$
  begin
    perform 1 from baseline_accounts where id = any(p_debits || p_credits) order by id for update;
    for i in 1 .. array_length(p_ids, 1) loop
      perform baseline_prepare(p_ids[i], p_debits[i], p_credits[i], p_amounts[i], p_conditions[i]);
    end loop;
  end $$;

  create or replace function baseline_fulfil_batch(p_ids uuid[], p_fulfillments bytea[])
  returns void language plpgsql as $$
  begin
    perform 1 from baseline_transfers where id = any(p_ids) order by id for update;
    perform 1 from baseline_accounts a
      where a.id in (select debit from baseline_transfers where id = any(p_ids)
                     union select credit from baseline_transfers where id = any(p_ids))
      order by a.id for update;
    for i in 1 .. array_length(p_ids, 1) loop
      perform baseline_fulfil(p_ids[i], p_fulfillments[i]);
    end loop;
  end $$;
`;

/** Options of {@link runBaseline}. */
export interface BaselineOptions {
  databaseUrl: string;
  durationMs: number;
  concurrency: number;
  batchSize: number;
  accounts: number;
  onProgress?: (done: number) => void;
}

interface Pair {
  id: string;
  debit: number;
  credit: number;
  fulfillment: Buffer;
  condition: Buffer;
}

function randomPair(accounts: number): Pair {
  const debit = Math.floor(Math.random() * accounts);
  let credit = Math.floor(Math.random() * (accounts - 1));
  if (credit >= debit) credit += 1;
  const fulfillment = randomBytes(32);
  return { id: randomUUID(), debit, credit, fulfillment, condition: createHash('sha256').update(fulfillment).digest() };
}

async function setUp(pool: pg.Pool, accounts: number): Promise<void> {
  await pool.query(schema);
  await pool.query(
    'insert into baseline_accounts (id, balance) select g, 1000000000000 from generate_series(0, $1 - 1) g',
    [accounts],
  );
}

/** Conservation and finality of the baseline's own tables. */
async function verify(pool: pg.Pool, accounts: number): Promise<{ conservation: boolean; allFinal: boolean }> {
  const result = await pool.query<{ total: bigint; prepared: bigint }>(
    "select (select sum(balance + held) from baseline_accounts) as total, (select count(*) from baseline_transfers where state = 'prepared') as prepared",
  );
  return {
    conservation: result.rows[0].total === BigInt(accounts) * 1_000_000_000_000n,
    allFinal: result.rows[0].prepared === 0n,
  };
}

/** One transfer per commit (prepare commits, then fulfil commits), `concurrency` connections. */
export async function runBaselineSingle(options: BaselineOptions): Promise<PhaseResult> {
  const pool = createPool(options.databaseUrl, { size: options.concurrency + 1, applicationName: 'interclear-bench' });
  try {
    await setUp(pool, options.accounts);
    const latency = new LatencyRecorder();
    let errors = 0;
    const deadline = Date.now() + options.durationMs;
    const cpu = startCpuWindow({ 'load generator': process.pid }, databaseOf(options.databaseUrl));
    const startedAt = Date.now();
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        const client = await pool.connect();
        try {
          while (Date.now() < deadline) {
            const pair = randomPair(options.accounts);
            const begun = process.hrtime.bigint();
            try {
              await client.query({
                name: 'baseline-prepare',
                text: 'select baseline_prepare($1, $2, $3, 1, $4)',
                values: [pair.id, pair.debit, pair.credit, pair.condition],
              });
              await client.query({
                name: 'baseline-fulfil',
                text: 'select baseline_fulfil($1, $2)',
                values: [pair.id, pair.fulfillment],
              });
              latency.record(begun);
              options.onProgress?.(latency.count);
            } catch {
              errors += 1;
            }
          }
        } finally {
          client.release();
        }
      }),
    );
    const elapsedMs = Date.now() - startedAt;
    const cpuMsPerOperation = perOperation(cpu.end(), latency.count);
    return { ...latency.summary(elapsedMs), errors, checks: await verify(pool, options.accounts), cpuMsPerOperation };
  } finally {
    await pool.end();
  }
}

/** `batchSize` transfers per commit: prepare a batch, then fulfil it. */
export async function runBaselineBatched(options: BaselineOptions): Promise<PhaseResult> {
  const pool = createPool(options.databaseUrl, { size: options.concurrency + 1, applicationName: 'interclear-bench' });
  try {
    await setUp(pool, options.accounts);
    const latency = new LatencyRecorder();
    let errors = 0;
    const deadline = Date.now() + options.durationMs;
    const cpu = startCpuWindow({ 'load generator': process.pid }, databaseOf(options.databaseUrl));
    const startedAt = Date.now();
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        const client = await pool.connect();
        try {
          while (Date.now() < deadline) {
            const pairs = Array.from({ length: options.batchSize }, () => randomPair(options.accounts));
            const begun = process.hrtime.bigint();
            try {
              await client.query({
                name: 'baseline-prepare-batch',
                text: 'select baseline_prepare_batch($1::uuid[], $2::int[], $3::int[], $4::int8[], $5::bytea[])',
                values: [
                  pairs.map((pair) => pair.id),
                  pairs.map((pair) => pair.debit),
                  pairs.map((pair) => pair.credit),
                  pairs.map(() => '1'),
                  pairs.map((pair) => pair.condition),
                ],
              });
              await client.query({
                name: 'baseline-fulfil-batch',
                text: 'select baseline_fulfil_batch($1::uuid[], $2::bytea[])',
                values: [pairs.map((pair) => pair.id), pairs.map((pair) => pair.fulfillment)],
              });
              for (let index = 0; index < pairs.length; index += 1) latency.record(begun);
              options.onProgress?.(latency.count);
            } catch {
              errors += pairs.length;
            }
          }
        } finally {
          client.release();
        }
      }),
    );
    const elapsedMs = Date.now() - startedAt;
    const cpuMsPerOperation = perOperation(cpu.end(), latency.count);
    return { ...latency.summary(elapsedMs), errors, checks: await verify(pool, options.accounts), cpuMsPerOperation };
  } finally {
    await pool.end();
  }
}
