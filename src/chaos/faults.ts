/**
 * Injecting the planned faults into a running network, one at a time, and healing after each:
 * a fault is over when every service serves again (grpc.health.v1 SERVING), which for a
 * connector means both its ledger streams are back and for an SPSP service its ledger stream.
 * Every wait has a deadline; a service that does not recover in time is a finding, not a hang.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { RunningNetwork } from '../network/network';
import type { ChaosDatabase } from './database';
import type { FaultTargets, FollowedLedger, PlannedFault } from './schedule';
import { dropConnections } from './sockets';

/** " (the process of a, b and c)" when a fault's process runs several services, else nothing. */
function describeSharing(services: string[]): string {
  return services.length < 2 ? '' : ` (the process of ${listOf(services)})`;
}

/** "a, b and c". */
function listOf(names: string[]): string {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/** The network's services grouped by the process they run in (each group in plan order). */
export function servicesByProcess(network: Pick<RunningNetwork, 'plan' | 'service'>): string[][] {
  const groups = new Map<number | string, string[]>();
  for (const service of network.plan.services) {
    const key = network.service(service.name).pid ?? service.name;
    groups.set(key, [...(groups.get(key) ?? []), service.name]);
  }
  return [...groups.values()];
}

/** How long a service may take to serve again after a fault. */
export const recoveryTimeoutMs = 60_000;

/** A fault as it happened. */
export interface FaultRecord {
  fault: PlannedFault;
  /** Epoch milliseconds. */
  startedAt: number;
  /** When every service served again (epoch milliseconds). */
  healedAt: number;
  /** What was done, e.g. "2 connections cut". */
  detail: string;
  /** Why the fault could not be injected or healed, if so. */
  error?: string;
}

/** The services of a network that faults can hit, from its plan. */
export function faultTargetsOf(network: RunningNetwork): FaultTargets {
  const { services } = network.plan;
  const ledgerByAddress = new Map(
    services.filter((service) => service.kind === 'ledger').map((service) => [service.address, service.name]),
  );
  const streams: FollowedLedger[] = [];
  for (const service of services) {
    const content = service.config?.content as { ledgers?: Array<{ address?: string }>; ledger?: string } | undefined;
    // A connector follows each of its ledgers; an SPSP service follows its DFSP's ledger.
    const addresses =
      service.kind === 'connector'
        ? (content?.ledgers ?? []).map((ledger) => ledger.address)
        : service.kind === 'spsp'
          ? [content?.ledger]
          : [];
    for (const address of addresses) {
      const ledger = address === undefined ? undefined : ledgerByAddress.get(address);
      if (ledger) streams.push({ follower: service.name, ledger });
    }
  }
  const named = (kind: string) => services.filter((service) => service.kind === kind).map((service) => service.name);
  return { ledgers: named('ledger'), connectors: named('connector'), spspServices: named('spsp'), streams };
}

/** Injects faults into `network`, whose database server is `database`. */
export class FaultInjector {
  /** Services SIGSTOPped right now, resumed by {@link resumeAll} whatever happens. */
  private readonly paused = new Set<number>();

  constructor(
    private readonly network: RunningNetwork,
    private readonly database: ChaosDatabase,
  ) {}

  /** Injects `fault` and heals it; resolves with its record (never rejects). */
  async inject(fault: PlannedFault, signal: AbortSignal): Promise<FaultRecord> {
    const startedAt = Date.now();
    let detail = '';
    let error: string | undefined;
    try {
      detail = await this.apply(fault, signal);
    } catch (failure) {
      error = `the fault could not be injected: ${(failure as Error).message}`;
    }
    try {
      await this.healAll();
    } catch (failure) {
      error = error ?? (failure as Error).message;
    }
    return { fault, startedAt, healedAt: Date.now(), detail, ...(error ? { error } : {}) };
  }

  /** Resumes every paused service (called however the run ends). */
  resumeAll(): void {
    for (const pid of this.paused) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Already gone.
      }
    }
    this.paused.clear();
  }

  /** Starts any service that is not running and waits until every service serves. */
  async healAll(): Promise<void> {
    const failures: string[] = [];
    this.startStopped();
    await Promise.all(
      this.network.plan.services.map(async (service) => {
        const child = this.network.service(service.name);
        try {
          await child.waitUntilServing(recoveryTimeoutMs);
        } catch (failure) {
          failures.push(`${service.name} did not serve again: ${(failure as Error).message.split('\n')[0]}`);
        }
      }),
    );
    if (failures.length > 0) throw new Error(failures.join('; '));
  }

  /** The services running in the same process as `name` (itself included), in plan order. */
  private sharingProcessWith(name: string): string[] {
    return servicesByProcess(this.network).find((group) => group.includes(name)) ?? [name];
  }

  /** Starts every service that is not running, ledgers first, then connectors, then SPSP services. */
  private startStopped(): void {
    for (const kind of ['ledger', 'connector', 'spsp'] as const) {
      for (const service of this.network.plan.services) {
        const child = this.network.service(service.name);
        if (service.kind === kind && !child.running) child.start();
      }
    }
  }

  private async apply(fault: PlannedFault, signal: AbortSignal): Promise<string> {
    switch (fault.kind) {
      case 'kill-ledger':
      case 'kill-connector':
      case 'kill-spsp': {
        const service = this.network.service(fault.service);
        const pid = service.pid;
        const sharing = this.sharingProcessWith(fault.service);
        await service.kill();
        await delay(fault.downtimeMs, undefined, { signal });
        // Everything the kill took down comes back, in the network's start order (ledgers,
        // then connectors, then SPSP services) — with a process per DFSP, all three services.
        this.startStopped();
        return `SIGKILL pid ${pid}${describeSharing(sharing)}, restarted after ${fault.downtimeMs} ms`;
      }
      case 'restart-database':
        return this.database.restart(fault.downtimeMs, signal);
      case 'drop-stream':
        return this.dropStream(fault);
      case 'pause': {
        const pid = this.network.service(fault.service).pid;
        if (pid === undefined) throw new Error(`${fault.service} is not running`);
        const sharing = this.sharingProcessWith(fault.service);
        process.kill(pid, 'SIGSTOP');
        this.paused.add(pid);
        try {
          await delay(fault.pauseMs, undefined, { signal });
        } finally {
          process.kill(pid, 'SIGCONT');
          this.paused.delete(pid);
        }
        return `SIGSTOP pid ${pid}${describeSharing(sharing)} for ${fault.pauseMs} ms, then SIGCONT`;
      }
    }
  }

  /**
   * Cuts the follower's TCP connections to the ledger. Where the kernel does not let us, the
   * ledger is restarted gracefully instead, which ends its streams from the other side.
   */
  private async dropStream(stream: FollowedLedger): Promise<string> {
    const follower = this.network.service(stream.follower);
    const ledger = this.network.service(stream.ledger);
    const pid = follower.pid;
    if (pid === undefined) throw new Error(`${stream.follower} is not running`);
    const port = Number(ledger.service.address.slice(ledger.service.address.lastIndexOf(':') + 1));
    const result = await dropConnections(pid, port);
    if (result.kind === 'dropped') {
      // The cut is by process: in a process shared with other services, their connections to
      // the same ledger go too (a DFSP's SPSP service's, when its connector's are cut).
      const sharing = this.sharingProcessWith(stream.follower);
      const whose =
        sharing.length > 1 ? `: every connection to ${stream.ledger} from the process of ${listOf(sharing)}` : '';
      return `${result.connections} TCP connection(s) cut${whose}`;
    }
    const sharing = this.sharingProcessWith(stream.ledger);
    await ledger.stop();
    this.startStopped();
    return `${result.reason}; instead ${stream.ledger} was restarted gracefully (SIGTERM)${describeSharing(sharing)}, ending its streams`;
  }
}
