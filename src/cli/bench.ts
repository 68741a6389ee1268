/**
 * `interclear bench` (and `npm run bench`): the SQL baseline, the ledger over gRPC, and (when
 * available) complete payments end to end, on the same PostgreSQL in one run, with a progress
 * bar, figures, and the invariants checked. A run whose checks fail says FAILED.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { runBaselineBatched, runBaselineSingle } from '../bench/baseline';
import type { PhaseResult } from '../bench/measure';
import { runLedgerPhase } from '../bench/ledger';
import { runEndToEndPhase } from '../bench/e2e';
import { ConfigError, environment, parseDuration, parseInteger } from '../platform/config';
import { createClient, dropDatabase, ensureDatabase, startEmbeddedDatabase, withDatabase } from '../platform/database';
import { parseProcessLayout } from './network';

/**
 * Writes out what earlier phases left dirty, so that a phase is not measured while PostgreSQL
 * flushes its predecessor's pages (a checkpoint mid-phase shows as latency spikes). Needs a
 * superuser (the embedded server's user); elsewhere it is skipped.
 */
async function checkpoint(serverUrl: string): Promise<void> {
  const client = createClient(serverUrl, 'interclear-bench');
  try {
    await client.connect();
    await client.query('checkpoint');
  } catch {
    // Not a superuser: the phase runs with whatever the server is doing.
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Clients of the one-transfer-per-call comparison run: enough for group commit to fill batches. */
const singleConcurrency = 256;

interface BenchOptions {
  duration: string;
  concurrency: string;
  e2eConcurrency: string;
  mode: string;
  phases: string;
  rate?: string;
  e2eRate?: string;
  e2eProcesses: string;
  batchSize: string;
  transfersPerCall: string;
  json?: boolean;
  databaseUrl?: string;
  profile?: string;
}

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('measure the SQL baseline, the ledger over gRPC and end-to-end payments on one PostgreSQL')
    .option('--duration <duration>', 'how long each phase runs', '10s')
    .option(
      '--concurrency <n>',
      'concurrent clients of the ledger phase (group commit batches what they send together)',
      '16',
    )
    .option('--e2e-concurrency <n>', 'concurrent payers of the end-to-end phase', '32')
    .option('--mode <mode>', 'random (1,000 accounts) or hot (4 accounts)', 'random')
    .option('--phases <list>', 'comma-separated: baseline,ledger,e2e', 'baseline,ledger,e2e')
    .option('--rate <pairs-per-second>', 'pace the ledger phase at this rate (open loop) instead of flat out')
    .option(
      '--e2e-rate <payments-per-second>',
      'pace the end-to-end phase at this rate (open loop; give enough --e2e-concurrency for the payments in flight)',
    )
    .option(
      '--e2e-processes <layout>',
      "the end-to-end network's processes: per-dfsp (a DFSP's ledger, connector and SPSP service in one) or " +
        'per-service (each its own, as `npm start` runs them)',
      'per-dfsp',
    )
    .option('--batch-size <n>', 'transfers per commit in the batched baseline', '50')
    .option(
      '--transfers-per-call <n>',
      'transfers per call in the ledger phase: 1 = PrepareTransfer/FulfillTransfer, more = the batch calls ' +
        '(then a run with one per call, 256 clients, follows for comparison)',
      '50',
    )
    .option('--database-url <url>', 'PostgreSQL server to use (default: DATABASE_URL, else an embedded one)')
    .option('--json', 'print one JSON object with the results instead of text')
    .option(
      '--profile <dir>',
      'write CPU profiles (.cpuprofile) into this directory: of the ledger process (ledger phase) and of ' +
        'every network process (e2e phase)',
    )
    .action(async (options: BenchOptions) => {
      const durationMs = parseDuration('--duration', options.duration);
      const concurrency = parseInteger('--concurrency', options.concurrency, 1, 10_000);
      const batchSize = parseInteger('--batch-size', options.batchSize, 1, 10_000);
      const transfersPerCall = parseInteger('--transfers-per-call', options.transfersPerCall, 1, 1_000);
      const e2eConcurrency = parseInteger('--e2e-concurrency', options.e2eConcurrency, 1, 10_000);
      if (!['random', 'hot'].includes(options.mode)) throw new ConfigError('--mode', 'must be random or hot');
      const accounts = options.mode === 'hot' ? 4 : 1000;
      const phases = new Set(options.phases.split(',').map((phase) => phase.trim()));
      for (const phase of phases) {
        if (!['baseline', 'ledger', 'e2e'].includes(phase)) {
          throw new ConfigError('--phases', `unknown phase "${phase}"; use baseline, ledger, e2e`);
        }
      }
      const rate = options.rate ? parseInteger('--rate', options.rate, 1, 1_000_000) : undefined;
      const e2eRate = options.e2eRate ? parseInteger('--e2e-rate', options.e2eRate, 1, 1_000_000) : undefined;
      const e2eProcesses = parseProcessLayout('--e2e-processes', options.e2eProcesses);
      const say = (line: string) => {
        if (!options.json) process.stderr.write(`${line}\n`);
      };

      let embeddedDirectory: string | undefined;
      let serverUrl = options.databaseUrl ?? environment('DATABASE_URL') ?? process.env.DATABASE_URL;
      let stopEmbedded: (() => Promise<void>) | undefined;
      if (!serverUrl) {
        embeddedDirectory = mkdtempSync(path.join(tmpdir(), 'interclear-bench-'));
        say('starting embedded PostgreSQL…');
        const embedded = await startEmbeddedDatabase({ dataDir: path.join(embeddedDirectory, 'pg') });
        serverUrl = embedded.url;
        stopEmbedded = embedded.stop;
      }
      const results: Record<string, PhaseResult | undefined> = {};
      let halfRate: number | undefined;
      // A phase runs in its own fresh database (null: the phase makes its own, like the network).
      const run = async (
        label: string,
        database: string | null,
        work: (url: string, onProgress: (done: number) => void) => Promise<PhaseResult>,
      ) => {
        if (database) await ensureDatabase(serverUrl!, database);
        await checkpoint(serverUrl!);
        const bar = new SingleBar({
          format: `${label.padEnd(26)} {bar} {seconds}s of ${Math.ceil(durationMs / 1000)}s, {done} done`,
          hideCursor: true,
          noTTYOutput: true,
          notTTYSchedule: 2000,
          stream: process.stderr,
        });
        // The bar runs from the first completed operation (account set-up before it is not measured).
        let measuringSince: number | undefined;
        let done = 0;
        const seconds = () =>
          measuringSince === undefined
            ? 0
            : Math.min(Math.floor((Date.now() - measuringSince) / 1000), Math.ceil(durationMs / 1000));
        if (!options.json) bar.start(Math.ceil(durationMs / 1000), 0, { seconds: 0, done: 0 });
        const timer = setInterval(() => {
          if (!options.json) bar.update(seconds(), { seconds: seconds(), done });
        }, 250);
        try {
          return await work(database ? withDatabase(serverUrl!, database) : serverUrl!, (count) => {
            measuringSince ??= Date.now();
            done = count;
          });
        } finally {
          clearInterval(timer);
          if (!options.json) bar.stop();
          if (database) await dropDatabase(serverUrl!, database).catch(() => undefined);
        }
      };
      try {
        if (phases.has('baseline')) {
          results.baseline = await run('baseline, 1 per commit', 'bench_baseline', (url, onProgress) =>
            runBaselineSingle({ databaseUrl: url, durationMs, concurrency: 16, batchSize, accounts, onProgress }),
          );
          results.baselineBatched = await run(
            `baseline, ${batchSize} per commit`,
            'bench_baseline_batched',
            (url, onProgress) =>
              runBaselineBatched({ databaseUrl: url, durationMs, concurrency: 4, batchSize, accounts, onProgress }),
          );
        }
        if (phases.has('ledger')) {
          const ledgerPhase = (label: string, database: string, perCall: number, clients: number, pace?: number) =>
            run(label, database, (url, onProgress) =>
              runLedgerPhase({
                databaseUrl: url,
                durationMs,
                concurrency: clients,
                accounts,
                rate: pace,
                transfersPerCall: perCall,
                onProgress,
                profileDirectory: options.profile ? path.resolve(options.profile) : undefined,
              }),
            );
          const batchLabel = transfersPerCall === 1 ? '' : `, ${transfersPerCall} per call`;
          results.ledger = await ledgerPhase(
            rate ? `ledger at ${rate} pairs/s${batchLabel}` : `ledger (${options.mode}${batchLabel})`,
            'bench_ledger',
            transfersPerCall,
            concurrency,
            rate,
          );
          // Latency at half the load just measured (unless a rate was given: that run was paced).
          if (!rate && results.ledger.perSecond >= 2) {
            halfRate = Math.floor(results.ledger.perSecond / 2);
            results.ledgerHalfLoad = await ledgerPhase(
              `ledger at ${halfRate} pairs/s`,
              'bench_ledger_half',
              transfersPerCall,
              concurrency,
              halfRate,
            );
          }
          // For comparison, one transfer per call (PrepareTransfer, FulfillTransfer).
          if (transfersPerCall > 1 && !rate) {
            results.ledgerSingle = await ledgerPhase('ledger, 1 per call', 'bench_ledger_single', 1, singleConcurrency);
          }
        }
        if (phases.has('e2e')) {
          results.e2e = await run(
            e2eRate ? `end to end at ${e2eRate}/s` : 'end to end (payments)',
            null,
            (_url, onProgress) =>
              runEndToEndPhase({
                serverUrl: serverUrl!,
                durationMs,
                concurrency: e2eConcurrency,
                rate: e2eRate,
                processes: e2eProcesses,
                onProgress,
                profileDirectory: options.profile ? path.resolve(options.profile) : undefined,
              }),
          );
        }
      } finally {
        await stopEmbedded?.();
        if (embeddedDirectory) rmSync(embeddedDirectory, { recursive: true, force: true });
      }

      const checked = Object.values(results).filter((result): result is PhaseResult => result !== undefined);
      const conservation = checked.every((result) => result.checks.conservation);
      const allFinal = checked.every((result) => result.checks.allFinal);
      const ratio =
        results.ledger && results.baselineBatched && results.baselineBatched.perSecond > 0
          ? Math.round((results.ledger.perSecond / results.baselineBatched.perSecond) * 100) / 100
          : null;
      const summary = {
        baseline: results.baseline
          ? {
              pairsPerSecond: results.baseline.perSecond,
              batchedPairsPerSecond: results.baselineBatched?.perSecond ?? null,
              cpuMsPerPair: results.baseline.cpuMsPerOperation ?? null,
              batchedCpuMsPerPair: results.baselineBatched?.cpuMsPerOperation ?? null,
            }
          : null,
        ledger: results.ledger
          ? {
              pairsPerSecond: results.ledger.perSecond,
              p50Ms: results.ledger.p50Ms,
              p95Ms: results.ledger.p95Ms,
              p99Ms: results.ledger.p99Ms,
              errors: results.ledger.errors,
              cpuMsPerPair: results.ledger.cpuMsPerOperation ?? null,
              mode: options.mode,
              concurrency,
              transfersPerCall,
              rate: rate ?? null,
              halfLoad: results.ledgerHalfLoad
                ? {
                    rate: halfRate,
                    pairsPerSecond: results.ledgerHalfLoad.perSecond,
                    p50Ms: results.ledgerHalfLoad.p50Ms,
                    p95Ms: results.ledgerHalfLoad.p95Ms,
                    p99Ms: results.ledgerHalfLoad.p99Ms,
                    errors: results.ledgerHalfLoad.errors,
                  }
                : null,
              singleCall: results.ledgerSingle
                ? {
                    concurrency: singleConcurrency,
                    pairsPerSecond: results.ledgerSingle.perSecond,
                    p50Ms: results.ledgerSingle.p50Ms,
                    p95Ms: results.ledgerSingle.p95Ms,
                    p99Ms: results.ledgerSingle.p99Ms,
                    errors: results.ledgerSingle.errors,
                  }
                : null,
            }
          : null,
        ratio,
        e2e: results.e2e
          ? {
              paymentsPerSecond: results.e2e.perSecond,
              p50Ms: results.e2e.p50Ms,
              p95Ms: results.e2e.p95Ms,
              p99Ms: results.e2e.p99Ms,
              errors: results.e2e.errors,
              concurrency: e2eConcurrency,
              rate: e2eRate ?? null,
              processes: e2eProcesses,
              cpuMsPerPayment: results.e2e.cpuMsPerOperation ?? null,
            }
          : null,
        checks: { conservation, allFinal },
        durationMs,
      };
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary)}\n`);
      } else {
        const line = (label: string, result: PhaseResult | undefined, unit: string) => {
          if (!result) return;
          say(
            `${label.padEnd(26)} ${String(result.perSecond).padStart(7)} ${unit}/s   p50 ${result.p50Ms} ms   p95 ${result.p95Ms} ms   p99 ${result.p99Ms} ms   errors ${result.errors}`,
          );
          // Where the CPU went (time on a core, Linux): per pair in µs, per payment in ms.
          const cpu = result.cpuMsPerOperation;
          if (!cpu || Object.keys(cpu).length === 0) return;
          const scale = unit === 'pairs' ? 1000 : 1;
          const shown = (value: number) => (value * scale).toFixed(unit === 'pairs' ? 0 : 1);
          const parts = Object.entries(cpu)
            .sort(([, left], [, right]) => right - left)
            .map(([name, value]) => `${name} ${shown(value)}`);
          const total = Object.values(cpu).reduce((sum, value) => sum + value, 0);
          say(
            `  CPU per ${unit === 'pairs' ? 'pair (µs)' : 'payment (ms)'}: ${parts.join(' · ')} · total ${shown(total)}`,
          );
        };
        say('');
        line('baseline, 1 per commit', results.baseline, 'pairs');
        line(`baseline, ${batchSize} per commit`, results.baselineBatched, 'pairs');
        line(`ledger over gRPC${transfersPerCall > 1 ? `, ${transfersPerCall}/call` : ''}`, results.ledger, 'pairs');
        line(`ledger at ${halfRate} pairs/s`, results.ledgerHalfLoad, 'pairs');
        line('ledger, 1 per call', results.ledgerSingle, 'pairs');
        const layout = e2eProcesses === 'per-dfsp' ? ', a process per DFSP' : '';
        line(`${e2eRate ? `end to end at ${e2eRate}/s` : 'end to end'}${layout}`, results.e2e, 'payments');
        if (ratio !== null) say(`ledger / batched baseline: ${ratio}`);
        say(`conservation: ${conservation ? 'ok' : 'VIOLATED'}   all transfers final: ${allFinal ? 'ok' : 'NO'}`);
      }
      if (!conservation || !allFinal) {
        process.stderr.write('FAILED: an invariant check failed (see above)\n');
        process.exitCode = 1;
      }
    });
}
