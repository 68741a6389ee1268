/**
 * The gateway's per-principal concurrency limit, on a real gRPC server and real sockets: a
 * principal with N unary calls in flight has its next call refused at once with
 * RESOURCE_EXHAUSTED (PRINCIPAL_CONCURRENCY_LIMIT), logged and counted, while other principals
 * and streams go through; every way a call ends — answered, failed, cancelled by the client,
 * past its deadline — gives its place back exactly once.
 *
 * The service behind the gateway is a stand-in whose GetLedgerInfo calls stay in flight until the
 * test answers them, so "in flight" is a fact the test controls rather than a race.
 */
import { spawnSync } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { LedgerServiceService } from '../../src/gen/interclear/ledger/v1/ledger';
import { decodeGrpcError, type DecodedError } from '../../src/platform/errors';
import { createGatewayInterceptor, defaultMaxCallsPerPrincipal } from '../../src/platform/gateway';
import { createServiceMetrics, type ServiceMetrics } from '../../src/platform/metrics';
import { createPrincipalResolver } from '../../src/platform/principal';
import { startServer, type RunningServer } from '../../src/platform/server';

const limit = 2;
const getLedgerInfo = LedgerServiceService.getLedgerInfo;
const subscribe = LedgerServiceService.subscribe;

/** A GetLedgerInfo call the stand-in holds: the test answers it, or sees it cancelled. */
interface HeldCall {
  /** The x-call-id the test gave the call. */
  id: string;
  principal: string;
  answer(error?: Partial<grpc.StatusObject>): void;
  cancelled: Promise<void>;
}

/** The stand-in service: it holds every GetLedgerInfo call, and counts Subscribe streams. */
class StandIn extends EventEmitter {
  readonly held = new Map<string, HeldCall>();
  streams = 0;

  readonly implementation: grpc.UntypedServiceImplementation = {
    getLedgerInfo: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const heldCall: HeldCall = {
        id: call.metadata.get('x-call-id')[0] as string,
        principal: call.metadata.get('x-principal')[0] as string,
        answer: (error) => (error ? callback(error) : callback(null, {})),
        cancelled: new Promise<void>((resolve) => call.once('cancelled', () => resolve())),
      };
      this.held.set(heldCall.id, heldCall);
      this.emit('held', heldCall);
    },
    subscribe: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      this.streams += 1;
      this.emit('stream');
      call.once('cancelled', () => call.end());
    },
  };
}

let standIn: StandIn;
let server: RunningServer;
let metrics: ServiceMetrics;
let client: grpc.Client;
const logLines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  standIn = new StandIn();
  metrics = createServiceMetrics('gateway-test');
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(JSON.parse(chunk.toString()));
        done();
      },
    }),
  );
  server = await startServer({
    address: '127.0.0.1:0',
    services: [{ definition: LedgerServiceService, implementation: standIn.implementation }],
    interceptors: [
      createGatewayInterceptor({
        resolvePrincipal: createPrincipalResolver({ insecure: true, admins: [] }),
        logger,
        metrics,
        maxCallsPerPrincipal: limit,
      }),
    ],
  });
  client = new grpc.Client(server.address, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client.close();
  await server.stop(0);
});

/** A call the test made: its id, how it ended (the error, or undefined on success), and its cancel. */
interface PendingCall {
  id: string;
  outcome: Promise<grpc.ServiceError | undefined>;
  cancel(): void;
}

let callsMade = 0;

/** A GetLedgerInfo call as `principal`. */
function call(principal: string, options: grpc.CallOptions = {}): PendingCall {
  callsMade += 1;
  const id = String(callsMade);
  const metadata = new grpc.Metadata();
  metadata.set('x-principal', principal);
  metadata.set('x-call-id', id);
  let settle!: (error: grpc.ServiceError | undefined) => void;
  const outcome = new Promise<grpc.ServiceError | undefined>((resolve) => (settle = resolve));
  const unaryCall = client.makeUnaryRequest(
    getLedgerInfo.path,
    getLedgerInfo.requestSerialize,
    getLedgerInfo.responseDeserialize,
    {},
    metadata,
    options,
    (error) => settle(error ?? undefined),
  );
  return { id, outcome, cancel: () => unaryCall.cancel() };
}

