/** `interclear trace <transfer-id|payment-id>`: a payment's path and timings across the network's ledgers. */
import path from 'node:path';
import type { Command } from 'commander';
import { manifestPath, readManifest } from '../network/manifest';
import { adminIdentity } from '../network/payment';
import { describeTrace, tracePayment } from '../network/trace';
import { environment } from '../platform/config';

export function registerTraceCommand(program: Command): void {
  program
    .command('trace <id>')
    .description("show a payment's transfers on every ledger, in order, with states and timings")
    .option(
      '--manifest <file>',
      'the running network (default: the manifest of `interclear network`)',
      environment('MANIFEST') ?? manifestPath(path.join('.interclear', 'network')),
    )
    .action(async (id: string, options: { manifest: string }) => {
      const manifest = readManifest(options.manifest);
      const trace = await tracePayment(manifest, adminIdentity(manifest), id);
      for (const line of describeTrace(trace)) process.stdout.write(`${line}\n`);
    });
}
