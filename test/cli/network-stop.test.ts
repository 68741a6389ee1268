/**
 * `interclear network` (npm start) on its embedded PostgreSQL, stopped as a supervisor and as a
 * user stop it: the services first and the database last, "stopped." and status 0; a second
 * network on the same data directory is refused with the reason instead of a bare failure.
 */
import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { interclearBinary } from '../../src/network/launcher';
import { waitUntil } from '../support/processes';
import { runInterclear } from './support';

jest.setTimeout(120_000);

/** Processes whose command line names `dataDir` (Linux /proc). */
function processesUsing(dataDir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dataDir)) found.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

function startNetwork(dataDir: string): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const environment: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info' };
  // The embedded server is the point: no database URL may stand in for it.
  delete environment.DATABASE_URL;
  delete environment.INTERCLEAR_DATABASE_URL;
  const child = spawn(
    process.execPath,
    [interclearBinary, 'network', '--data-dir', dataDir, '--base-port', '0', '--insecure', '--no-demo'],
    // A process group of its own, as a shell gives a foreground command: Ctrl-C reaches the whole group.
    { env: environment, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

let directory: string;

beforeAll(() => {
  directory = mkdtempSync(path.join(tmpdir(), 'interclear-network-stop-'));
});

afterAll(() => {
  for (const pid of processesUsing(directory)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(directory, { recursive: true, force: true });
});

/** Starts a network on `dataDir` and resolves once it serves. */
async function serving(dataDir: string): Promise<ReturnType<typeof startNetwork>> {
  const network = startNetwork(dataDir);
  let exited = false;
  void network.exited.then(() => (exited = true));
  await waitUntil(
    'the network to serve',
    async () => {
      if (exited) throw new Error(`the network exited:\n${network.output()}`);
      return network.output().includes('manifest:') ? true : undefined;
    },
    { timeoutMs: 90_000 },
  );
  return network;
}

function serviceLogs(dataDir: string): string {
  return readdirSync(path.join(dataDir, 'logs'))
    .map((file) => readFileSync(path.join(dataDir, 'logs', file), 'utf8'))
    .join('\n');
}

// The directory itself: as root, the embedded server runs as "postgres", which must reach its
// data through every parent, and the network opens up only the data's own parent.
test('SIGTERM (a supervisor) stops the services while their database is up, then the database; "stopped.", status 0', async () => {
  const network = await serving(directory);
  // While it serves, the operator commands find its services by name in its manifest: given
  // by --manifest, as the network's own hints say for a data directory of its own, or by
  // INTERCLEAR_MANIFEST.
  const manifestFile = path.join(directory, 'network.json');
  await waitUntil('the hints', async () => (network.output().includes('connector status') ? true : undefined));
  expect(network.output()).toContain(`npx interclear connector status --connector dfsp-b --manifest ${manifestFile}`);
  const account = await runInterclear(['account', 'get', 'alice', '--ledger', 'dfsp-a', '--manifest', manifestFile]);
  expect(account.code).toBe(0);
  expect(JSON.parse(account.stdout)).toMatchObject({ account: { name: 'alice', ilpAddress: 'private.dfsp-a.alice' } });
  const status = await runInterclear(['connector', 'status', '--connector', 'dfsp-b'], {
    INTERCLEAR_MANIFEST: manifestFile,
  });
  expect(status.code).toBe(0);
  expect(JSON.parse(status.stdout)).toMatchObject({ name: 'connector-b' });
  // What dfsp-b's receivers got (nothing yet: no demo payment), and one transfer they did not.
  const received = await runInterclear([
    'spsp',
    'received',
    'bob@dfsp-b',
    '--spsp',
    'dfsp-b',
    '--manifest',
    manifestFile,
  ]);
  expect(received.code).toBe(0);
  expect(JSON.parse(received.stdout)).toEqual({ payments: [], nextPageToken: '' });
  const unknown = randomUUID();
  const incoming = await runInterclear(['spsp', 'incoming', unknown, '--spsp', 'dfsp-b', '--manifest', manifestFile]);
  expect(incoming.code).toBe(1);
  expect(incoming.stderr).toContain(`no payment was received by transfer ${unknown}`);
  const badState = await runInterclear(['spsp', 'received', '--state', 'constructor', '--manifest', manifestFile]);
  expect(badState.code).toBe(2);
  expect(badState.stderr).toContain('--state: must be executed, rejected or expired');
  const logsBefore = serviceLogs(directory).length;
  network.child.kill('SIGTERM');
  expect(await network.exited).toBe(0);
  expect(network.output()).toContain('stopping the network…');
  expect(network.output()).toContain('stopped.');
  // No service lost its database on the way out.
  const stopLogs = serviceLogs(directory).slice(logsBefore);
  expect(stopLogs).toContain('stopping');
  expect(stopLogs).not.toContain('terminating connection due to administrator command');
  expect(stopLogs).not.toContain('the database system is shutting down');
  await waitUntil('no process left in the data directory', async () =>
    processesUsing(directory).length === 0 ? true : undefined,
  );
});

test('Ctrl-C (SIGINT to the whole process group) ends with "stopped.", status 0 and nothing left running; a second network on the same data is refused', async () => {
  const first = await serving(directory);

  const second = startNetwork(directory);
  expect(await second.exited).toBe(1);
  expect(second.output()).toContain('is in use (its server runs as process');
  expect(second.output()).toContain('give this one another data directory (--data-dir)');
  expect(second.output()).not.toContain('undefined');

  // The terminal sends SIGINT to every process of the foreground group, the embedded PostgreSQL
  // included (which then shuts down at once, as it does on Ctrl-C): the network still stops
  // every service and reports it.
  process.kill(-first.child.pid!, 'SIGINT');
  expect(await first.exited).toBe(0);
  expect(first.output()).toContain('stopping the network…');
  expect(first.output()).toContain('stopped.');
  await waitUntil('no process left in the data directory', async () =>
    processesUsing(directory).length === 0 ? true : undefined,
  );
});
