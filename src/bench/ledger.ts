/**
 * The ledger phase: prepare+fulfil pairs through a real `interclear ledger` process over gRPC,
 * from many concurrent clients, over many random accounts or a few hot ones.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { createLedgerClient, type LedgerClient } from '../ledger/client';
import { createPool, databaseOf } from '../platform/database';
import { LatencyRecorder, type PhaseResult } from './measure';
import { perOperation, startCpuWindow } from './cpu';
import { Pacer } from './pacing';

/** Options of {@link runLedgerPhase}. */
export interface LedgerPhaseOptions {
  databaseUrl: string;
  durationMs: number;
  concurrency: number;
  /** Accounts transfers are spread over (a handful makes them hot). */
  accounts: number;
  /** Target pairs per second (open loop); unlimited when absent. */
  rate?: number;
  /**
   * Transfers each client sends per call: 1 uses PrepareTransfer and FulfillTransfer; more uses
   * the batch calls PrepareTransfers and FulfillTransfers with that many items.
   */
  transfersPerCall?: number;
  /** Write a V8 CPU profile of the ledger process here. */
  profileDirectory?: string;
  onProgress?: (done: number) => void;
}

const repositoryRoot = path.join(__dirname, '..', '..');

/** Starts `interclear ledger` as a child process and resolves with its address once it serves. */
export async function spawnLedger(
  databaseUrl: string,
  extraArguments: string[] = [],
  profileDirectory?: string,
): Promise<{ address: string; process: ChildProcess; stop(): Promise<void> }> {
  const profiling = profileDirectory ? ['--cpu-prof', `--cpu-prof-dir=${profileDirectory}`] : [];
  const child = spawn(
    process.execPath,
    [
      ...profiling,
      path.join(repositoryRoot, 'bin', 'interclear.js'),
      'ledger',
      '--listen',
      '127.0.0.1:0',
      '--ilp-prefix',
      'private.bench.',
      '--currency',
      'USD',
      '--scale',
      '2',
      '--insecure',
      '--database-url',
      databaseUrl,
      '--max-hold-time',
      '60s',
      ...extraArguments,
    ],
    { env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let output = '';
  const address = await new Promise<string>((resolve, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /serving on (\S+)/.exec(output);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`the ledger exited with code ${code} before serving:\n${output}`)));
  });
  return {
    address,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Runs the ledger phase against a fresh ledger database at `databaseUrl`. */
export async function runLedgerPhase(options: LedgerPhaseOptions): Promise<PhaseResult> {
  // All clients are one principal: let the gateway admit them all (its default is 1,024 calls).
  const limit = ['--max-calls-per-principal', String(Math.max(1024, options.concurrency))];
  const ledger = await spawnLedger(options.databaseUrl, limit, options.profileDirectory);
  // Several channels: one HTTP/2 connection would serialise every call on one socket.
  const clients: LedgerClient[] = Array.from({ length: 4 }, () =>
    createLedgerClient(ledger.address, { principal: 'bench' }),
  );
  const admin = createLedgerClient(ledger.address, { principal: 'admin' });
  try {
    const names = Array.from({ length: options.accounts }, (_, index) => `bench-${index}`);
    for (const name of names) {
      await admin.createAccount({ name, owner: 'bench', minimumBalanceUnlimited: false, disabled: false });
      await admin.deposit({ depositId: randomUUID(), account: name, amount: 10n ** 15n, externalReference: 'bench' });
    }
    const latency = new LatencyRecorder();
    let errors = 0;
    const cpu = startCpuWindow(
      { ledger: ledger.process.pid, 'load generator': process.pid },
      databaseOf(options.databaseUrl),
    );
    const startedAt = Date.now();
    const deadline = startedAt + options.durationMs;
    const pacer = options.rate ? new Pacer(startedAt, deadline, options.rate) : undefined;
    const perCall = options.transfersPerCall ?? 1;
    await Promise.all(
      Array.from({ length: options.concurrency }, async (_, worker) => {
        const client = clients[worker % clients.length];
        while (Date.now() < deadline) {
          // Open loop: the n-th pair starts at n / rate seconds, whatever happened before.
          const lateMs = pacer ? await pacer.next(perCall) : 0;
          if (lateMs === null) break;
          const pairs = Array.from({ length: perCall }, () => {
            const debit = Math.floor(Math.random() * names.length);
            let credit = Math.floor(Math.random() * (names.length - 1));
            if (credit >= debit) credit += 1;
            const fulfillment = randomBytes(32);
            return {
              fulfillment,
              prepare: {
                transferId: randomUUID(),
                debitAccount: names[debit],
                creditAccount: names[credit],
                amount: 1n,
                executionCondition: createHash('sha256').update(fulfillment).digest(),
                expiryTime: new Date(Date.now() + 30_000),
                ilpPacket: Buffer.alloc(0),
                memo: Buffer.alloc(0),
                traceParent: '',
              },
            };
          });
          const begun = Pacer.startedAt(lateMs);
          try {
            if (perCall === 1) {
              await client.prepareTransfer(pairs[0].prepare);
              await client.fulfillTransfer({
                transferId: pairs[0].prepare.transferId,
                fulfillment: pairs[0].fulfillment,
              });
              latency.record(begun);
            } else {
              const prepared = await client.prepareTransfers({ transfers: pairs.map((pair) => pair.prepare) });
              const ready = pairs.filter((_, index) => prepared.results[index]?.result?.$case === 'transfer');
              errors += pairs.length - ready.length;
              const fulfilled = await client.fulfillTransfers({
                fulfillments: ready.map((pair) => ({
                  transferId: pair.prepare.transferId,
                  fulfillment: pair.fulfillment,
                })),
              });
              for (const result of fulfilled.results) {
                if (result.result?.$case === 'transfer') latency.record(begun);
                else errors += 1;
              }
            }
            options.onProgress?.(latency.count);
          } catch {
            errors += 1;
          }
        }
      }),
    );
    const elapsedMs = Date.now() - startedAt;
    const cpuMsPerOperation = perOperation(cpu.end(), latency.count);
    return {
      ...latency.summary(elapsedMs),
      errors,
      checks: await verifyLedger(options.databaseUrl),
      cpuMsPerOperation,
    };
  } finally {
    for (const client of [...clients, admin]) client.close();
    await ledger.stop();
  }
}

/**
 * The ledger's invariants after a run: money is conserved (balances plus holds equal net
 * deposits), and no transfer is left prepared once every client has finished.
 */
export async function verifyLedger(databaseUrl: string): Promise<{ conservation: boolean; allFinal: boolean }> {
  const pool = createPool(databaseUrl, { size: 1 });
  try {
    const result = await pool.query<{ total: bigint; net: bigint; held: bigint; holds: bigint; prepared: bigint }>(
      `select (select coalesce(sum(balance + held_amount), 0) from accounts) as total,
              (select coalesce(sum(case kind when 'deposit' then amount else -amount end), 0) from movements) as net,
              (select coalesce(sum(held_amount), 0) from accounts) as held,
              (select coalesce(sum(amount), 0) from transfers where state = 'prepared') as holds,
              (select count(*) from transfers where state = 'prepared') as prepared`,
    );
    const row = result.rows[0];
    return { conservation: row.total === row.net && row.held === row.holds, allFinal: row.prepared === 0n };
  } finally {
    await pool.end();
  }
}
