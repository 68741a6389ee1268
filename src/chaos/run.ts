/**
 * A chaos run (`interclear chaos`): start the whole network as separate processes, send a steady
 * stream of payments through it, inject the seeded fault schedule meanwhile, wait for the network
 * to come to rest, and audit it (audit.ts). Every wait has a deadline, so a run always ends; a
 * run that finds anything wrong says what, and its seed reproduces its faults.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startNetwork, type ProcessLayout, type RunningNetwork } from '../network/network';
import { adminIdentity } from '../network/payment';
import type { NetworkTiming } from '../network/topology';
import { dropDatabase } from '../platform/database';
import { auditNetwork, NetworkDatabases, waitForRest, type AuditResult, type Violation } from './audit';
import { startChaosDatabase, useExternalDatabase, type ChaosDatabase } from './database';
import { FaultInjector, faultTargetsOf, servicesByProcess, type FaultRecord } from './faults';
import { planFaults, type FaultKind, type PlannedFault } from './schedule';
import { PaymentTraffic, type TrafficCounts } from './traffic';

/**
 * Hold times of a chaos network: short holds, so that a short run sees payments expire and the
 * pause fault outlasts them quickly, but the standard one-second message window, so that a
 * connector under a loaded machine's scheduling still passes fulfillments back in time.
 */
export const chaosTiming: NetworkTiming = {
  destinationHoldMs: 2_000,
  messageWindowMs: 1_000,
  connectorMaxHoldMs: 6_000,
  ledgerMaxHoldMs: 30_000,
};

/**
 * How long the network has to come to rest after the traffic: an SPSP service killed in the
 * middle of a payment's setup marks that payment failed 60 s after its last change (its
 * abandonment rule), so this leaves that and a margin.
 */
export const defaultSettleTimeoutMs = 75_000;

/** How to run. */
export interface ChaosOptions {
  /** How long payments are sent (faults are planned within it). */
  durationMs: number;
  /** Seeds the fault schedule (0 to 2^32 − 1). */
  seed: number;
  /** Payments started per second. */
  ratePerSecond: number;
  /** Configuration, logs, manifest and (embedded) database of the network. */
  dataDir: string;
  /** A PostgreSQL server to use instead of an embedded one (its restart is then simulated). */
  databaseUrl?: string;
  /** At most this many payments in flight (default 32). */
  maximumInFlight?: number;
  /** How long to wait for the network to come to rest after the traffic. */
  settleTimeoutMs?: number;
  /** The fault kinds to inject (default all). */
  kinds?: readonly FaultKind[];
  timing?: Partial<NetworkTiming>;
  /** Extra environment of the services (e.g. LOG_LEVEL). */
  environment?: Record<string, string | undefined>;
  /**
   * How the services map to processes (default "per-service"). With "per-dfsp" a DFSP's ledger,
   * connector and SPSP service share one process, so killing or pausing any of them hits all
   * three at once — the failure that layout adds.
   */
  processes?: ProcessLayout;
  /** Progress for people (see {@link ChaosProgress}). */
  onProgress?: (event: ChaosProgress) => void;
  /** Aborts the run early (Ctrl-C): the network is stopped, the report says so. */
  signal?: AbortSignal;
}

/** What a run reports as it goes. */
export type ChaosProgress =
  | { kind: 'step'; message: string }
  | { kind: 'network'; dataDir: string; manifestFile: string }
  | { kind: 'schedule'; faults: PlannedFault[] }
  | { kind: 'fault-started'; fault: PlannedFault; elapsedMs: number }
  | { kind: 'fault-healed'; record: FaultRecord; elapsedMs: number }
  | { kind: 'traffic'; elapsedMs: number; counts: TrafficCounts }
  /** Still waiting for rest: what is open, by service, `elapsedMs` after the traffic stopped. */
  | { kind: 'settling'; elapsedMs: number; open: Record<string, number> }
  | { kind: 'violation'; violation: Violation };

