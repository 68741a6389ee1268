/**
 * The network's services as child processes of one command: each is `node bin/interclear.js …`
 * (the same binary an operator runs), its output appended to a log file, its readiness judged by
 * the standard gRPC health check, and its stop a SIGTERM (the service drains and exits) followed
 * by SIGKILL if it does not. Several services may share one child (`interclear host`, see
 * {@link ServiceHost}): the network's per-DFSP layout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { HealthCheckResponse_ServingStatus, HealthClient } from '../gen/grpc/health/v1/health';
import { identityMetadata, type ClientIdentity } from '../platform/client';
import type { HostReadyMessage, HostedServiceMessage } from '../cli/host';
import type { PlannedService } from './topology';

/** The `interclear` entry point, in a checkout or an installed package. */
export const interclearBinary = path.join(__dirname, '..', '..', 'bin', 'interclear.js');

/** How long a stopping service may drain before it is killed. */
const stopGraceMs = 10_000;

/** The last `lineCount` lines of `file` (for error messages). */
export function tailOf(file: string, lineCount = 30): string {
  if (!existsSync(file)) return '';
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  return lines.slice(-lineCount).join('\n');
}

type ExitListener = (code: number | null, signal: NodeJS.Signals | null) => void;

/**
 * One child process at a time, as the network's classes below keep it: whether it runs, its exit
 * awaited on stop (SIGTERM, then SIGKILL after a grace period), and listeners told when it exits
 * without being asked to.
 */
class ChildSlot {
  private child: ChildProcess | undefined;
  private exit: Promise<void> = Promise.resolve();
  private stopping = false;
  private readonly exitListeners = new Set<ExitListener>();

  get current(): ChildProcess | undefined {
    return this.child;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  onUnexpectedExit(listener: ExitListener): void {
    this.exitListeners.add(listener);
  }

  /** Keeps `child` (just spawned) as the current one. */
  adopt(child: ChildProcess): void {
    this.stopping = false;
    this.child = child;
    this.exit = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        if (!this.stopping) for (const listener of this.exitListeners) listener(code, signal);
        resolve();
      }),
    );
  }

  async stop(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    if (!this.running || !this.child) return;
    this.stopping = true;
    this.child.kill(signal);
    const killer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    await this.exit;
    clearTimeout(killer);
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.running) return;
    this.stopping = true;
    this.child?.kill(signal);
  }
}

/**
 * One child process running several services (`interclear host --name <name>`): the services are
 * sent to it over the IPC channel as their command lines, started in the order sent. Stopping,
 * signalling or killing it acts on all of its services at once; so does a crash.
 */
export class ServiceHost {
  private readonly process = new ChildSlot();

  constructor(
    readonly name: string,
    private readonly options: {
      /** Working directory: the configuration files are relative to it. */
      cwd: string;
      logFile: string;
      environment?: Record<string, string | undefined>;
      /** Write a V8 CPU profile (.cpuprofile) here when the process exits. */
      profileDirectory?: string;
    },
  ) {}

