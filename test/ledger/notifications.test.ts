/**
 * Subscribe: events in sequence order, exactly once, resumable from a sequence number, and
 * delivered across replicas of one ledger (two ledger servers on one database).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { EventType, type SubscribeResponse } from '../../src/gen/interclear/ledger/v1/ledger';
import type { LedgerClient } from '../../src/ledger/client';
import { createPool } from '../../src/platform/database';
import { decodeGrpcError } from '../../src/platform/errors';
import { newId, startTestLedger, type TestLedger } from '../support/ledger';
import { waitUntil } from '../support/processes';

let primary: TestLedger;
let replica: TestLedger;
let admin: LedgerClient;

beforeAll(async () => {
  primary = await startTestLedger();
  // A second ledger server on the same database: a replica behind the same Service.
  replica = await startTestLedger({ databaseUrl: primary.databaseUrl });
  admin = primary.client('admin');
  for (const name of ['sender', 'receiver', 'other']) {
    await admin.createAccount({ name, owner: name, minimumBalanceUnlimited: false, disabled: false });
  }
  await admin.deposit({ depositId: newId(), account: 'sender', amount: 1_000_000n, externalReference: 'seed' });
});

afterAll(async () => {
  await replica.stop();
  await primary.stop();
});

/** Collects a stream's messages; resolves `ready` once the subscription is live. */
function collect(stream: grpc.ClientReadableStream<SubscribeResponse>) {
  const events: NonNullable<SubscribeResponse['kind']>[] = [];
  let wake: (() => void) | undefined;
  let failure: grpc.ServiceError | undefined;
  stream.on('data', (response: SubscribeResponse) => {
    if (response.kind) events.push(response.kind);
    wake?.();
  });
  stream.on('error', (error: grpc.ServiceError) => {
    failure = error;
    wake?.();
  });
  return {
    events,
    cancel: () => stream.cancel(),
    async waitFor(predicate: () => boolean, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (failure) throw failure;
        if (Date.now() > deadline) throw new Error(`timed out; received ${events.length} messages`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 200);
        });
      }
    },
    error: () => failure,
    transferEvents: () =>
      events
        .filter((kind) => kind.$case === 'event')
        .map((kind) => kind.value as Extract<typeof kind, { $case: 'event' }>['value']),
  };
}

async function payReceiver(client: LedgerClient, amount: bigint, fulfil: boolean) {
  const fulfillment = randomBytes(32);
  const transferId = newId();
  await client.prepareTransfer({
    transferId,
    debitAccount: 'sender',
    creditAccount: 'receiver',
    amount,
    executionCondition: createHash('sha256').update(fulfillment).digest(),
    expiryTime: new Date(Date.now() + 30_000),
    ilpPacket: Buffer.alloc(0),
    memo: Buffer.alloc(0),
    traceParent: '',
  });
  if (fulfil) await primary.client('receiver').fulfillTransfer({ transferId, fulfillment });
  return { transferId, fulfillment };
}

test('a subscriber receives prepared and executed events, with the fulfillment, in sequence order', async () => {
  const stream = primary.client('receiver').subscribe({ accounts: ['receiver'] });
  const received = collect(stream);
  await received.waitFor(() => received.events.length >= 1);
  expect(received.events[0].$case).toBe('subscribed');
  const { transferId, fulfillment } = await payReceiver(primary.client('sender'), 5n, true);
  await received.waitFor(
    () => received.transferEvents().filter((event) => event.transfer?.id === transferId).length === 2,
  );
  const mine = received.transferEvents().filter((event) => event.transfer?.id === transferId);
  expect(mine.map((event) => event.type)).toEqual([
    EventType.EVENT_TYPE_TRANSFER_PREPARED,
    EventType.EVENT_TYPE_TRANSFER_EXECUTED,
  ]);
  expect(Buffer.from(mine[1].fulfillment)).toEqual(fulfillment);
  expect(mine[1].sequence).toBeGreaterThan(mine[0].sequence);
  stream.cancel();
});