/** The stand-in's hold of `pending`, once the handler has it; rejects if the call ends first. */
function whenHeld(pending: PendingCall): Promise<HeldCall> {
  return new Promise((resolve, reject) => {
    const onHeld = (heldCall: HeldCall) => {
      if (heldCall.id !== pending.id) return;
      standIn.off('held', onHeld);
      resolve(heldCall);
    };
    standIn.on('held', onHeld);
    const already = standIn.held.get(pending.id);
    if (already) onHeld(already);
    void pending.outcome.then((error) => {
      standIn.off('held', onHeld);
      reject(new Error(`call ${pending.id} ended before the handler held it: ${error?.details ?? 'OK'}`));
    });
  });
}

/** Starts `count` calls as `principal` and resolves once the handler holds each of them. */
async function hold(principal: string, count: number, options: grpc.CallOptions = {}) {
  const calls = Array.from({ length: count }, () => call(principal, options));
  return { calls, held: await Promise.all(calls.map(whenHeld)) };
}

/** The refusal of a call as `principal`; fails at once if the call is admitted instead. */
async function refusal(principal: string): Promise<DecodedError> {
  const pending = call(principal);
  const admitted = whenHeld(pending).then(
    (heldCall) => {
      heldCall.answer();
      throw new Error(`the call as ${principal} was expected to be refused, and was admitted`);
    },
    () => pending.outcome,
  );
  const error = await Promise.race([pending.outcome, admitted]);
  if (!error) throw new Error(`the call as ${principal} was expected to be refused, and succeeded`);
  return decodeGrpcError(error);
}

async function answerAll(held: HeldCall[], calls: PendingCall[]): Promise<void> {
  for (const heldCall of held) heldCall.answer();
  await Promise.all(calls.map((pending) => pending.outcome));
}

/** Shows that `principal` has every place free: `limit` calls admitted, the next one refused. */
async function expectAllPlacesFree(principal: string): Promise<void> {
  const { calls, held } = await hold(principal, limit);
  expect((await refusal(principal)).reason).toBe('PRINCIPAL_CONCURRENCY_LIMIT');
  await answerAll(held, calls);
}

test('the default limit is far above what the benchmarks and services keep in flight', () => {
  // The ledger benchmark drives up to 512 concurrent calls as one principal.
  expect(defaultMaxCallsPerPrincipal).toBeGreaterThanOrEqual(1024);
});

test('beyond its limit a principal is refused at once with RESOURCE_EXHAUSTED; another still gets through', async () => {
  const alice = await hold('alice', limit);

  const refused = await refusal('alice');
  expect(refused.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect(refused.reason).toBe('PRINCIPAL_CONCURRENCY_LIMIT');
  expect(refused.metadata).toEqual({ principal: 'alice', limit: String(limit) });
  expect(refused.message).toMatch(/"alice".*\b2 calls in flight.*retry with backoff/);

  const bob = await hold('bob', 1);
  expect(bob.held[0].principal).toBe('bob');

  await answerAll([...alice.held, ...bob.held], [...alice.calls, ...bob.calls]);
  expect(await Promise.all(alice.calls.map((pending) => pending.outcome))).toEqual([undefined, undefined]);
  // Answered calls gave their places back, and only theirs.
  await expectAllPlacesFree('alice');
  await expectAllPlacesFree('bob');
});

test('a call that ends gives back its own place, and only its own', async () => {
  const first = await hold('frank', limit);
  first.held[0].answer();
  expect(await first.calls[0].outcome).toBeUndefined();
  // One place is free again, the other still taken.
  const second = await hold('frank', 1);
  expect((await refusal('frank')).reason).toBe('PRINCIPAL_CONCURRENCY_LIMIT');
  await answerAll([first.held[1], ...second.held], [first.calls[1], ...second.calls]);
  await expectAllPlacesFree('frank');
});

test('the refusal is logged and counted like the other refusals', async () => {
  const alice = await hold('alice', limit);
  const refusalsBefore = (await metrics.rpcRequests.get()).values
    .filter((value) => value.labels.code === 'RESOURCE_EXHAUSTED')
    .reduce((sum, value) => sum + value.value, 0);
  await refusal('alice');
  const counted = (await metrics.rpcRequests.get()).values.find(
    (value) => value.labels.code === 'RESOURCE_EXHAUSTED' && value.labels.method === getLedgerInfo.path,
  );
  expect(counted?.value).toBe(refusalsBefore + 1);
  const line = logLines.filter((entry) => entry.code === 'RESOURCE_EXHAUSTED').pop();
  expect(line).toMatchObject({ level: 40, msg: 'rpc refused', principal: 'alice', method: getLedgerInfo.path });
  expect(String(line?.details)).toContain('retry with backoff');
  expect(line?.peer).toBeDefined();
  await answerAll(alice.held, alice.calls);
});

test('failed calls and refused calls take no place once they end', async () => {
  const failing = await hold('carol', limit);
  for (const heldCall of failing.held) heldCall.answer({ code: grpc.status.FAILED_PRECONDITION, details: 'no' });
  const outcomes = await Promise.all(failing.calls.map((pending) => pending.outcome));
  expect(outcomes.map((error) => error?.code)).toEqual([
    grpc.status.FAILED_PRECONDITION,
    grpc.status.FAILED_PRECONDITION,
  ]);

  // Calls the gateway refuses (here: no principal at all) are never counted.
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const anonymous = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.makeUnaryRequest(
        getLedgerInfo.path,
        getLedgerInfo.requestSerialize,
        getLedgerInfo.responseDeserialize,
        {},
        new grpc.Metadata(),
        (error) => resolve(error),
      ),
    );
    expect(anonymous?.code).toBe(grpc.status.UNAUTHENTICATED);
  }
  await expectAllPlacesFree('carol');
});

