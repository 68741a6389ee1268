/**
 * `interclear chaos` (and `npm run chaos`): the whole network as separate processes, a steady
 * stream of payments, seeded faults meanwhile, then an audit of every ledger, connector and
 * payment. Exits 1 when any invariant is violated; the printed seed reproduces the faults.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { describeReport, reportJson } from '../chaos/report';
import { maximumSeed } from '../chaos/random';
import { runChaos, type ChaosProgress } from '../chaos/run';
import { describeFault, faultKinds, type FaultKind } from '../chaos/schedule';
import { ConfigError, environment, parseDuration, parseInteger } from '../platform/config';
import { parseProcessLayout } from './network';

interface ChaosCommandOptions {
  duration: string;
  seed?: string;
  rate: string;
  dataDir?: string;
  databaseUrl?: string;
  faults: string;
  settleTimeout: string;
  processes: string;
  json?: boolean;
}

const seconds = (milliseconds: number) => `${(milliseconds / 1000).toFixed(1)}s`.padStart(6);

/** A progress line on stderr (stdout carries the summary, or the JSON). */
function describeProgress(event: ChaosProgress): string | undefined {
  switch (event.kind) {
    case 'step':
      return `  ${event.message}`;
    case 'network':
      return `  network running; manifest ${event.manifestFile}, logs in ${path.join(event.dataDir, 'logs')}`;
    case 'schedule':
      return `  ${event.faults.length} faults planned: ${event.faults.map((fault) => fault.kind).join(', ') || 'none (run longer)'}`;
    case 'fault-started':
      return `${seconds(event.elapsedMs)}  fault #${event.fault.index + 1}: ${describeFault(event.fault)}`;
    case 'fault-healed':
      return `${seconds(event.elapsedMs)}  fault #${event.record.fault.index + 1} healed${event.record.detail ? `: ${event.record.detail}` : ''}${event.record.error ? ` — ERROR: ${event.record.error}` : ''}`;
    case 'traffic': {
      const { counts } = event;
      // Every fifth second: enough to see the traffic move without drowning the faults.
      if (Math.round(event.elapsedMs / 1000) % 5 !== 0) return undefined;
      return `${seconds(event.elapsedMs)}  payments: ${counts.sent} sent, ${counts.executed} executed, ${counts.rejected} rejected, ${counts.failed} failed, ${counts.inFlight} in flight`;
    }
    case 'settling':
      return `  still open ${seconds(event.elapsedMs).trim()} after the traffic: ${Object.entries(event.open)
        .map(([service, count]) => `${service} ${count}`)
        .join(', ')}`;
    case 'violation':
      return `  VIOLATION ${event.violation.kind}: ${event.violation.message}`;
  }
}

function parseKinds(value: string): FaultKind[] {
  if (value === 'all') return [...faultKinds];
  const kinds = value.split(',').map((kind) => kind.trim());
  for (const kind of kinds) {
    if (!faultKinds.includes(kind as FaultKind)) {
      throw new ConfigError('--faults', `unknown fault "${kind}"; use all or a list of ${faultKinds.join(', ')}`);
    }
  }
  return kinds as FaultKind[];
}

/** Adds `interclear chaos`. */
export function registerChaosCommand(program: Command): void {
  program
    .command('chaos')
    .description('run the network under seeded faults with a stream of payments, then audit that nothing was lost')
    .option('--duration <duration>', 'how long payments are sent (faults are planned within it)', '60s')
    .option('--seed <n>', `seed of the fault schedule, 0 to ${maximumSeed} (default: random, printed)`)
    .option('--rate <payments-per-second>', 'payments started per second', '5')
    .option('--faults <list>', `fault kinds: all, or a comma-separated list of ${faultKinds.join(', ')}`, 'all')
    .option('--settle-timeout <duration>', 'how long the network may take to come to rest afterwards', '75s')
    .option('--data-dir <dir>', 'network data (configuration, logs, database); default: a temporary directory')
    .option(
      '--database-url <url>',
      'a PostgreSQL server to use instead of an embedded one (its restarts are then simulated)',
      environment('CHAOS_DATABASE_URL'),
    )
    .option(
      '--processes <layout>',
      "per-service: each service in a process of its own; per-dfsp: a DFSP's ledger, connector and SPSP service in one (a kill or pause hits all three)",
      'per-service',
    )
    .option('--json', 'print the report as JSON on stdout (progress stays on stderr)')
    .action(async (options: ChaosCommandOptions) => {
      const durationMs = parseDuration('--duration', options.duration);
      if (durationMs < 1_000) throw new ConfigError('--duration', 'must be at least 1s');
      const seed =
        options.seed === undefined
          ? Math.floor(Math.random() * maximumSeed)
          : parseInteger('--seed', options.seed, 0, maximumSeed);
      const ratePerSecond = parseInteger('--rate', options.rate, 1, 200);
      const kinds = parseKinds(options.faults);
      const settleTimeoutMs = parseDuration('--settle-timeout', options.settleTimeout);
      const processes = parseProcessLayout('--processes', options.processes);
      const temporary = options.dataDir === undefined;
      const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'interclear-chaos-'));
      const say = (line: string) => process.stderr.write(`${line}\n`);
      say(
        `interclear chaos: seed ${seed}, ${options.duration} at ${ratePerSecond} payments/s, a process ${processes === 'per-dfsp' ? 'per DFSP' : 'per service'}, data in ${dataDir}`,
      );

      const abort = new AbortController();
      const onSignal = () => {
        say('interrupted: stopping the faults and the network…');
        abort.abort();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let exitCode = 1;
      try {
        const report = await runChaos({
          durationMs,
          seed,
          ratePerSecond,
          dataDir,
          databaseUrl: options.databaseUrl,
          kinds,
          settleTimeoutMs,
          processes,
          signal: abort.signal,
          onProgress: (event) => {
            const line = describeProgress(event);
            if (line !== undefined) say(line);
          },
        });
        if (options.json) process.stdout.write(`${reportJson(report)}\n`);
        else for (const line of describeReport(report)) process.stdout.write(`${line}\n`);
        exitCode = report.violations.length === 0 && !report.aborted ? 0 : 1;
        // A passing run in a temporary directory leaves nothing behind; a failing one keeps its logs.
        if (temporary && exitCode === 0) rmSync(dataDir, { recursive: true, force: true });
        else say(`logs and data kept in ${dataDir}`);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      process.exitCode = exitCode;
    });
}
