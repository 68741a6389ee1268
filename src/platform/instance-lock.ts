/**
 * The instance lock of a single-writer service (a connector, an SPSP service): a session advisory
 * lock in the service's own database, held on a connection of its own for the process's
 * lifetime. Two processes running the same service would each act on the same notifications;
 * the lock makes the second one wait and then refuse to start.
 *
 * A lock lives as long as its session. Should the connection go (PostgreSQL restarted, a proxy
 * cut it, an operator terminated the backend), the lock is taken again on a new connection,
 * waiting for the database as long as it takes (the service cannot write meanwhile either). If
 * the old session is still alive on the server (the server has not noticed the cut), it is
 * terminated first. If another process holds the lock by then, that process is acting as the
 * service: this one has lost the lock and is told so at once (`whenLost`), and must stop. A
 * heartbeat on the connection (each query with a timeout, TCP keep-alive on) notices a silent
 * loss — a connection that no longer answers — within two heartbeats.
 */
import type pg from 'pg';
import { createClient } from './database';
import type { Logger } from './logger';

/** How to take and keep an instance lock. */
export interface InstanceLockOptions {
  /** The service's database URL (advisory locks are per database). */
  url: string;
  /** The lock's key, fixed per kind of service (below 2^31). */
  key: number;
  /** What runs, for messages: "connector", "SPSP service". */
  service: string;
  /** How long a start waits for another holder to go (e.g. a killed predecessor's session). */
  timeoutMs: number;
  logger: Logger;
  /** How often the lock's connection is checked (default 5 s); it is lost when a check takes twice as long. */
  heartbeatMs?: number;
  /** How long between attempts while the lock is held elsewhere or the database is away (default 200 ms). */
  retryMs?: number;
}

/** The lock held by the one process running a service. */
export interface InstanceLock {
  /** Whether the lock is held right now (false while it is being taken again). */
  held(): boolean;
  /**
   * Calls `handler` once if the lock is lost for good (another process holds it) — at once if it
   * already was, e.g. while the service was still starting.
   */
  whenLost(handler: (error: Error) => void): void;
  release(): Promise<void>;
}

/** A server process, told apart from a later one with the same pid by its start time. */
interface Backend {
  pid: number;
  started: string;
}

/** A lock's session: the connection and its server process. */
interface Session extends Backend {
  client: pg.Client;
}

type Attempt = { session: Session } | { holder: Backend | null };

function sameBackend(a: Backend | null, b: Backend): boolean {
  return a !== null && a.pid === b.pid && a.started === b.started;
}

/** The name a lock's connection shows in pg_stat_activity, e.g. "interclear-spsp-service-lock". */
export function instanceLockApplicationName(service: string): string {
  return `interclear-${service.replace(/\W+/g, '-').toLowerCase()}-lock`;
}

/** A connection for the lock: it gives up on the server after `timeoutMs` rather than waiting on a dead socket. */
function lockClient(options: InstanceLockOptions, timeoutMs: number): pg.Client {
  const client = createClient(options.url, instanceLockApplicationName(options.service), {
    connectionTimeoutMs: 10_000,
    queryTimeoutMs: timeoutMs,
    keepAlive: true,
  });
  client.on('error', () => undefined);
  return client;
}

/** One attempt: the session that now holds the lock, or the server process that holds it. */
async function tryLock(options: InstanceLockOptions, timeoutMs: number): Promise<Attempt> {
  const client = lockClient(options, timeoutMs);
  try {
    await client.connect();
    const result = await client.query<{ locked: boolean; pid: number; started: string }>(
      `select pg_try_advisory_lock($1) as locked, pg_backend_pid() as pid,
              (select backend_start::text from pg_stat_activity where pid = pg_backend_pid()) as started`,
      [options.key],
    );
    const row = result.rows[0];
    if (row.locked) return { session: { client, pid: row.pid, started: row.started } };
    // A one-number advisory key below 2^32 is recorded as classid 0, objid key, objsubid 1.
    const holders = await client.query<{ pid: number; started: string | null }>(
      `select l.pid, a.backend_start::text as started
         from pg_locks l left join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'advisory' and l.granted and l.classid = 0 and l.objid = $1 and l.objsubid = 1
          and l.database = (select oid from pg_database where datname = current_database())`,
      [options.key],
    );
    client.end().catch(() => undefined);
    const holder = holders.rows[0];
    return { holder: holder ? { pid: holder.pid, started: holder.started ?? '' } : null };
  } catch (error) {
    client.end().catch(() => undefined);
    throw error;
  }
}