test('calls cancelled by the client give their place back once, even if the handler answers later', async () => {
  const cancelled = await hold('dave', limit);
  for (const pending of cancelled.calls) pending.cancel();
  expect((await Promise.all(cancelled.calls.map((pending) => pending.outcome))).map((error) => error?.code)).toEqual([
    grpc.status.CANCELLED,
    grpc.status.CANCELLED,
  ]);
  await Promise.all(cancelled.held.map((heldCall) => heldCall.cancelled));

  // Both places are free again...
  const next = await hold('dave', limit);
  // ...and the handler answering the cancelled calls late frees nothing more.
  for (const heldCall of cancelled.held) heldCall.answer();
  expect((await refusal('dave')).reason).toBe('PRINCIPAL_CONCURRENCY_LIMIT');
  await answerAll(next.held, next.calls);
  await expectAllPlacesFree('dave');
});

test('a call past its deadline gives its place back', async () => {
  const late = await hold('erin', limit, { deadline: Date.now() + 300 });
  expect((await Promise.all(late.calls.map((pending) => pending.outcome))).map((error) => error?.code)).toEqual([
    grpc.status.DEADLINE_EXCEEDED,
    grpc.status.DEADLINE_EXCEEDED,
  ]);
  await Promise.all(late.held.map((heldCall) => heldCall.cancelled));
  await expectAllPlacesFree('erin');
});

test('streams are not counted: a principal at its limit still subscribes', async () => {
  const alice = await hold('alice', limit);
  const metadata = new grpc.Metadata();
  metadata.set('x-principal', 'alice');
  const streams = Array.from({ length: limit + 1 }, () =>
    client.makeServerStreamRequest(
      subscribe.path,
      subscribe.requestSerialize,
      subscribe.responseDeserialize,
      { accounts: [], eventTypes: [] },
      metadata,
    ),
  );
  for (const stream of streams) stream.on('error', () => undefined);
  while (standIn.streams < limit + 1) await once(standIn, 'stream');
  for (const stream of streams) stream.cancel();
  await answerAll(alice.held, alice.calls);
  await expectAllPlacesFree('alice');
});

test('`interclear ledger` refuses a limit below 1 before starting anything', () => {
  // Every server command takes the flag (test/deploy/cli-contract.test.ts checks the chart's use).
  const result = spawnSync(
    process.execPath,
    [
      path.join(__dirname, '..', '..', 'bin', 'interclear.js'),
      'ledger',
      '--ilp-prefix',
      'private.x.',
      '--currency',
      'USD',
      '--scale',
      '2',
      '--insecure',
      '--max-calls-per-principal',
      '0',
    ],
    { encoding: 'utf8', timeout: 60_000, env: { ...process.env, LOG_LEVEL: 'silent' } },
  );
  expect(result.status).toBe(2);
  expect(result.stderr).toContain('invalid configuration: --max-calls-per-principal: must be an integer from 1');
});
