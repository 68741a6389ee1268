/**
 * Where the CPU goes during a phase: each process's CPU time (user + system) read from
 * /proc/<pid>/stat before and after, so that the benchmark prints CPU per operation by service.
 * Unlike a V8 profile, whose samples are wall-clock, this is time on a core — on a machine whose
 * cores are all busy, a profile counts a process's waits for a core as the work it was doing.
 * Linux only; elsewhere nothing is measured.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

interface ProcessTimes {
  /** The process's parent. */
  parent: number;
  /** CPU time in clock ticks (user + system). */
  ticks: number;
  /** The command line, arguments separated by spaces. */
  command: string;
}

let ticksPerSecond: number | undefined;

/** The kernel's clock ticks per second (USER_HZ): `getconf CLK_TCK`, 100 if that fails. */
function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

function readProcess(pid: number): ProcessTimes | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: read after its end.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    return { parent: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]), command };
  } catch {
    return undefined; // gone, or not Linux
  }
}

function readAll(): Map<number, ProcessTimes> {
  const all = new Map<number, ProcessTimes>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return all;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const times = readProcess(Number(entry));
    if (times) all.set(Number(entry), times);
  }
  return all;
}

/**
 * The PostgreSQL processes serving `databasePrefix`'s databases: the backends connected to them,
 * and the server's own background processes (WAL writer, checkpointer, …) — all of them, so the
 * figure is exact for a server of the benchmark's own and an upper bound for a shared one.
 */
function postgresProcesses(all: Map<number, ProcessTimes>, databasePrefix: string): number[] {
  // A backend's command line: "postgres: <user> <database> <host>(<port>) <state>".
  const backend = /^postgres: \S+ (\S+) (?:\S+\(\d+\)|\[local\]) /;
  const ours = (times: ProcessTimes) => backend.exec(times.command)?.[1].startsWith(databasePrefix) ?? false;
  const servers = new Set([...all.values()].filter(ours).map((times) => times.parent));
  return [...all.entries()]
    .filter(
      ([pid, times]) =>
        servers.has(pid) ||
        (servers.has(times.parent) &&
          times.command.startsWith('postgres: ') &&
          (!backend.test(times.command) || ours(times))),
    )
    .map(([pid]) => pid);
}

/** CPU milliseconds used during a window, by name. */
export interface CpuWindow {
  /** Ends the window: CPU ms per name (services by name, PostgreSQL as "postgresql"). */
  end(): Record<string, number>;
}

/**
 * Starts measuring the CPU of the services `pids` (name → pid) and of the PostgreSQL processes
 * serving databases named `databasePrefix…`. Processes started during the window count from
 * zero; processes that ended during it are missing (their time is lost).
 */
export function startCpuWindow(pids: Record<string, number | undefined>, databasePrefix: string): CpuWindow {
  const before = readAll();
  return {
    end() {
      const after = readAll();
      const tick = 1000 / clockTicksPerSecond();
      const used = (pid: number) => {
        const now = after.get(pid);
        if (!now) return 0;
        const then = before.get(pid);
        return Math.max(0, now.ticks - (then && then.command === now.command ? then.ticks : 0)) * tick;
      };
      const result: Record<string, number> = {};
      for (const [name, pid] of Object.entries(pids)) {
        if (pid !== undefined && after.has(pid)) result[name] = used(pid);
      }
      const postgres = postgresProcesses(after, databasePrefix);
      if (postgres.length > 0) result.postgresql = postgres.reduce((sum, pid) => sum + used(pid), 0);
      return result;
    },
  };
}

/** CPU milliseconds per operation (to the microsecond), by name; zero when nothing completed. */
export function perOperation(used: Record<string, number>, operations: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(used).map(([name, milliseconds]) => [
      name,
      operations > 0 ? Math.round((milliseconds / operations) * 1000) / 1000 : 0,
    ]),
  );
}