/**
 * Takes the lock, waiting up to `timeoutMs` for another holder to go, and keeps it until
 * `release`. Rejects if another process still holds it after the timeout, or if the database
 * cannot be reached.
 */
export async function acquireInstanceLock(options: InstanceLockOptions): Promise<InstanceLock> {
  const retryMs = options.retryMs ?? 200;
  const heartbeatMs = options.heartbeatMs ?? 5000;
  // Every statement on a lock connection, the heartbeat's included, gives up after this.
  const answerWithinMs = 2 * heartbeatMs;
  const pause = () => new Promise((resolve) => setTimeout(resolve, retryMs));
  const heldElsewhere = () =>
    new Error(
      `another process is running this ${options.service} (its database is locked): stop it first, or ` +
        'look for a second replica or a leftover process',
    );
  let released = false;
  let current: Session | null = null;
  let heartbeat: NodeJS.Timeout | undefined;
  let retaking: Promise<void> | undefined;
  let lostWith: Error | undefined;
  let lostHandler: ((error: Error) => void) | undefined;

  /** After a lost connection: the lock again, or null if another process holds it. */
  const retake = async (previous: Backend): Promise<Session | null> => {
    for (;;) {
      if (released) return null;
      let attempt: Attempt;
      try {
        attempt = await tryLock(options, answerWithinMs);
      } catch {
        await pause();
        continue;
      }
      if ('session' in attempt) return attempt.session;
      if (attempt.holder !== null && !sameBackend(attempt.holder, previous)) return null;
      // Our own old session, still alive on the server, or the lock freed in between: end it and try again.
      if (attempt.holder !== null) await terminate(options, previous, answerWithinMs);
      await pause();
    }
  };

  const watch = (session: Session) => {
    current = session;
    const lose = () => {
      if (current !== session || released) return;
      current = null;
      clearInterval(heartbeat);
      session.client.end().catch(() => undefined);
      // A connection that stopped answering would keep end() waiting: close its socket outright.
      (session.client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      options.logger.warn(
        { service: options.service },
        "the instance lock's connection is gone: taking the lock again",
      );
      retaking = (async () => {
        const again = await retake(session);
        if (released) {
          await again?.client.end().catch(() => undefined);
          return;
        }
        if (again) {
          options.logger.info({ service: options.service }, 'instance lock taken again');
          watch(again);
          return;
        }
        const error = heldElsewhere();
        options.logger.error({ err: error, service: options.service }, 'instance lock lost to another process');
        lostWith = error;
        lostHandler?.(error);
      })();
    };
    session.client.on('error', lose);
    session.client.on('end', lose);
    let checking = false;
    heartbeat = setInterval(() => {
      if (checking) return;
      checking = true;
      // Unanswered within two heartbeats (the client's query timeout), the connection is lost.
      session.client
        .query('select 1')
        .catch(lose)
        .finally(() => (checking = false));
    }, heartbeatMs);
    heartbeat.unref();
  };

  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const attempt = await tryLock(options, answerWithinMs);
    if ('session' in attempt) {
      watch(attempt.session);
      break;
    }
    if (Date.now() >= deadline) throw heldElsewhere();
    await pause();
  }
  return {
    held: () => current !== null,
    whenLost: (handler) => {
      lostHandler = handler;
      if (lostWith) handler(lostWith);
    },
    release: async () => {
      released = true;
      clearInterval(heartbeat);
      const session = current;
      current = null;
      await retaking;
      if (!session) return;
      await session.client.query('select pg_advisory_unlock($1)', [options.key]).catch(() => undefined);
      await session.client.end().catch(() => undefined);
    },
  };
}

/** Ends a server process of ours (the lock's old session), from a connection of its own. */
async function terminate(options: InstanceLockOptions, backend: Backend, timeoutMs: number): Promise<void> {
  const client = createClient(options.url, 'interclear-lock-cleanup', {
    connectionTimeoutMs: 10_000,
    queryTimeoutMs: timeoutMs,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    // Only that very process: a later one that got the same pid (after a restart) is left alone.
    await client.query(
      'select pg_terminate_backend(pid) from pg_stat_activity where pid = $1 and backend_start::text = $2',
      [backend.pid, backend.started],
    );
  } catch {
    // Tried again on the next attempt.
  } finally {
    await client.end().catch(() => undefined);
  }
}
