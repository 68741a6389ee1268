/**
 * Real processes for end-to-end tests: `node bin/interclear.js …` spawned as a child (one PID,
 * so SIGKILL really kills the service), its output kept for waiting on a log line and for failure
 * messages, restartable with the same arguments, and stopped by {@link stopAllProcesses}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const binary = path.join(__dirname, '..', '..', 'bin', 'interclear.js');
const logLinesKept = 400;

/** A spawned `interclear` process. */
export interface ManagedProcess {
  readonly name: string;
  /** The current child's PID (undefined once it exited). */
  readonly pid: number | undefined;
  /** Whether the current child has exited. */
  readonly exited: boolean;
  /** The last lines of output (stdout and stderr) of every run, for failure messages. */
  logs(): string;
  /** A position in the output, to wait for lines printed after it. */
  mark(): number;
  /** Resolves with the first line after `since` that matches `pattern`. */
  waitForLog(pattern: RegExp, options?: { since?: number; timeoutMs?: number }): Promise<string>;
  /** Sends `signal` (default SIGKILL) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the process again with the same arguments and `env` changes (after it exited). */
  restart(env?: Record<string, string | undefined>): void;
}

const running = new Set<ManagedProcess>();

/** Spawns `interclear <args>` named `name` (the name prefixes its log lines in failure messages). */
export function spawnInterclear(
  name: string,
  args: string[],
  env: Record<string, string | undefined> = {},
): ManagedProcess {
  const lines: string[] = [];
  let lineCount = 0;
  let child: ChildProcess;
  let exit: Promise<void>;
  let exited = false;
  const lineWaiters = new Set<(line: string, index: number) => void>();
  let currentEnv = { ...env };

  const record = (line: string) => {
    lines.push(line);
    if (lines.length > logLinesKept) lines.shift();
    const index = lineCount;
    lineCount += 1;
    for (const waiter of [...lineWaiters]) waiter(line, index);
  };

  const start = () => {
    const environment: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' };
    for (const [key, value] of Object.entries(currentEnv)) {
      if (value === undefined) delete environment[key];
      else environment[key] = value;
    }
    child = spawn(process.execPath, [binary, ...args], { env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
    exited = false;
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? '';
        for (const part of parts) record(part);
      });
      stream?.on('end', () => {
        if (partial) record(partial);
        partial = '';
      });
    }
    exit = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        exited = true;
        record(`[${name} exited: ${signal ?? `code ${code}`}]`);
        resolve();
      }),
    );
  };

  const managed: ManagedProcess = {
    name,
    get pid() {
      return exited ? undefined : child.pid;
    },
    get exited() {
      return exited;
    },
    logs: () => lines.map((line) => `${name}| ${line}`).join('\n'),
    mark: () => lineCount,
    waitForLog(pattern, options = {}) {
      const since = options.since ?? 0;
      const timeoutMs = options.timeoutMs ?? 20_000;
      const first = lineCount - lines.length;
      for (let index = Math.max(since, first); index < lineCount; index += 1) {
        const line = lines[index - first];
        if (pattern.test(line)) return Promise.resolve(line);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          lineWaiters.delete(waiter);
          reject(new Error(`${name}: no log line matching ${pattern} within ${timeoutMs} ms\n${managed.logs()}`));
        }, timeoutMs);
        const waiter = (line: string, index: number) => {
          if (index < since || !pattern.test(line)) return;
          clearTimeout(timer);
          lineWaiters.delete(waiter);
          resolve(line);
        };
        lineWaiters.add(waiter);
      });
    },
    async kill(signal = 'SIGKILL') {
      if (exited) return;
      child.kill(signal);
      await exit;
    },
    restart(envChanges = {}) {
      if (!exited) throw new Error(`${name} is still running; kill it first`);
      currentEnv = { ...currentEnv, ...envChanges };
      start();
    },
  };
  start();
  running.add(managed);
  return managed;
}

/** Kills every process spawned by this test file (SIGKILL: nothing to wait for). */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...running].map((managed) => managed.kill('SIGKILL')));
  running.clear();
}

/**
 * Polls `probe` every `intervalMs` until it returns a value other than undefined (for readiness
 * checks only: wait on events wherever there is one). On timeout the error carries the last
 * failure and the logs of `processes`.
 */
export async function waitUntil<T>(
  description: string,
  probe: () => Promise<T | undefined>,
  options: { timeoutMs?: number; intervalMs?: number; processes?: ManagedProcess[] } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const logs = (options.processes ?? []).map((managed) => managed.logs()).join('\n');
      throw new Error(`timed out waiting for ${description}${lastError ? `: ${String(lastError)}` : ''}\n${logs}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}
