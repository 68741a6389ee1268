/**
 * The instance lock of a single-writer service, against the test run's PostgreSQL: one holder at
 * a time, the lock taken again when its connection goes, and a holder told when another process
 * has taken it meanwhile.
 */
import net from 'node:net';
import { createClient } from '../../src/platform/database';
import { acquireInstanceLock, instanceLockApplicationName, type InstanceLock } from '../../src/platform/instance-lock';
import { silentLogger } from '../../src/platform/logger';
import { advisoryLockHolders, createTestDatabase } from '../support/database';
import { waitUntil } from '../support/processes';

jest.setTimeout(30_000);

const key = 0x1c7e57;
let database: { url: string; drop(): Promise<void> };
const locks: InstanceLock[] = [];

beforeAll(async () => {
  database = await createTestDatabase('instance_lock');
});

afterEach(async () => {
  for (const lock of locks.splice(0)) await lock.release();
});

afterAll(() => database.drop());

async function take(options: { timeoutMs?: number; onLost?: (error: Error) => void; url?: string } = {}) {
  const lock = await acquireInstanceLock({
    url: options.url ?? database.url,
    key,
    service: 'test service',
    timeoutMs: options.timeoutMs ?? 300,
    logger: silentLogger,
    heartbeatMs: 100,
    retryMs: 50,
  });
  if (options.onLost) lock.whenLost(options.onLost);
  locks.push(lock);
  return lock;
}

/** The server processes holding the test key's advisory lock. */
const holders = () => advisoryLockHolders(database.url, key);

/** Runs `sql` on a connection of its own (kept open when `keep` is set, e.g. to hold a lock). */
async function run(sql: string, parameters: unknown[], keep = false) {
  const client = createClient(database.url, 'instance-lock-test');
  await client.connect();
  await client.query(sql, parameters);
  if (!keep) await client.end();
  return client;
}

test('a second process waits for the holder, then refuses with the reason; the lock is free once released', async () => {
  const first = await take();
  const started = Date.now();
  await expect(take({ timeoutMs: 400 })).rejects.toThrow(
    'another process is running this test service (its database is locked)',
  );
  expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  expect(await holders()).toEqual([
    { pid: expect.any(Number), application: instanceLockApplicationName('test service') },
  ]);

  await first.release();
  locks.splice(locks.indexOf(first), 1);
  expect(await holders()).toEqual([]);
  const second = await take();
  expect(second.held()).toBe(true);
});

test('a start waits for a holder that goes within the timeout', async () => {
  const other = await run('select pg_advisory_lock($1)', [key], true);
  setTimeout(() => void other.end(), 300);
  const lock = await take({ timeoutMs: 5_000 });
  expect(lock.held()).toBe(true);
});

test('a start fails with the database error when the database cannot be reached', async () => {
  const unreachable = new URL(database.url);
  unreachable.port = '1';
  await expect(take({ url: unreachable.toString() })).rejects.toThrow(/ECONNREFUSED/);
});

test('when its connection goes, the lock is taken again on a new one and nothing is reported lost', async () => {
  const lost = jest.fn();
  const lock = await take({ onLost: lost });
  const [before] = await holders();
  await run('select pg_terminate_backend($1)', [before.pid]);
  const after = await waitUntil(
    'the lock held by a new session',
    async () => {
      const now = await holders();
      return now.length === 1 && now[0].pid !== before.pid ? now[0] : undefined;
    },
    { timeoutMs: 10_000 },
  );
  expect(after.application).toBe(instanceLockApplicationName('test service'));
  await waitUntil('the lock held again', async () => (lock.held() ? true : undefined), { timeoutMs: 5_000 });
  expect(lost).not.toHaveBeenCalled();
});

test('when another process takes the lock while the connection is gone, the holder is told it lost it', async () => {
  const lost = jest.fn();
  const lock = await take({ onLost: lost });
  const [before] = await holders();
  // One statement: the other session queues for the lock before the old session has gone, so it
  // gets the lock ahead of the holder's new connection (which only tries, never queues).
  const other = await run('select pg_terminate_backend($1), pg_advisory_lock($2)', [before.pid, key], true);
  try {
    await waitUntil('the loss reported', async () => (lost.mock.calls.length > 0 ? true : undefined), {
      timeoutMs: 10_000,
    });
    expect(lost).toHaveBeenCalledTimes(1);
    expect((lost.mock.calls[0][0] as Error).message).toContain('another process is running this test service');
    expect(lock.held()).toBe(false);
    const [now] = await holders();
    expect(now.application).toBe('instance-lock-test');
  } finally {
    await other.end();
  }
});

/**
 * A proxy between the lock and PostgreSQL. `cut` closes its connections on the lock's side only,
 * leaving the old session holding the lock on the server, as a dropped connection the server has
 * not noticed does; `silence` stops them carrying anything, both sockets left open, as a network
 * partition or a proxy that lost its state does.
 */
async function startProxy() {
  const upstream = new URL(database.url);
  const pairs: Array<{ client: net.Socket; server: net.Socket }> = [];
  const proxy = net.createServer((client) => {
    const server = net.connect(Number(upstream.port), upstream.hostname);
    client.pipe(server).pipe(client);
    client.on('error', () => undefined);
    server.on('error', () => undefined);
    pairs.push({ client, server });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const url = new URL(database.url);
  url.hostname = '127.0.0.1';
  url.port = String((proxy.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    cut: () => {
      for (const { client } of pairs.splice(0)) client.destroy();
    },
    silence: () => {
      for (const { client, server } of pairs.splice(0)) {
        client.unpipe(server);
        server.unpipe(client);
        client.pause();
        server.pause();
        silenced.push(client, server);
      }
    },
    stop: async () => {
      for (const socket of silenced.splice(0)) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}
const silenced: net.Socket[] = [];

test.each([
  ['cut on the way (the old session still alive on the server)', 'cut'],
  ['that stops answering (a partition: nothing closed, nothing carried)', 'silence'],
] as const)('a connection %s is given up, the old session ended, and the lock taken again', async (_case, fault) => {
  const proxy = await startProxy();
  try {
    const lost = jest.fn();
    const lock = await take({ url: proxy.url, onLost: lost });
    const [before] = await holders();
    proxy[fault]();
    await waitUntil(
      'the old session ended and the lock held by a new one',
      async () => {
        const now = await holders();
        return now.length === 1 && now[0].pid !== before.pid && lock.held() ? true : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(lost).not.toHaveBeenCalled();
  } finally {
    for (const lock of locks.splice(0)) await lock.release();
    await proxy.stop();
  }
});
