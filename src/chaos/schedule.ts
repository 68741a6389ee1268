/**
 * The fault schedule of a chaos run: which faults, on which services, at which planned times.
 * Pure and seeded: the same seed, duration and network give the same schedule, so a failing run
 * is reproduced by running its seed again. Faults never overlap: each one is healed (every
 * service serving again) before the next starts, which keeps a failure attributable to a fault.
 */
import { createRandom } from './random';

/** The faults a chaos run injects. */
export type FaultKind =
  /** SIGKILL a ledger, then start it again. */
  | 'kill-ledger'
  /** SIGKILL a connector, then start it again. */
  | 'kill-connector'
  /** SIGKILL an SPSP service, then start it again. */
  | 'kill-spsp'
  /** Stop the PostgreSQL server every service uses, then start it again. */
  | 'restart-database'
  /** Cut the TCP connections a connector or SPSP service has to a ledger it follows. */
  | 'drop-stream'
  /** SIGSTOP a connector or SPSP service for longer than a transfer's expiry, then SIGCONT it. */
  | 'pause';

/** Every fault kind, in the order the documentation lists them. */
export const faultKinds: readonly FaultKind[] = [
  'kill-ledger',
  'kill-connector',
  'kill-spsp',
  'restart-database',
  'drop-stream',
  'pause',
];

/** A notification stream that can be dropped: `follower` subscribes to `ledger`. */
export interface FollowedLedger {
  /** The following service, e.g. "dfsp-a-connector". */
  follower: string;
  /** The followed ledger's service, e.g. "central-ledger". */
  ledger: string;
}

/** The services faults can hit, by role. */
export interface FaultTargets {
  ledgers: readonly string[];
  connectors: readonly string[];
  spspServices: readonly string[];
  streams: readonly FollowedLedger[];
}

/** One planned fault. `atMs` is counted from the start of the payment traffic. */
export type PlannedFault = { index: number; atMs: number } & (
  | { kind: 'kill-ledger' | 'kill-connector' | 'kill-spsp'; service: string; downtimeMs: number }
  | { kind: 'restart-database'; downtimeMs: number }
  | ({ kind: 'drop-stream' } & FollowedLedger)
  | { kind: 'pause'; service: string; pauseMs: number }
);

/** What shapes a schedule besides the seed. */
export interface ScheduleOptions {
  seed: number;
  /** How long the payment traffic runs; faults are planned to fit in it. */
  durationMs: number;
  targets: FaultTargets;
  /** The longest a transfer of the network is held: a pause lasts longer than this. */
  longestHoldMs: number;
  /** The kinds to inject (default: all). */
  kinds?: readonly FaultKind[];
}

/** Traffic runs this long before the first fault, so that payments are in flight when it hits. */
const warmupMs = 2_000;
/** How long a killed service takes to start and serve again, for planning only. */
const restartEstimateMs = 3_000;
/** A pause outlasts the longest hold by this much, so that held transfers really expire meanwhile. */
const pauseMarginMs = 1_000;

/**
 * How long a fault takes from its start until every service serves again, as planned. The run
 * measures the real time; a fault that takes longer delays the ones after it.
 */
export function estimatedFaultMs(fault: PlannedFault): number {
  switch (fault.kind) {
    case 'kill-ledger':
    case 'kill-connector':
    case 'kill-spsp':
    case 'restart-database':
      return fault.downtimeMs + restartEstimateMs;
    case 'drop-stream':
      return 1_000;
    case 'pause':
      return fault.pauseMs;
  }
}

/**
 * Plans the faults of a run. Kinds are drawn from a shuffled bag (every kind once, in a seeded
 * order, then the bag is refilled), so that a run long enough for one of each injects every
 * kind; targets, downtimes and the gaps between faults are drawn from the same seeded sequence.
 */
export function planFaults(options: ScheduleOptions): PlannedFault[] {
  const random = createRandom(options.seed);
  const kinds = [...(options.kinds ?? faultKinds)];
  const { targets } = options;
  const available = kinds.filter((kind) => {
    if (kind === 'kill-ledger') return targets.ledgers.length > 0;
    if (kind === 'kill-connector') return targets.connectors.length > 0;
    if (kind === 'kill-spsp') return targets.spspServices.length > 0;
    if (kind === 'drop-stream') return targets.streams.length > 0;
    if (kind === 'pause') return targets.connectors.length + targets.spspServices.length > 0;
    return true;
  });
  const faults: PlannedFault[] = [];
  if (available.length === 0) return faults;
  let bag: FaultKind[] = [];
  let atMs = Math.min(warmupMs, Math.floor(options.durationMs / 10));
  // Each round adds one fault; the bound only guards against a zero-length estimate.
  for (let round = 0; round < 10_000; round += 1) {
    if (bag.length === 0) bag = random.shuffle(available);
    const kind = bag.shift()!;
    const fault = planFault(kind, faults.length, atMs);
    if (atMs + estimatedFaultMs(fault) > options.durationMs) break;
    faults.push(fault);
    atMs += estimatedFaultMs(fault) + random.integer(300, 1_500);
  }
  return faults;

  function planFault(kind: FaultKind, index: number, at: number): PlannedFault {
    switch (kind) {
      case 'kill-ledger':
        return { index, atMs: at, kind, service: random.pick(targets.ledgers), downtimeMs: random.integer(0, 1_000) };
      case 'kill-connector':
        return {
          index,
          atMs: at,
          kind,
          service: random.pick(targets.connectors),
          downtimeMs: random.integer(0, 1_000),
        };
      case 'kill-spsp':
        return {
          index,
          atMs: at,
          kind,
          service: random.pick(targets.spspServices),
          downtimeMs: random.integer(0, 1_000),
        };
      case 'restart-database':
        return { index, atMs: at, kind, downtimeMs: random.integer(200, 1_500) };
      case 'drop-stream':
        return { index, atMs: at, kind, ...random.pick(targets.streams) };
      case 'pause':
        return {
          index,
          atMs: at,
          kind,
          service: random.pick([...targets.connectors, ...targets.spspServices]),
          pauseMs: options.longestHoldMs + pauseMarginMs + random.integer(0, 1_000),
        };
    }
  }
}

/** "kill-connector dfsp-b-connector (down 400 ms)", for summaries and progress lines. */
export function describeFault(fault: PlannedFault): string {
  switch (fault.kind) {
    case 'kill-ledger':
    case 'kill-connector':
    case 'kill-spsp':
      return `${fault.kind} ${fault.service} (SIGKILL, down ${fault.downtimeMs} ms, restarted)`;
    case 'restart-database':
      return `restart-database (PostgreSQL down ${fault.downtimeMs} ms)`;
    case 'drop-stream':
      return `drop-stream ${fault.follower} → ${fault.ledger} (TCP connections cut)`;
    case 'pause':
      return `pause ${fault.service} (SIGSTOP for ${fault.pauseMs} ms)`;
  }
}