test('events this replica committed reach its subscribers without reading the outbox; the other replica reads them', async () => {
  const stream = primary.client('receiver').subscribe({ accounts: ['receiver'] });
  const received = collect(stream);
  await received.waitFor(() => received.events.length >= 1);
  // Let notifications of earlier tests settle, then count reads over 20 payments.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const primaryReads = primary.ledger.hub.statistics.outboxReads;
  const primaryLate = primary.ledger.hub.statistics.graceExpiredReads;
  const replicaReads = replica.ledger.hub.statistics.outboxReads;
  const started = Date.now();
  const ids: string[] = [];
  for (let index = 0; index < 20; index += 1)
    ids.push((await payReceiver(primary.client('sender'), 1n, true)).transferId);
  await received.waitFor(() => ids.every((id) => received.transferEvents().some((event) => event.transfer?.id === id)));
  await new Promise((resolve) => setTimeout(resolve, 200));
  // 40 commits, 40 NOTIFYs: reading the outbox for each would be 40 reads. What remains is the
  // safety-net poll (every 500 ms, so up to one more than the window holds) and, on a loaded
  // machine, the commit whose reply came more than the grace time after its NOTIFY (counted by
  // the hub: a loaded CI machine made four of them once).
  const polls = Math.ceil((Date.now() - started) / 500) + 1;
  const late = primary.ledger.hub.statistics.graceExpiredReads - primaryLate;
  expect(late).toBeLessThan(20);
  expect(primary.ledger.hub.statistics.outboxReads - primaryReads).toBeLessThanOrEqual(polls + late + 3);
  // The replica learns of them by NOTIFY only, and reads them (batched: at most one read per commit).
  expect(replica.ledger.hub.statistics.outboxReads - replicaReads).toBeGreaterThan(0);
  stream.cancel();
});

test('a subscriber that disconnects and resumes from its last sequence gets every event exactly once', async () => {
  const receiver = primary.client('receiver');
  const first = collect(receiver.subscribe({ accounts: ['receiver'] }));
  await first.waitFor(() => first.events.length >= 1);
  const firstBatch: Array<{ transferId: string }> = [];
  for (let index = 0; index < 5; index += 1) firstBatch.push(await payReceiver(primary.client('sender'), 1n, false));
  await first.waitFor(() => first.transferEvents().length >= 3);
  // Disconnect part-way through, remembering the last sequence received.
  const seen = first.transferEvents();
  const lastSequence = seen[seen.length - 1].sequence;
  first.cancel();
  // While disconnected, more happens.
  const secondBatch: Array<{ transferId: string }> = [];
  for (let index = 0; index < 5; index += 1) secondBatch.push(await payReceiver(primary.client('sender'), 1n, true));
  const resumed = collect(receiver.subscribe({ accounts: ['receiver'], afterSequence: lastSequence }));
  const expectedIds = [...firstBatch, ...secondBatch].map((payment) => payment.transferId);
  const ours = () =>
    [...seen, ...resumed.transferEvents()].filter((event) => expectedIds.includes(event.transfer?.id ?? ''));
  // Every event of every transfer: 5 prepared, then 5 prepared + 5 executed.
  await resumed.waitFor(() => ours().length >= 15);
  // Give a duplicate the chance to arrive before checking there is none.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const all = [...seen, ...resumed.transferEvents()];
  const sequences = all.map((event) => event.sequence);
  expect(new Set(sequences).size).toBe(sequences.length);
  expect([...sequences].sort((left, right) => (left < right ? -1 : 1))).toEqual(sequences);
  expect(ours().length).toBe(15);
});

test('a subscriber on replica 2 sees transfers prepared on replica 1', async () => {
  const onReplica = collect(replica.client('receiver').subscribe({ accounts: ['receiver'] }));
  await onReplica.waitFor(() => onReplica.events.length >= 1);
  const { transferId } = await payReceiver(primary.client('sender'), 3n, true);
  await onReplica.waitFor(() =>
    onReplica
      .transferEvents()
      .some((event) => event.transfer?.id === transferId && event.type === EventType.EVENT_TYPE_TRANSFER_EXECUTED),
  );
});

test('filters by event type, and relays messages', async () => {
  const stream = collect(
    primary.client('receiver').subscribe({ accounts: ['receiver'], eventTypes: [EventType.EVENT_TYPE_MESSAGE_SENT] }),
  );
  await stream.waitFor(() => stream.events.length >= 1);
  await payReceiver(primary.client('sender'), 1n, true);
  const messageId = newId();
  await primary
    .client('other')
    .sendMessage({ messageId, fromAccount: 'other', toAccount: 'receiver', data: Buffer.from('hello') });
  await stream.waitFor(() => stream.transferEvents().length >= 1);
  const [event] = stream.transferEvents();
  expect(event.type).toBe(EventType.EVENT_TYPE_MESSAGE_SENT);
  expect(event.message?.id).toBe(messageId);
  expect(Buffer.from(event.message!.data).toString()).toBe('hello');
  // Only the message: the transfer events were filtered out.
  expect(stream.transferEvents().length).toBe(1);
});