/** The result of a run. */
export interface ChaosReport {
  seed: number;
  durationMs: number;
  ratePerSecond: number;
  /** From the network's start to the end of the audit. */
  elapsedMs: number;
  /** How long the network took to come to rest after the traffic stopped. */
  settleMs: number;
  dataDir: string;
  /** Whether PostgreSQL restarts were real (embedded server) or simulated (given server). */
  databaseRestartsReal: boolean;
  /** How the services mapped to processes. */
  processes: ProcessLayout;
  planned: PlannedFault[];
  faults: Array<FaultRecord & { startedAtMs: number; healedAtMs: number }>;
  traffic: TrafficCounts;
  /** The payments' final states, as recorded by the SPSP services. */
  payments: AuditResult['payments'] & { sent: number; payCalls: number };
  ledgers: AuditResult['ledgers'];
  losses: AuditResult['losses'];
  violations: Violation[];
  aborted: boolean;
}

/** Runs the chaos test; resolves with its report (violations included, never thrown). */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const progress = options.onProgress ?? (() => undefined);
  const signal = options.signal ?? new AbortController().signal;
  const runStartedAt = Date.now();
  const timing = { ...chaosTiming, ...options.timing };
  const dataDir = path.resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const violations: Violation[] = [];
  const violate = (violation: Violation) => {
    violations.push(violation);
    progress({ kind: 'violation', violation });
  };

  // One database name prefix per run, so that runs on a shared server never meet.
  const databasePrefix = `chaos_${randomBytes(3).toString('hex')}_`;
  let network: RunningNetwork | undefined;
  progress({ kind: 'step', message: 'starting PostgreSQL' });
  const database: ChaosDatabase = options.databaseUrl
    ? useExternalDatabase(options.databaseUrl, () => network?.plan.services.map((service) => service.database) ?? [])
    : await startChaosDatabase(path.join(dataDir, 'postgres'));
  let injector: FaultInjector | undefined;
  let traffic: PaymentTraffic | undefined;
  // Should the process exit mid-run (Ctrl-C ends it through the embedded database's signal
  // handler), a frozen service must not stay frozen: it could not even stop.
  const resumeOnExit = () => injector?.resumeAll();
  process.on('exit', resumeOnExit);
  const databases = { current: undefined as NetworkDatabases | undefined };
  try {
    network = await startNetwork({
      dataDir,
      basePort: 0,
      databaseUrl: database.url,
      databasePrefix,
      timing,
      environment: options.environment,
      processes: options.processes,
      progress: async (step, done) => {
        progress({ kind: 'step', message: step });
        await done;
      },
    });
    progress({ kind: 'network', dataDir, manifestFile: network.manifestFile });
    const running = network;
    // A process that exits on its own (not killed by a fault) has crashed: a finding, once per
    // process (a DFSP's host runs three services).
    for (const names of servicesByProcess(running)) {
      const first = running.service(names[0]);
      first.onUnexpectedExit((code, exitSignal) =>
        violate({
          kind: 'PROCESS_EXITED',
          message: `${names.join(', ')} exited by itself (${exitSignal ?? `code ${code}`}); see ${first.logFile}`,
        }),
      );
    }

    const planned = planFaults({
      seed: options.seed,
      durationMs: options.durationMs,
      targets: faultTargetsOf(running),
      longestHoldMs: timing.destinationHoldMs + 2 * timing.messageWindowMs,
      kinds: options.kinds,
    });
    progress({ kind: 'schedule', faults: planned });

    const identity = adminIdentity(running.manifest);
    injector = new FaultInjector(running, database);
    const payments = new PaymentTraffic({
      manifest: running.manifest,
      identity,
      ratePerSecond: options.ratePerSecond,
      maximumInFlight: options.maximumInFlight ?? 32,
    });
    traffic = payments;
    const trafficStartedAt = Date.now();
    const elapsed = () => Date.now() - trafficStartedAt;
    payments.start();
    const ticker = setInterval(
      () => progress({ kind: 'traffic', elapsedMs: elapsed(), counts: payments.counts() }),
      1_000,
    );
    const records: FaultRecord[] = [];
    try {
      for (const fault of planned) {
        const waitMs = fault.atMs - elapsed();
        if (waitMs > 0) await delay(waitMs, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) break;
        progress({ kind: 'fault-started', fault, elapsedMs: elapsed() });
        const record = await injector.inject(fault, signal);
        records.push(record);
        progress({ kind: 'fault-healed', record, elapsedMs: elapsed() });
        // An interrupted run cuts its fault short: that is not the service failing to recover.
        if (record.error && !signal.aborted) {
          violate({ kind: 'SERVICE_NOT_RECOVERED', message: `fault #${fault.index + 1}: ${record.error}` });
        }
      }
      const remainingMs = options.durationMs - elapsed();
      if (remainingMs > 0) await delay(remainingMs, undefined, { signal }).catch(() => undefined);
    } finally {
      clearInterval(ticker);
      payments.stopSending();
    }

    const emptyAudit: AuditResult = {
      violations: [],
      losses: [],
      payments: { executed: 0, rejected: 0, expired: 0, failed: 0, notRecorded: 0, reasons: {} },
      ledgers: {},
    };
    const report = (audit: AuditResult, settleMs: number): ChaosReport => ({
      seed: options.seed,
      durationMs: options.durationMs,
      ratePerSecond: options.ratePerSecond,
      elapsedMs: Date.now() - runStartedAt,
      settleMs,
      dataDir,
      databaseRestartsReal: database.embedded,
      processes: options.processes ?? 'per-service',
      planned,
      faults: records.map((record) => ({
        ...record,
        startedAtMs: record.startedAt - trafficStartedAt,
        healedAtMs: record.healedAt - trafficStartedAt,
      })),
      traffic: payments.counts(),
      payments: {
        ...audit.payments,
        sent: payments.payments.length,
        payCalls: payments.payments.reduce((sum, payment) => sum + payment.calls, 0),
      },
      ledgers: audit.ledgers,
      losses: audit.losses,
      violations,
      aborted: signal.aborted,
    });
    // Interrupted: no waiting and no audit, the network is stopped at once.
    if (signal.aborted) return report(emptyAudit, 0);

    // Rest: the payments in flight answer, then nothing is left moving on any service.
    const settleStartedAt = Date.now();
    const settleDeadline = settleStartedAt + (options.settleTimeoutMs ?? defaultSettleTimeoutMs);
    progress({ kind: 'step', message: 'waiting for every payment to be final' });
    await payments.settle(settleDeadline);
    databases.current = new NetworkDatabases(running);
    const open = await waitForRest(running, databases.current, settleDeadline, {
      signal,
      onWaiting: (waiting) => progress({ kind: 'settling', elapsedMs: Date.now() - settleStartedAt, open: waiting }),
    });
    const settleMs = Date.now() - settleStartedAt;
    for (const [service, count] of Object.entries(open)) {
      violate({
        kind: 'PAYMENT_NOT_FINAL',
        message: `${service}: ${count} transfer(s) or payment(s) still open ${Math.round(settleMs / 1000)} s after the traffic stopped`,
      });
    }

    progress({ kind: 'step', message: 'auditing every ledger, connector and payment' });
    let audit: AuditResult;
    try {
      audit = await auditNetwork({
        network: running,
        databases: databases.current,
        identity,
        payments: payments.payments,
        faults: records,
      });
    } catch (error) {
      audit = {
        ...emptyAudit,
        violations: [{ kind: 'AUDIT_FAILED', message: `the audit could not complete: ${(error as Error).message}` }],
      };
    }
    // A payment left open shows twice: per service above, and per payment in the audit.
    for (const violation of audit.violations) violate(violation);
    return report(audit, settleMs);
  } finally {
    process.off('exit', resumeOnExit);
    injector?.resumeAll();
    traffic?.close();
    await databases.current?.close();
    await network?.stop();
    if (!database.embedded && network) {
      for (const service of network.plan.services) {
        await dropDatabase(database.url, service.database).catch(() => undefined);
      }
    }
    await database.stop();
  }
}
