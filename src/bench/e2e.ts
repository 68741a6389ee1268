/**
 * The end-to-end phase: complete cross-ledger payments through the full network (three
 * ledgers, two connectors, two SPSP services, all real processes over mTLS), alice at DFSP A
 * paying bob at DFSP B through DFSP A's PaymentService, from many concurrent callers.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PaymentState } from '../gen/interclear/spsp/v1/spsp';
import { startNetwork, type ProcessLayout, type RunningNetwork } from '../network/network';
import { createPool, dropDatabase } from '../platform/database';
import { createPaymentClient } from '../spsp/client';
import { perOperation, startCpuWindow } from './cpu';
import { verifyLedger } from './ledger';
import { LatencyRecorder, type PhaseResult } from './measure';
import { Pacer } from './pacing';

/** Options of {@link runEndToEndPhase}. */
export interface EndToEndOptions {
  /** The PostgreSQL server (any database); the network's databases are created and dropped. */
  serverUrl: string;
  durationMs: number;
  concurrency: number;
  /**
   * Pace the payments (open loop): the n-th starts at n / rate seconds, on the first free payer,
   * whatever happened before. Undefined: every payer pays again as soon as its payment is final.
   */
  rate?: number;
  /** What bob receives per payment, in XOF. */
  destinationAmount?: bigint;
  onProgress?: (done: number) => void;
  /** Write a CPU profile of every network process here. */
  profileDirectory?: string;
  /** How the network's services map to processes (default per-service). */
  processes?: ProcessLayout;
}

/** Runs payments flat out for `durationMs`; returns payments per second and latencies. */
export async function runEndToEndPhase(options: EndToEndOptions): Promise<PhaseResult> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'interclear-bench-network-'));
  const databasePrefix = 'bench_e2e_';
  const network = await startNetwork({
    dataDir,
    basePort: 0,
    databaseUrl: options.serverUrl,
    databasePrefix,
    environment: { LOG_LEVEL: 'warn' },
    profileDirectory: options.profileDirectory,
    processes: options.processes,
  });
  const identity = await network.identityFor(network.manifest.adminPrincipal);
  const clients = Array.from({ length: 4 }, () => createPaymentClient(network.manifest.dfsps[0].spsp, identity));
  try {
    const latency = new LatencyRecorder();
    let errors = 0;
    let rejected = 0;
    const cpu = startCpuWindow({ ...networkProcesses(network), 'load generator': process.pid }, databasePrefix);
    const startedAt = Date.now();
    const deadline = startedAt + options.durationMs;
    const pacer = options.rate ? new Pacer(startedAt, deadline, options.rate) : undefined;
    await Promise.all(
      Array.from({ length: options.concurrency }, async (_, worker) => {
        const client = clients[worker % clients.length];
        while (Date.now() < deadline) {
          const lateMs = pacer ? await pacer.next() : 0;
          if (lateMs === null) break;
          const begun = Pacer.startedAt(lateMs);
          try {
            const { payment } = await client.pay(
              {
                paymentId: randomUUID(),
                senderAccount: 'alice',
                receiver: 'bob@dfsp-b',
                amount: { $case: 'destinationAmount', value: options.destinationAmount ?? 100n },
                data: Buffer.alloc(0),
              },
              { timeoutMs: 60_000 },
            );
            if (payment?.state === PaymentState.PAYMENT_STATE_EXECUTED) {
              latency.record(begun);
              options.onProgress?.(latency.count);
            } else rejected += 1;
          } catch {
            errors += 1;
          }
        }
      }),
    );
    const elapsedMs = Date.now() - startedAt;
    const cpuMsPerOperation = perOperation(cpu.end(), latency.count);
    // Every ledger settles: no transfer left prepared (bounded wait past the longest hold).
    const ledgerUrls = network.manifest.ledgers.map((ledger) => network.databaseUrl(`${ledger.name}-ledger`));
    const settleDeadline = Date.now() + 30_000;
    let checks = { conservation: true, allFinal: false };
    while (Date.now() < settleDeadline) {
      const results = await Promise.all(ledgerUrls.map((url) => verifyLedger(url)));
      checks = {
        conservation: results.every((result) => result.conservation),
        allFinal: results.every((result) => result.allFinal),
      };
      if (checks.allFinal || !checks.conservation) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    // The sender's ledger agrees with what the callers saw: one executed transfer per payment.
    const senderPool = createPool(network.databaseUrl('dfsp-a-ledger'), { size: 1 });
    try {
      const executed = await senderPool.query<{ count: bigint }>(
        "select count(*) as count from transfers where state = 'executed' and debit_account = 'alice'",
      );
      if (Number(executed.rows[0].count) < latency.count) checks.allFinal = false;
    } finally {
      await senderPool.end();
    }
    return { ...latency.summary(elapsedMs), errors: errors + rejected, checks, cpuMsPerOperation };
  } finally {
    for (const client of clients) client.close();
    await network.stop();
    for (const service of network.plan.services) {
      await dropDatabase(options.serverUrl, service.database).catch(() => undefined);
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Each process of the network by name: a service's name, or for services sharing a process
 * (per-dfsp layout) their DFSP's name, e.g. "dfsp-a", so that no process is counted twice.
 */
function networkProcesses(network: RunningNetwork): Record<string, number | undefined> {
  const byPid = new Map<number | undefined, string[]>();
  for (const service of network.plan.services) {
    const pid = network.service(service.name).pid;
    byPid.set(pid, [...(byPid.get(pid) ?? []), service.name]);
  }
  const processes: Record<string, number | undefined> = {};
  for (const [pid, names] of byPid) {
    const dfsp = network.plan.services.find((service) => service.name === names[0])?.dfsp;
    processes[names.length > 1 && dfsp ? dfsp : names[0]] = pid;
  }
  return processes;
}