  get logFile(): string {
    return this.options.logFile;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get running(): boolean {
    return this.process.running;
  }

  /** Whether the running process was given service `name` (a host restarted for one service has only that one). */
  runs(name: string): boolean {
    return this.running && this.services.has(name);
  }

  onUnexpectedExit(listener: ExitListener): void {
    this.process.onUnexpectedExit(listener);
  }

  /**
   * Starts service `name` in the process (spawning the process first when it is not running; a
   * no-op when the running process has it already). `databaseUrl` travels over the IPC channel,
   * never on a command line `ps` shows.
   */
  startService(name: string, args: string[], databaseUrl: string): void {
    if (!this.running) this.spawn();
    if (this.services.has(name)) return;
    this.services.add(name);
    const message: HostedServiceMessage = { args: [...args, '--database-url', databaseUrl] };
    if (this.ready) this.send(message);
    else this.waiting.push(message);
  }

  /** Whether the child listens for services yet (it says so once it does); until then they wait here. */
  private ready = false;
  private waiting: HostedServiceMessage[] = [];
  /** The services sent to the running child. */
  private services = new Set<string>();

  private send(message: HostedServiceMessage): void {
    // A child that has just exited cannot take it; its exit is what the caller sees (the
    // service never reports SERVING, and waitUntilServing shows the log).
    this.process.current?.send(message, () => undefined);
  }

  private spawn(): void {
    this.ready = false;
    this.waiting = [];
    this.services = new Set();
    const child = spawnLogged(
      [...profilingArguments(this.options.profileDirectory, this.name), interclearBinary, 'host', '--name', this.name],
      { ...this.options, withIpc: true },
    );
    this.process.adopt(child);
    child.on('message', (message: unknown) => {
      if ((message as Partial<HostReadyMessage> | null)?.ready !== true || child !== this.process.current) return;
      this.ready = true;
      for (const waiting of this.waiting.splice(0)) this.send(waiting);
    });
  }

  /**
   * Stops every service of the process: `signal` (default SIGTERM), then SIGKILL after the grace
   * period — one per service, as they stop one after the other.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.process.stop(signal, stopGraceMs * Math.max(1, this.services.size));
  }

  signal(signal: NodeJS.Signals): void {
    this.process.signal(signal);
  }
}

/** One service of the network, as a child process of its own or as one service of a {@link ServiceHost}. */
export class ServiceProcess {
  /** The service's own process (unused when it has a host). */
  private readonly process = new ChildSlot();

  constructor(
    readonly service: PlannedService,
    private readonly options: {
      /** Working directory: the configuration files are relative to it. */
      cwd: string;
      logFile: string;
      /** The service's database URL. */
      databaseUrl: string;
      /** Who checks the service's health: the administrator (header or certificate). */
      identity: ClientIdentity;
      environment?: Record<string, string | undefined>;
      /** Write a V8 CPU profile (.cpuprofile) here when the process exits. */
      profileDirectory?: string;
      /**
       * The process shared with other services, if any: then `logFile` is the host's, and
       * stopping, signalling or killing this service acts on the host (all of its services).
       */
      host?: ServiceHost;
    },
  ) {}

  get name(): string {
    return this.service.name;
  }

  get logFile(): string {
    return this.options.host?.logFile ?? this.options.logFile;
  }

  /** The running child's PID, or undefined. */
  get pid(): number | undefined {
    if (this.options.host) return this.options.host.runs(this.name) ? this.options.host.pid : undefined;
    return this.process.pid;
  }

  get running(): boolean {
    if (this.options.host) return this.options.host.runs(this.name);
    return this.process.running;
  }

  /** Called when the child exits without being asked to stop. */
  onUnexpectedExit(listener: ExitListener): void {
    if (this.options.host) this.options.host.onUnexpectedExit(listener);
    else this.process.onUnexpectedExit(listener);
  }

  /** Spawns the child, or starts the service in its host (a no-op while it runs). */
  start(): void {
    if (this.options.host) {
      this.options.host.startService(this.name, this.service.args, this.options.databaseUrl);
      return;
    }
    if (this.running) return;
    const child = spawnLogged(
      [...profilingArguments(this.options.profileDirectory, this.name), interclearBinary, ...this.service.args],
      {
        ...this.options,
        // The URL travels in the environment, not the command line, so `ps` does not show it.
        environment: { INTERCLEAR_DATABASE_URL: this.options.databaseUrl, ...this.options.environment },
      },
    );
    this.process.adopt(child);
  }

  /**
   * Waits until the service reports SERVING on grpc.health.v1, or fails with the end of its log
   * when it exits or `timeoutMs` passes.
   */
  async waitUntilServing(timeoutMs = 60_000): Promise<void> {
    const client = new HealthClient(
      this.service.address,
      this.options.identity.credentials ?? grpc.credentials.createInsecure(),
    );
    const metadata = identityMetadata(this.options.identity);
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        if (!this.running) {
          throw new Error(
            `${this.name} exited while starting; its log (${this.logFile}) ends with:\n${tailOf(this.logFile)}`,
          );
        }
        const serving = await new Promise<boolean>((resolve) =>
          client.check({ service: '' }, metadata, { deadline: Date.now() + 1_000 }, (error, response) =>
            resolve(!error && response.status === HealthCheckResponse_ServingStatus.SERVING),
          ),
        );
        if (serving) return;
        if (Date.now() > deadline) {
          throw new Error(
            `${this.name} did not become ready within ${timeoutMs} ms; its log (${this.logFile}) ends with:\n${tailOf(this.logFile)}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    } finally {
      client.close();
    }
  }

  /** Stops the child: `signal` (default SIGTERM), then SIGKILL after the grace period. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.options.host) return this.options.host.stop(signal);
    await this.process.stop(signal, stopGraceMs);
  }

  /** Sends `signal` to the child without waiting (e.g. while this process itself exits). */
  signal(signal: NodeJS.Signals): void {
    if (this.options.host) return this.options.host.signal(signal);
    this.process.signal(signal);
  }

  /** Kills the child at once, as a crash would (tests of failures). */
  async kill(): Promise<void> {
    await this.stop('SIGKILL');
  }
}

function profilingArguments(directory: string | undefined, name: string): string[] {
  return directory ? ['--cpu-prof', `--cpu-prof-dir=${directory}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
}

/** Spawns `node <args>` in `cwd`, its output appended to `logFile`. */
function spawnLogged(
  args: string[],
  options: { cwd: string; logFile: string; environment?: Record<string, string | undefined>; withIpc?: boolean },
): ChildProcess {
  const log = openSync(options.logFile, 'a');
  try {
    const environment: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' };
    for (const [key, value] of Object.entries(options.environment ?? {})) {
      if (value === undefined) delete environment[key];
      else environment[key] = value;
    }
    return spawn(process.execPath, args, {
      cwd: options.cwd,
      env: environment,
      stdio: options.withIpc ? ['ignore', log, log, 'ipc'] : ['ignore', log, log],
    });
  } finally {
    closeSync(log);
  }
}