test("subscribing to another principal's account is PERMISSION_DENIED", async () => {
  const stream = collect(primary.client('other').subscribe({ accounts: ['receiver'] }));
  await expect(stream.waitFor(() => false, 5_000)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
  expect(decodeGrpcError(stream.error()!).reason).toBe('PERMISSION_DENIED');
});

test('a slow subscriber is paced by its stream, and catches up from the outbox', async () => {
  // Many events while a subscriber reads nothing: the server must not buffer them all.
  const stream = primary.client('receiver').subscribe({ accounts: ['receiver'], afterSequence: 0n });
  stream.pause();
  const payments = [];
  for (let index = 0; index < 30; index += 1) payments.push(payReceiver(primary.client('sender'), 1n, true));
  await Promise.all(payments);
  const received = collect(stream);
  stream.resume();
  const head = (await primary.ledger.pool.query<{ sequence: bigint }>('select sequence from ledger_head')).rows[0]
    .sequence;
  await received.waitFor(() => received.transferEvents().some((event) => event.sequence >= head - 1n));
  const sequences = received.transferEvents().map((event) => event.sequence);
  expect(new Set(sequences).size).toBe(sequences.length);
  stream.cancel();
});

describe('an account that changes owner while a stream follows it', () => {
  let accounts = 0;
  async function accountOf(owner: string): Promise<string> {
    accounts += 1;
    const name = `handed-${accounts}`;
    await admin.createAccount({ name, owner, minimumBalanceUnlimited: false, disabled: false });
    return name;
  }
  async function payTo(account: string): Promise<string> {
    const request = {
      transferId: newId(),
      debitAccount: 'sender',
      creditAccount: account,
      amount: 1n,
      executionCondition: randomBytes(32),
      expiryTime: new Date(Date.now() + 30_000),
      ilpPacket: Buffer.alloc(0),
      memo: Buffer.alloc(0),
      traceParent: '',
    };
    await primary.client('sender').prepareTransfer(request);
    return request.transferId;
  }

  test.each([
    ['the replica that changed it', () => primary],
    ['another replica', () => replica],
  ])(
    'ends a stream that named it with PERMISSION_DENIED, before any later event (subscribed on %s)',
    async (_label, subscribedOn) => {
      const name = await accountOf('watcher');
      const stream = collect(
        subscribedOn()
          .client('watcher')
          .subscribe({ accounts: [name] }),
      );
      await stream.waitFor(() => stream.events.length >= 1);
      await admin.updateAccount({ name, owner: 'successor' });
      await payTo(name);
      await expect(stream.waitFor(() => false, 5_000)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
      expect(decodeGrpcError(stream.error()!).reason).toBe('PERMISSION_DENIED');
      expect(stream.transferEvents()).toEqual([]);
    },
  );

  test('an owner change the replica missed while its LISTEN connection was down still ends the stream', async () => {
    const name = await accountOf('watcher');
    const stream = collect(replica.client('watcher').subscribe({ accounts: [name] }));
    await stream.waitFor(() => stream.events.length >= 1);
    // As if the announcement had been sent while the replica was not listening: the owner changes
    // with no NOTIFY at all, and then the replica's listener loses its connection and reconnects.
    const pool = createPool(primary.databaseUrl, { size: 1 });
    const listeners = async () =>
      (
        await pool.query<{ pid: number }>(
          "select pid from pg_stat_activity where application_name = 'interclear-ledger-listener' and datname = current_database()",
        )
      ).rows.map((row) => row.pid);
    try {
      await pool.query('update accounts set owner = $2 where name = $1', [name, 'successor']);
      const before = await listeners();
      expect(before).toHaveLength(2); // the primary's and the replica's
      await pool.query('select pg_terminate_backend(pid) from unnest($1::int[]) as pid', [before]);
      await waitUntil('both ledgers to listen again', async () => {
        const now = await listeners();
        return now.length === 2 && now.every((pid) => !before.includes(pid)) ? true : undefined;
      });
    } finally {
      await pool.end();
    }
    await payTo(name);
    await expect(stream.waitFor(() => false, 5_000)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect(stream.transferEvents()).toEqual([]);
  });

  test("a stream of every account of its principal follows the principal's accounts as they change owner", async () => {
    const given = await accountOf('keeper');
    const kept = await accountOf('keeper');
    const gained = await accountOf('successor');
    const stream = collect(replica.client('keeper').subscribe({}));
    await stream.waitFor(() => stream.events.length >= 1);
    await admin.updateAccount({ name: given, owner: 'successor' });
    await admin.updateAccount({ name: gained, owner: 'keeper' });
    await payTo(given);
    const toGained = await payTo(gained);
    const toKept = await payTo(kept);
    await stream.waitFor(() => stream.transferEvents().some((event) => event.transfer?.id === toKept));
    expect(stream.transferEvents().map((event) => event.transfer?.id)).toEqual([toGained, toKept]);
    expect(stream.error()).toBeUndefined();
    stream.cancel();
  });
});
