/**
 * The PostgreSQL server under a chaos run, and its fault: a restart. An embedded server (the
 * default) is really stopped and started again on the same port and data, so every service
 * loses its connections and is refused new ones for the downtime, as in a failover. A server
 * given by URL is not ours to stop: its restart is simulated by terminating every connection to
 * the network's databases, without the downtime.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { createClient, startEmbeddedDatabase, withDatabase, type EmbeddedDatabase } from '../platform/database';

/** The database server of a chaos run. */
export interface ChaosDatabase {
  /** URL of the server's `postgres` database: the network creates its databases beside it. */
  readonly url: string;
  /** Whether {@link restart} really stops the server (embedded) or only drops connections. */
  readonly embedded: boolean;
  /** Restarts the server, down for `downtimeMs`; resolves with what was done, for the report. */
  restart(downtimeMs: number, signal?: AbortSignal): Promise<string>;
  /** Stops an embedded server (a given server is left running). */
  stop(): Promise<void>;
}

/** Starts an embedded PostgreSQL server in `dataDir` on a free port. */
export async function startChaosDatabase(dataDir: string): Promise<ChaosDatabase> {
  let server: EmbeddedDatabase | undefined = await startEmbeddedDatabase({ dataDir });
  const url = server.url;
  const port = Number(new URL(url).port);
  return {
    url,
    embedded: true,
    async restart(downtimeMs, signal) {
      const stopping = server;
      server = undefined;
      // A fast shutdown: PostgreSQL ends every session at once, as a crash or failover would.
      await stopping?.stop();
      try {
        await delay(downtimeMs, undefined, { signal });
      } finally {
        // Started again even when the run is being aborted, so that stopping the network finds it.
        server = await startEmbeddedDatabase({ dataDir, port });
      }
      return `PostgreSQL stopped (fast shutdown), down ${downtimeMs} ms, started again on port ${port}`;
    },
    async stop() {
      const stopping = server;
      server = undefined;
      await stopping?.stop();
    },
  };
}

/**
 * Uses the server at `serverUrl`. Its restart terminates the sessions of `databases()` (the
 * network's databases) and of nothing else, so other users of the server are left alone.
 */
export function useExternalDatabase(serverUrl: string, databases: () => string[]): ChaosDatabase {
  return {
    url: serverUrl,
    embedded: false,
    async restart() {
      const client = createClient(withDatabase(serverUrl, 'postgres'), 'interclear-chaos');
      await client.connect();
      try {
        const result = await client.query(
          'select pg_terminate_backend(pid) from pg_stat_activity where datname = any($1::text[]) and pid <> pg_backend_pid()',
          [databases()],
        );
        return `external PostgreSQL: ${result.rowCount ?? 0} sessions of the network's databases terminated (the server itself is not ours to stop)`;
      } finally {
        await client.end();
      }
    },
    async stop() {
      // Not ours: the databases are dropped by the run, the server stays.
    },
  };
}
