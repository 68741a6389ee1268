/**
 * The network's services as child processes of one command: each is `node bin/interclear.js …`
 * (the same binary an operator runs), its output appended to a log file, its readiness judged by
 * the standard gRPC health check, and its stop a SIGTERM (the service drains and exits) followed
 * by SIGKILL if it does not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { HealthCheckResponse_ServingStatus, HealthClient } from '../gen/grpc/health/v1/health';
import { identityMetadata, type ClientIdentity } from '../platform/client';
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

/** One service of the network, as a child process. */
export class ServiceProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<void> = Promise.resolve();
  private stopping = false;
  private exitListeners = new Set<(code: number | null, signal: NodeJS.Signals | null) => void>();

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
    },
  ) {}

  get name(): string {
    return this.service.name;
  }

  get logFile(): string {
    return this.options.logFile;
  }

  /** The running child's PID, or undefined. */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Called when the child exits without being asked to stop. */
  onUnexpectedExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.exitListeners.add(listener);
  }

  /** Spawns the child (a no-op while it runs). */
  start(): void {
    if (this.running) return;
    this.stopping = false;
    const log = openSync(this.options.logFile, 'a');
    try {
      const environment: NodeJS.ProcessEnv = {
        ...process.env,
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
        // The URL travels in the environment, not the command line, so `ps` does not show it.
        INTERCLEAR_DATABASE_URL: this.options.databaseUrl,
      };
      for (const [key, value] of Object.entries(this.options.environment ?? {})) {
        if (value === undefined) delete environment[key];
        else environment[key] = value;
      }
      const profiling = this.options.profileDirectory
        ? ['--cpu-prof', `--cpu-prof-dir=${this.options.profileDirectory}`, `--cpu-prof-name=${this.name}.cpuprofile`]
        : [];
      const child = spawn(process.execPath, [...profiling, interclearBinary, ...this.service.args], {
        cwd: this.options.cwd,
        env: environment,
        stdio: ['ignore', log, log],
      });
      this.child = child;
      this.exit = new Promise((resolve) =>
        child.once('exit', (code, signal) => {
          if (!this.stopping) for (const listener of this.exitListeners) listener(code, signal);
          resolve();
        }),
      );
    } finally {
      closeSync(log);
    }
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
    if (!this.running || !this.child) return;
    this.stopping = true;
    this.child.kill(signal);
    const killer = setTimeout(() => this.child?.kill('SIGKILL'), stopGraceMs);
    await this.exit;
    clearTimeout(killer);
  }

  /** Sends `signal` to the child without waiting (e.g. while this process itself exits). */
  signal(signal: NodeJS.Signals): void {
    if (!this.running) return;
    this.stopping = true;
    this.child?.kill(signal);
  }

  /** Kills the child at once, as a crash would (tests of failures). */
  async kill(): Promise<void> {
    await this.stop('SIGKILL');
  }
}
