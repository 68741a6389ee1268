/** A fresh database per test file (or per ledger) on the test run's PostgreSQL server. */
import { randomBytes } from 'node:crypto';
import { createClient, dropDatabase, ensureDatabase, withDatabase } from '../../src/platform/database';

/** URL of the test run's server (see test/setup/global-setup.ts). */
export function testServerUrl(): string {
  const url = process.env.INTERCLEAR_TEST_DATABASE_URL;
  if (!url) throw new Error('INTERCLEAR_TEST_DATABASE_URL is not set: run the tests through jest (npm test)');
  return url;
}

/** Creates an empty database with a unique name and returns its URL and a drop function. */
export async function createTestDatabase(label: string): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `test_${label.replace(/[^a-z0-9_]/g, '_')}_${randomBytes(4).toString('hex')}`;
  const server = testServerUrl();
  await ensureDatabase(server, name);
  return { url: withDatabase(server, name), name, drop: () => dropDatabase(server, name) };
}

/** The server processes (and their application names) holding advisory lock `key` in the database at `url`. */
export async function advisoryLockHolders(
  url: string,
  key: number,
): Promise<Array<{ pid: number; application: string }>> {
  const client = createClient(url, 'test-lock-holders');
  await client.connect();
  try {
    const result = await client.query<{ pid: number; application: string }>(
      `select l.pid, a.application_name as application
         from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'advisory' and l.granted and l.objid = $1
          and l.database = (select oid from pg_database where datname = current_database())`,
      [key],
    );
    return result.rows;
  } finally {
    await client.end();
  }
}
