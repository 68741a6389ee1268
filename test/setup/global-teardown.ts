import { rmSync } from 'node:fs';
import path from 'node:path';

export default async function globalTeardown(): Promise<void> {
  const database = globalThis.interclearTestDatabase;
  if (!database) return;
  await database.stop();
  rmSync(path.dirname(database.dataDir), { recursive: true, force: true });
}
