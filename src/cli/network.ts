/**
 * `interclear network` (and `npm start`): the whole local network in one command — the central
 * ledger and DFSPs A and B with their ledgers, connectors and SPSP services — seeded, with a demo
 * payment shown hop by hop, until Ctrl-C.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { PaymentState } from '../gen/interclear/spsp/v1/spsp';
import { grpcurlCommands } from '../network/grpcurl';
import { manifestPath, type NetworkManifest } from '../network/manifest';
import { processLayouts, startNetwork, type ProcessLayout, type RunningNetwork } from '../network/network';
import { describeBalances, describeHop, describeOutcome, readBalances, sendTracedPayment } from '../network/payment';
import { defaultBasePort } from '../network/topology';
import { formatAmount } from '../ilp';
import { ConfigError, environment, parseInteger } from '../platform/config';
import { withCall } from './failures';

const write = (line = '') => process.stdout.write(`${line}\n`);

/** Prints "  step… ok (1.2 s)" once `done` settles. */
async function reportStep(step: string, done: Promise<unknown>): Promise<void> {
  const startedAt = Date.now();
  process.stdout.write(`  ${step}… `);
  try {
    await done;
    write(`ok (${((Date.now() - startedAt) / 1000).toFixed(1)} s)`);
  } catch (error) {
    write('failed');
    throw error;
  }
}

/** The demo: alice at DFSP A pays bob at DFSP B, shown hop by hop with the balances around it. */
async function runDemo(manifest: NetworkManifest): Promise<void> {
  const [senderDfsp, receiverDfsp] = manifest.dfsps;
  const from = senderDfsp.customers[0];
  const to = receiverDfsp.customers[0];
  const receiverLedger = manifest.ledgers.find((ledger) => ledger.name === receiverDfsp.ledger)!;
  // 10,000 whole units of the receiver's currency, in minor units at its scale.
  const amount = 10n ** BigInt(receiverLedger.scale) * 10_000n;
  const shown = `${formatAmount(amount, receiverLedger.scale)} ${receiverLedger.currency}`;
  write();
  write(`demo payment: ${from} pays ${to} ${shown} (a fixed destination amount)`);
  const before = await readBalances(manifest);
  const payment = await withCall(() =>
    sendTracedPayment(manifest, { from, to, fixed: 'destination', amount }, (hop) => write(`  ${describeHop(hop)}`)),
  );
  for (const line of describeOutcome(payment)) write(line);
  const after = await readBalances(manifest);
  write();
  write('balances (before → after):');
  for (const line of describeBalances(before, after)) write(`  ${line}`);
  if (payment.state !== PaymentState.PAYMENT_STATE_EXECUTED) {
    write('the demo payment did not execute: see the logs above for the services involved');
  }
}

function printUsage(network: RunningNetwork): void {
  const { manifest } = network;
  write();
  write(
    manifest.tls
      ? 'try it with grpcurl (mTLS as the operator; every server has reflection):'
      : 'try it with grpcurl (plaintext; every server has reflection):',
  );
  for (const line of grpcurlCommands(manifest)) write(`  ${line}`);
  write();
  write('or with the CLI:');
  const [sender, receiver] = manifest.dfsps;
  // Names are looked up in the default network's manifest unless told otherwise.
  const standard = path.resolve(manifestPath(path.join('.interclear', 'network')));
  const file = /^[\w./-]+$/.test(network.manifestFile)
    ? network.manifestFile
    : `'${network.manifestFile.replace(/'/g, "'\\''")}'`;
  const where = path.resolve(network.manifestFile) === standard ? '' : ` --manifest ${file}`;
  write(
    `  npx interclear pay --from ${sender.customers[0]} --to ${receiver.customers[0]} --destination-amount 2500${where}`,
  );
  write(
    `  npx interclear pay --from ${receiver.customers[0]} --to ${sender.customers[0]} --source-amount 2500${where}`,
  );
  write(`  npx interclear account get ${sender.customers[0].split('@')[0]} --ledger ${sender.name}${where}`);
  write(`  npx interclear connector status --connector ${receiver.name}${where}`);
}

/** Adds `interclear network`. */
export function registerNetworkCommand(program: Command): void {
  program
    .command('network')
    .description('run a whole local network: central ledger, DFSP A and DFSP B (ledger, connector, SPSP each)')
    .option(
      '--data-dir <dir>',
      'configuration, logs, manifest and the embedded PostgreSQL; reused across runs',
      environment('DATA_DIR') ?? path.join('.interclear', 'network'),
    )
    .option(
      '--base-port <port>',
      'first port: central ledger on it, DFSP A on +1…+3, DFSP B on +101…+103 (0: any free ports)',
      environment('BASE_PORT') ?? String(defaultBasePort),
    )
    .option('--database-url <url>', 'a PostgreSQL server to use instead of the embedded one (or DATABASE_URL)')
    .option('--insecure', 'plaintext gRPC with the x-principal header instead of mTLS (development only)')
    .option(
      '--processes <layout>',
      "per-service: each service in a process of its own; per-dfsp: a DFSP's ledger, connector and SPSP service in one",
      environment('PROCESSES') ?? 'per-service',
    )
    .option('--no-demo', 'skip the demo payment')
    .option('--exit', 'stop after the demo payment instead of serving until Ctrl-C')
    .action(async (options) => {
      const basePort = parseInteger('--base-port', options.basePort, 0, 65_000 - 200);
      const processes = parseProcessLayout('--processes', options.processes);
      write('Interclear local network: central ledger (EUR), DFSP A (USD) and DFSP B (XOF)');
      const network = await startNetwork({
        dataDir: options.dataDir,
        basePort,
        databaseUrl: options.databaseUrl ?? environment('DATABASE_URL') ?? process.env.DATABASE_URL,
        insecure: Boolean(options.insecure),
        processes,
        progress: reportStep,
      });
      let stopping = false;
      const stop = async (exitCode: number) => {
        if (stopping) return;
        stopping = true;
        write();
        write('stopping the network…');
        await network.stop();
        write('stopped.');
        process.exit(exitCode);
      };
      process.on('SIGINT', () => void stop(0));
      process.on('SIGTERM', () => void stop(0));
      for (const service of network.manifest.services) {
        network.service(service.name).onUnexpectedExit((code, signal) => {
          if (!stopping) {
            write(`warning: ${service.name} exited (${signal ?? `code ${code}`}); see ${service.logFile}`);
          }
        });
      }
      write();
      write(`manifest: ${network.manifestFile}`);
      write(`logs:     ${path.join(network.manifest.dataDir, 'logs')}`);
      try {
        if (options.demo) await runDemo(network.manifest);
      } catch (error) {
        write(`the demo payment failed: ${(error as Error).message}`);
        if (options.exit) await stop(1);
      }
      if (options.exit) return stop(0);
      printUsage(network);
      write();
      write('serving; press Ctrl-C to stop.');
      // Keep the process alive until a signal arrives.
      await new Promise<never>(() => undefined);
    });
}

/** A process layout flag's value, or a ConfigError naming the choices. */
export function parseProcessLayout(flag: string, value: string): ProcessLayout {
  const layout = processLayouts.find((candidate) => candidate === value);
  if (!layout) throw new ConfigError(flag, `must be one of ${processLayouts.join(', ')}, got "${value}"`);
  return layout;
}
