/**
 * One PostgreSQL for the whole test run: the server at DATABASE_URL when set, otherwise an
 * embedded one in a temporary directory. Each test file creates its own databases on it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/platform/database';

declare global {
  var interclearTestDatabase: EmbeddedDatabase | undefined;
}

export default async function globalSetup(): Promise<void> {
  if (process.env.DATABASE_URL) {
    process.env.INTERCLEAR_TEST_DATABASE_URL = process.env.DATABASE_URL;
    return;
  }
  const dataDir = path.join(mkdtempSync(path.join(tmpdir(), 'interclear-test-')), 'pg');
  const database = await startEmbeddedDatabase({ dataDir });
  globalThis.interclearTestDatabase = database;
  process.env.INTERCLEAR_TEST_DATABASE_URL = database.url;
}
