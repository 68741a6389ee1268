import * as grpc from '@grpc/grpc-js';
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthClient,
  HealthService,
  type HealthCheckResponse,
} from '../gen/grpc/health/v1/health';
import { createHealthService, type HealthReporter, type HealthServiceOptions } from './health';

const LEDGER = 'interclear.ledger.v1.LedgerService';

interface Started {
  server: grpc.Server;
  client: HealthClient;
  health: HealthReporter;
}

/** Servers and clients the current test started, closed after it. */
const startedInTest: Started[] = [];

afterEach(() => startedInTest.splice(0).forEach(stop));

async function startHealthServer(options?: HealthServiceOptions): Promise<Started> {
  const health = createHealthService(options);
  const server = new grpc.Server();
  server.addService(HealthService, health.implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    ),
  );
  const client = new HealthClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  startedInTest.push({ server, client, health });
  return { server, client, health };
}

function stop({ server, client }: Started): void {
  client.close();
  server.forceShutdown();
}

function check(client: HealthClient, service: string): Promise<ServingStatus> {
  return new Promise((resolve, reject) =>
    client.check({ service }, (error, response) => (error ? reject(error) : resolve(response.status))),
  );
}

function checkError(client: HealthClient, service: string): Promise<grpc.ServiceError> {
  return new Promise((resolve, reject) =>
    client.check({ service }, (error) => (error ? resolve(error) : reject(new Error('Check succeeded')))),
  );
}

/** A Watch stream whose statuses can be awaited one at a time, in order. */
function watch(client: HealthClient, service: string) {
  const call = client.watch({ service });
  const received: ServingStatus[] = [];
  const waiting: Array<() => void> = [];
  call.on('data', (response: HealthCheckResponse) => {
    received.push(response.status);
    waiting.splice(0).forEach((wake) => wake());
  });
  const finished = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  // The 'error' event duplicates the status for failed calls; the tests read the status.
  call.on('error', () => undefined);
  let taken = 0;
  return {
    call,
    received,
    finished,
    /** The next status not yet taken, waiting for it if need be. */
    async next(): Promise<ServingStatus> {
      while (received.length <= taken) await new Promise<void>((wake) => waiting.push(wake));
      return received[taken++];
    },
  };
}

/** Enough changes that, unbounded, they would outlast HTTP/2 flow control many times over. */
const CHANGE_COUNT = 50_000;

/** Sets the ledger's status NOT_SERVING and SERVING in turn, each a change its watchers must hear of. */
function setAlternatingStatuses(health: HealthReporter, changeCount: number): void {
  for (let change = 1; change <= changeCount; change++) {
    health.setStatus(LEDGER, change % 2 === 1 ? ServingStatus.NOT_SERVING : ServingStatus.SERVING);
  }
}

describe('createHealthService', () => {
  let started: Started;

  describe('Check', () => {
    test('reports the whole server ("") SERVING by default', async () => {
      started = await startHealthServer();

      expect(await check(started.client, '')).toBe(ServingStatus.SERVING);
    });

    test('answers NOT_FOUND for a service never set', async () => {
      started = await startHealthServer();

      const error = await checkError(started.client, LEDGER);

      expect(error.code).toBe(grpc.status.NOT_FOUND);
      expect(error.details).toContain(LEDGER);
    });

    test('reports the status last set', async () => {
      started = await startHealthServer();

      started.health.setStatus(LEDGER, ServingStatus.NOT_SERVING);
      expect(await check(started.client, LEDGER)).toBe(ServingStatus.NOT_SERVING);
      started.health.setStatus(LEDGER, ServingStatus.SERVING);
      expect(await check(started.client, LEDGER)).toBe(ServingStatus.SERVING);
    });

    test('starts from the initial statuses given, replacing the default', async () => {
      started = await startHealthServer({ initialStatuses: { [LEDGER]: ServingStatus.NOT_SERVING } });

      expect(await check(started.client, LEDGER)).toBe(ServingStatus.NOT_SERVING);
      expect((await checkError(started.client, '')).code).toBe(grpc.status.NOT_FOUND);
    });
  });

  describe('List', () => {
    test('reports every known service', async () => {
      started = await startHealthServer();
      started.health.setStatus(LEDGER, ServingStatus.NOT_SERVING);

      const response = await new Promise((resolve, reject) =>
        started.client.list({}, (error, listed) => (error ? reject(error) : resolve(listed))),
      );

      expect(response).toEqual({
        statuses: { '': { status: ServingStatus.SERVING }, [LEDGER]: { status: ServingStatus.NOT_SERVING } },
      });
    });

    test('fails with RESOURCE_EXHAUSTED beyond the limit', async () => {
      started = await startHealthServer({ listedServicesMax: 2 });
      started.health.setStatus('one', ServingStatus.SERVING);
      started.health.setStatus('two', ServingStatus.SERVING);

      const error = await new Promise<grpc.ServiceError | null>((resolve) =>
        started.client.list({}, (listError) => resolve(listError)),
      );

      expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    });
  });

  describe('Watch', () => {
    test('sends the current status first, then each change, and not a repeated status', async () => {
      started = await startHealthServer({ initialStatuses: { [LEDGER]: ServingStatus.SERVING } });
      const watcher = watch(started.client, LEDGER);

      expect(await watcher.next()).toBe(ServingStatus.SERVING);
      started.health.setStatus(LEDGER, ServingStatus.NOT_SERVING);
      started.health.setStatus(LEDGER, ServingStatus.NOT_SERVING);
      started.health.setStatus(LEDGER, ServingStatus.SERVING);
      expect(await watcher.next()).toBe(ServingStatus.NOT_SERVING);
      expect(await watcher.next()).toBe(ServingStatus.SERVING);
      // A round trip later, nothing else has arrived: the repeated NOT_SERVING was not sent.
      await check(started.client, LEDGER);
      expect(watcher.received).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);
      watcher.call.cancel();
    });

    test('reports SERVICE_UNKNOWN for a service never set, then its status once set', async () => {
      started = await startHealthServer();
      const watcher = watch(started.client, LEDGER);

      expect(await watcher.next()).toBe(ServingStatus.SERVICE_UNKNOWN);
      started.health.setStatus(LEDGER, ServingStatus.SERVING);
      expect(await watcher.next()).toBe(ServingStatus.SERVING);
      watcher.call.cancel();
    });

    test('only tells watchers of the service that changed', async () => {
      started = await startHealthServer();
      const overallWatcher = watch(started.client, '');
      const ledgerWatcher = watch(started.client, LEDGER);
      await overallWatcher.next();
      await ledgerWatcher.next();

      started.health.setStatus(LEDGER, ServingStatus.SERVING);
      await ledgerWatcher.next();
      await check(started.client, '');

      expect(overallWatcher.received).toEqual([ServingStatus.SERVING]);
      overallWatcher.call.cancel();
      ledgerWatcher.call.cancel();
    });

    test('refuses watchers beyond the limit with RESOURCE_EXHAUSTED, and frees a place on cancel', async () => {
      started = await startHealthServer({ watchersMax: 1 });
      const first = watch(started.client, '');
      await first.next();

      const refused = watch(started.client, '');
      expect((await refused.finished).code).toBe(grpc.status.RESOURCE_EXHAUSTED);

      first.call.cancel();
      await first.finished;
      // The server learns of the cancellation asynchronously; retry until the place is free.
      let admitted = watch(started.client, '');
      for (let attempt = 0; attempt < 50; attempt++) {
        const outcome = await Promise.race([admitted.next().then(() => 'admitted' as const), admitted.finished]);
        if (outcome === 'admitted') break;
        admitted = watch(started.client, '');
      }
      expect(admitted.received).toEqual([ServingStatus.SERVING]);
      admitted.call.cancel();
    });

    test('keeps only the latest status for a client that does not read', async () => {
      started = await startHealthServer({ initialStatuses: { [LEDGER]: ServingStatus.SERVING } });
      const watcher = watch(started.client, LEDGER);
      await watcher.next();
      watcher.call.pause();

      setAlternatingStatuses(started.health, CHANGE_COUNT);
      // A status the storm never set, so its arrival marks the end of what the server sends.
      started.health.setStatus(LEDGER, ServingStatus.UNKNOWN);
      watcher.call.resume();
      while ((await watcher.next()) !== ServingStatus.UNKNOWN);

      // Flow control stops the server writing long before every change is sent; what it could
      // not write collapsed into the one latest status.
      expect(watcher.received.length).toBeLessThan(CHANGE_COUNT / 2);
      watcher.call.cancel();
    });
  });

  describe('shutdown', () => {
    test('reports every service NOT_SERVING, ends Watch streams and lets the server shut down gracefully', async () => {
      started = await startHealthServer();
      started.health.setStatus(LEDGER, ServingStatus.SERVING);
      const watcher = watch(started.client, LEDGER);
      await watcher.next();

      started.health.shutdown();

      expect(await watcher.next()).toBe(ServingStatus.NOT_SERVING);
      expect((await watcher.finished).code).toBe(grpc.status.OK);
      expect(await check(started.client, '')).toBe(ServingStatus.NOT_SERVING);
      expect(await check(started.client, LEDGER)).toBe(ServingStatus.NOT_SERVING);
      started.client.close();
      // A Watch stream still open would hold tryShutdown until the client went away.
      await new Promise<void>((resolve, reject) =>
        started.server.tryShutdown((error) => (error ? reject(error) : resolve())),
      );
    });

    test('ends the Watch stream of a client that does not read with NOT_SERVING', async () => {
      started = await startHealthServer({ initialStatuses: { [LEDGER]: ServingStatus.SERVING } });
      const watcher = watch(started.client, LEDGER);
      await watcher.next();
      watcher.call.pause();
      setAlternatingStatuses(started.health, CHANGE_COUNT);

      started.health.shutdown();
      watcher.call.resume();

      expect((await watcher.finished).code).toBe(grpc.status.OK);
      expect(watcher.received.length).toBeLessThan(CHANGE_COUNT / 2);
      expect(watcher.received[watcher.received.length - 1]).toBe(ServingStatus.NOT_SERVING);
      const repeats = watcher.received.filter(
        (status, position) => position > 0 && status === watcher.received[position - 1],
      );
      expect(repeats).toEqual([]);
    });

    test('ignores later status changes and ends later Watch streams at once', async () => {
      started = await startHealthServer();
      started.health.shutdown();

      started.health.setStatus('', ServingStatus.SERVING);
      const watcher = watch(started.client, '');

      expect(await check(started.client, '')).toBe(ServingStatus.NOT_SERVING);
      expect((await watcher.finished).code).toBe(grpc.status.OK);
      expect(watcher.received).toEqual([ServingStatus.NOT_SERVING]);
    });
  });

  test('refuses to set a status that only Watch may report', () => {
    const health = createHealthService();

    expect(() => health.setStatus(LEDGER, ServingStatus.SERVICE_UNKNOWN as never)).toThrow(
      /SERVICE_UNKNOWN cannot be set/,
    );
    expect(() => createHealthService({ initialStatuses: { [LEDGER]: ServingStatus.UNRECOGNIZED as never } })).toThrow(
      /cannot be set/,
    );
  });
});
