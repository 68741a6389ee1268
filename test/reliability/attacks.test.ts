/**
 * Attacks on the real network (seven processes, mTLS), each refused with the right error, with
 * no money moved, and logged by the process that refused it: a replayed fulfillment, a
 * fulfillment after expiry, another DFSP's account debited or followed, another DFSP made to
 * pay, a connector tampering with what it forwards (condition, packet, amounts), and forged
 * client certificates.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import {
  EventType,
  TransferState,
  type SubscribeResponse,
  type Transfer,
} from '../../src/gen/interclear/ledger/v1/ledger';
import { PaymentState } from '../../src/gen/interclear/spsp/v1/spsp';
import { deserializeIlpPayment, serializeIlpPayment } from '../../src/ilp';
import { createLedgerClient, type LedgerClient } from '../../src/ledger/client';
import { createCertificateAuthority, issueCertificate, type CertificateFiles } from '../../src/platform/certificates';
import type { ClientIdentity } from '../../src/platform/client';
import { decodeGrpcError } from '../../src/platform/errors';
import { createPaymentClient } from '../../src/spsp/client';
import { followLedger, startE2eNetwork, type E2eNetwork } from '../e2e/support';
import { waitUntil } from '../support/processes';

jest.setTimeout(60_000);

let net: E2eNetwork;
const clients: LedgerClient[] = [];

beforeAll(async () => {
  net = await startE2eNetwork();
}, 180_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await net?.stop();
});

afterEach(async () => {
  if (net) await net.checkConservation();
});

/** A ledger client acting as `principal` (a certificate of the network's CA). */
async function ledgerAs(ledger: string, principal: string): Promise<LedgerClient> {
  const client = createLedgerClient(net.ledger(ledger).address, await net.network.identityFor(principal));
  clients.push(client);
  return client;
}

/** The code and ErrorInfo reason of a call that must fail. */
async function refusal(call: Promise<unknown>): Promise<{ code: string; reason?: string }> {
  try {
    await call;
  } catch (error) {
    const decoded = decodeGrpcError(error as grpc.ServiceError);
    return { code: grpc.status[decoded.code], reason: decoded.reason };
  }
  throw new Error('expected the call to be refused');
}

/** The JSON log lines of a service of the network. */
function logLines(service: string): Array<Record<string, unknown>> {
  const text = readFileSync(net.network.service(service).logFile, 'utf8');
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Waits for a log line of `service` that has every field of `fields` (a process writes asynchronously). */
async function expectLogged(service: string, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
  return waitUntil(
    `${service} to log ${JSON.stringify(fields)}`,
    async () =>
      logLines(service).find((line) =>
        Object.entries(fields).every(([key, value]) =>
          value instanceof RegExp ? value.test(String(line[key])) : line[key] === value,
        ),
      ),
    { timeoutMs: 5_000 },
  );
}

/** The final event of `transferId` on `account`'s stream, opened before the transfer exists. */
function finalOf(
  client: LedgerClient,
  account: string,
  transferId: () => string,
  timeoutMs = 15_000,
): Promise<Transfer> {
  return new Promise((resolve, reject) => {
    const stream = client.subscribe({ accounts: [account] });
    const timer = setTimeout(() => {
      stream.cancel();
      reject(new Error(`no final event for the transfer within ${timeoutMs} ms`));
    }, timeoutMs);
    stream.on('data', (response: SubscribeResponse) => {
      if (response.kind?.$case !== 'event') return;
      const { type, transfer } = response.kind.value;
      if (transfer?.id !== transferId()) return;
      if (type === EventType.EVENT_TYPE_TRANSFER_EXECUTED || type === EventType.EVENT_TYPE_TRANSFER_REJECTED) {
        clearTimeout(timer);
        stream.cancel();
        resolve(transfer);
      }
    });
    stream.on('error', (error: grpc.ServiceError) => {
      if (error.code !== grpc.status.CANCELLED) reject(error);
    });
  });
}

/** Two accounts on DFSP A's ledger that no service acts on: a victim with money and mallory. */
async function victimAndMallory() {
  const suffix = randomBytes(3).toString('hex');
  const victim = `victim-${suffix}`;
  const mallory = `mallory-${suffix}`;
  const admin = net.admin['dfsp-a'];
  await admin.createAccount({ name: victim, owner: victim, minimumBalanceUnlimited: false, disabled: false });
  await admin.createAccount({ name: mallory, owner: mallory, minimumBalanceUnlimited: false, disabled: false });
  await admin.deposit({ depositId: randomUUID(), account: victim, amount: 10_000n, externalReference: 'attack test' });
  return { victim, mallory, asVictim: await ledgerAs('dfsp-a', victim), asMallory: await ledgerAs('dfsp-a', mallory) };
}

function conditionOf(fulfillment: Buffer): Buffer {
  return createHash('sha256').update(fulfillment).digest();
}

describe('fulfillments', () => {
  test('a fulfillment replayed on another transfer is refused (UNMET_CONDITION), the transfer stays prepared, and it is logged', async () => {
    // A real payment's proof of payment, as anyone who saw it executed could copy it.
    const { payment } = await net.payments['dfsp-a'].pay({
      paymentId: randomUUID(),
      senderAccount: 'alice',
      receiver: 'bob@dfsp-b',
      amount: { $case: 'destinationAmount', value: 1_000n },
      data: Buffer.alloc(0),
    });
    expect(payment!.state).toBe(PaymentState.PAYMENT_STATE_EXECUTED);
    const stolen = Buffer.from(payment!.fulfillment);

    const { victim, mallory, asVictim, asMallory } = await victimAndMallory();
    const transferId = randomUUID();
    await asVictim.prepareTransfer({
      transferId,
      debitAccount: victim,
      creditAccount: mallory,
      amount: 5_000n,
      executionCondition: conditionOf(randomBytes(32)),
      expiryTime: new Date(Date.now() + 20_000),
      ilpPacket: Buffer.alloc(0),
      memo: Buffer.alloc(0),
      traceParent: '',
    });
    expect(await refusal(asMallory.fulfillTransfer({ transferId, fulfillment: stolen }))).toEqual({
      code: 'FAILED_PRECONDITION',
      reason: 'UNMET_CONDITION',
    });
    const { transfer } = await asVictim.getTransfer({ transferId });
    expect(transfer!.state).toBe(TransferState.TRANSFER_STATE_PREPARED);
    expect((await asMallory.getAccount({ name: mallory })).account!.balance).toBe(0n);
    await expectLogged('dfsp-a-ledger', {
      msg: 'fulfillment refused',
      reason: 'UNMET_CONDITION',
      transferId,
      principal: mallory,
    });
  });

  test('a fulfillment after the expiry is refused (TRANSFER_EXPIRED), the hold returns to the debtor, and it is logged', async () => {
    const { victim, mallory, asVictim, asMallory } = await victimAndMallory();
    const fulfillment = randomBytes(32);
    const transferId = randomUUID();
    const expired = finalOf(asVictim, victim, () => transferId);
    await asVictim.prepareTransfer({
      transferId,
      debitAccount: victim,
      creditAccount: mallory,
      amount: 5_000n,
      executionCondition: conditionOf(fulfillment),
      expiryTime: new Date(Date.now() + 1_000),
      ilpPacket: Buffer.alloc(0),
      memo: Buffer.alloc(0),
      traceParent: '',
    });
    // The expiry is the ledger's to judge: wait for its event, then present the right preimage.
    expect((await expired).state).toBe(TransferState.TRANSFER_STATE_REJECTED);
    expect(await refusal(asMallory.fulfillTransfer({ transferId, fulfillment }))).toEqual({
      code: 'FAILED_PRECONDITION',
      reason: 'TRANSFER_EXPIRED',
    });
    expect((await asVictim.getAccount({ name: victim })).account).toMatchObject({ balance: 10_000n, heldAmount: 0n });
    expect((await asMallory.getAccount({ name: mallory })).account!.balance).toBe(0n);
    await expectLogged('dfsp-a-ledger', {
      msg: 'fulfillment refused',
      reason: 'TRANSFER_EXPIRED',
      transferId,
      principal: mallory,
    });
  });
});

describe("another DFSP's accounts", () => {
  test("DFSP B's principal preparing a transfer from alice at DFSP A is refused (PERMISSION_DENIED) and logged", async () => {
    const intruder = await ledgerAs('dfsp-a', 'spsp-b');
    const before = await net.balances();
    expect(
      await refusal(
        intruder.prepareTransfer({
          transferId: randomUUID(),
          debitAccount: 'alice',
          creditAccount: 'connector-a',
          amount: 100n,
          executionCondition: conditionOf(randomBytes(32)),
          expiryTime: new Date(Date.now() + 5_000),
          ilpPacket: Buffer.alloc(0),
          memo: Buffer.alloc(0),
          traceParent: '',
        }),
      ),
    ).toEqual({ code: 'PERMISSION_DENIED', reason: 'PERMISSION_DENIED' });
    expect(await net.balances()).toEqual(before);
    await expectLogged('dfsp-a-ledger', {
      msg: 'rpc refused',
      method: '/interclear.ledger.v1.LedgerService/PrepareTransfer',
      principal: 'spsp-b',
      code: 'PERMISSION_DENIED',
    });
  });

  test("DFSP B's principal subscribing to alice's account is refused (PERMISSION_DENIED), sees nothing of it unasked, and is logged", async () => {
    const intruder = await ledgerAs('dfsp-a', 'spsp-b');
    const denied = await new Promise<grpc.ServiceError>((resolve, reject) => {
      const stream = intruder.subscribe({ accounts: ['alice'] });
      stream.on('data', () => reject(new Error('the stream opened')));
      stream.on('error', resolve);
    });
    expect({ code: grpc.status[denied.code], reason: decodeGrpcError(denied).reason }).toEqual({
      code: 'PERMISSION_DENIED',
      reason: 'PERMISSION_DENIED',
    });
    await expectLogged('dfsp-a-ledger', {
      msg: 'rpc refused',
      method: '/interclear.ledger.v1.LedgerService/Subscribe',
      principal: 'spsp-b',
      code: 'PERMISSION_DENIED',
    });
    // Without an account list a non-administrator follows only its own accounts (it has none
    // here): alice's payment must not show on its stream.
    const seen: SubscribeResponse[] = [];
    const stream = intruder.subscribe({ accounts: [] });
    stream.on('data', (response: SubscribeResponse) => seen.push(response));
    stream.on('error', () => undefined);
    const administrator = await followLedger(net.admin['dfsp-a']);
    try {
      const { payment } = await net.payments['dfsp-a'].pay({
        paymentId: randomUUID(),
        senderAccount: 'alice',
        receiver: 'bob@dfsp-b',
        amount: { $case: 'destinationAmount', value: 500n },
        data: Buffer.alloc(0),
      });
      // The administrator's stream has the outcome, so the intruder's would have it by now.
      expect((await administrator.final(payment!.transferId)).state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
    } finally {
      administrator.close();
      stream.cancel();
    }
    expect(seen.filter((response) => response.kind?.$case === 'event')).toEqual([]);
  });

  test("DFSP B's principal calling DFSP A's PaymentService to pay from alice is refused (PERMISSION_DENIED), records nothing, and is logged", async () => {
    const dfspA = net.network.manifest.dfsps.find((dfsp) => dfsp.name === 'dfsp-a')!;
    const intruder = createPaymentClient(dfspA.spsp, await net.network.identityFor('spsp-b'));
    const paymentId = randomUUID();
    const before = await net.balances();
    try {
      // The x-principal header is ignored under mTLS: the certificate says who calls.
      const metadata = new grpc.Metadata();
      metadata.set('x-principal', net.network.manifest.adminPrincipal);
      expect(
        await refusal(
          intruder.pay(
            {
              paymentId,
              senderAccount: 'alice',
              receiver: 'bob@dfsp-b',
              amount: { $case: 'destinationAmount', value: 1_000n },
              data: Buffer.alloc(0),
            },
            { metadata },
          ),
        ),
      ).toEqual({ code: 'PERMISSION_DENIED', reason: 'PERMISSION_DENIED' });
    } finally {
      intruder.close();
    }
    expect(await refusal(net.payments['dfsp-a'].getPayment({ paymentId }))).toEqual({
      code: 'NOT_FOUND',
      reason: 'PAYMENT_NOT_FOUND',
    });
    expect(await net.balances()).toEqual(before);
    await expectLogged('dfsp-a-spsp', {
      msg: 'rpc refused',
      method: '/interclear.spsp.v1.PaymentService/Pay',
      principal: 'spsp-b',
      code: 'PERMISSION_DENIED',
    });
  });
});

describe('a connector tampering with what it forwards', () => {
  /** A payment request of bob's for `amount` XOF, as DFSP B's SPSP server issues it. */
  async function bobsRequest(amount: bigint) {
    const { paymentRequest } = await net.spsp['dfsp-b'].setupPayment({
      receiver: 'bob@dfsp-b',
      destinationAmount: amount,
      data: Buffer.from('attack'),
    });
    return paymentRequest!;
  }

  /** Prepares, as connector B on DFSP B's ledger, a transfer to bob; resolves with its outcome. */
  async function lastHop(input: { amount: bigint; condition: Buffer; packet: Buffer }): Promise<Transfer> {
    const connectorB = await ledgerAs('dfsp-b', 'connector-b');
    const transferId = randomUUID();
    const outcome = finalOf(connectorB, 'connector-b', () => transferId);
    await connectorB.prepareTransfer({
      transferId,
      debitAccount: 'connector-b',
      creditAccount: 'bob',
      amount: input.amount,
      executionCondition: input.condition,
      expiryTime: new Date(Date.now() + 3_000),
      ilpPacket: input.packet,
      memo: Buffer.alloc(0),
      traceParent: '',
    });
    return outcome;
  }

  test('a changed condition: bob is not paid, the receiver rejects with F05, and logs it', async () => {
    const request = await bobsRequest(1_000n);
    const before = await net.balances();
    const transfer = await lastHop({
      amount: 1_000n,
      condition: conditionOf(randomBytes(32)),
      packet: Buffer.from(request.ilpPacket),
    });
    expect(transfer.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
    expect(transfer.ilpError).toMatchObject({ code: 'F05', triggeredBy: 'private.dfsp-b.bob' });
    expect(await net.balances()).toEqual(before);
    await expectLogged('dfsp-b-spsp', { msg: 'incoming payment rejected', transferId: transfer.id, code: 'F05' });
  });

  test('an inflated packet amount (with the amount to cover it): the fulfillment no longer matches, F05, nothing paid', async () => {
    const request = await bobsRequest(1_000n);
    const packet = deserializeIlpPayment(request.ilpPacket);
    const inflated = serializeIlpPayment({ ...packet, amount: packet.amount * 5n });
    const before = await net.balances();
    const transfer = await lastHop({
      amount: 5_000n,
      condition: Buffer.from(request.executionCondition),
      packet: inflated,
    });
    expect(transfer.ilpError).toMatchObject({ code: 'F05' });
    expect(await net.balances()).toEqual(before);
    await expectLogged('dfsp-b-spsp', { msg: 'incoming payment rejected', transferId: transfer.id, code: 'F05' });
  });

  test('less than the packet says: the receiver refuses it (F04) rather than accept a short payment', async () => {
    const request = await bobsRequest(1_000n);
    const before = await net.balances();
    const transfer = await lastHop({
      amount: 999n,
      condition: Buffer.from(request.executionCondition),
      packet: Buffer.from(request.ilpPacket),
    });
    expect(transfer.ilpError).toMatchObject({ code: 'F04' });
    expect(await net.balances()).toEqual(before);
  });

  test('an inflated amount into connector B: it pays bob exactly what the packet says, no more', async () => {
    const request = await bobsRequest(1_000n);
    const connectorA = await ledgerAs('central', 'connector-a');
    let bobsTransfer = '';
    const onDfspB = finalOf(net.admin['dfsp-b'], 'bob', () => bobsTransfer);
    const condition = Buffer.from(request.executionCondition);
    // Find bob's transfer by its condition as it is prepared.
    const prepared = new Promise<Transfer>((resolve) => {
      const stream = net.admin['dfsp-b'].subscribe({ accounts: ['bob'] });
      stream.on('data', (response: SubscribeResponse) => {
        if (response.kind?.$case !== 'event' || response.kind.value.type !== EventType.EVENT_TYPE_TRANSFER_PREPARED)
          return;
        const transfer = response.kind.value.transfer!;
        if (Buffer.from(transfer.executionCondition).equals(condition)) {
          bobsTransfer = transfer.id;
          stream.cancel();
          resolve(transfer);
        }
      });
      stream.on('error', () => undefined);
    });
    const before = await net.balances();
    const incomingId = randomUUID();
    // Ten times what 1,000 XOF costs on the central ledger (about 1.53 EUR).
    await connectorA.prepareTransfer({
      transferId: incomingId,
      debitAccount: 'connector-a',
      creditAccount: 'connector-b',
      amount: 1_530n * 10n,
      executionCondition: condition,
      expiryTime: new Date(Date.now() + 4_000),
      ilpPacket: Buffer.from(request.ilpPacket),
      memo: Buffer.alloc(0),
      traceParent: '',
    });
    expect((await prepared).amount).toBe(1_000n);
    expect((await onDfspB).state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
    const after = await net.balances();
    expect(after['dfsp-b/bob'] - before['dfsp-b/bob']).toBe(1_000n);
    expect(before['dfsp-b/connector-b'] - after['dfsp-b/connector-b']).toBe(1_000n);
  });

  test('a tampered packet into connector B: it forwards it unchanged, bob refuses (F05), the rejection comes back through it', async () => {
    const request = await bobsRequest(1_000n);
    const packet = deserializeIlpPayment(request.ilpPacket);
    const connectorA = await ledgerAs('central', 'connector-a');
    const before = await net.balances();
    const incomingId = randomUUID();
    const outcome = finalOf(connectorA, 'connector-a', () => incomingId);
    await connectorA.prepareTransfer({
      transferId: incomingId,
      debitAccount: 'connector-a',
      creditAccount: 'connector-b',
      amount: 20_000n,
      executionCondition: Buffer.from(request.executionCondition),
      expiryTime: new Date(Date.now() + 4_000),
      ilpPacket: serializeIlpPayment({ ...packet, amount: packet.amount * 3n }),
      memo: Buffer.alloc(0),
      traceParent: '',
    });
    const transfer = await outcome;
    expect(transfer.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
    expect(transfer.ilpError).toMatchObject({
      code: 'F05',
      triggeredBy: 'private.dfsp-b.bob',
      forwardedBy: ['private.central.connector-b'],
    });
    expect(await net.balances()).toEqual(before);
  });
});

describe('forged certificates', () => {
  /** Client credentials presenting `forged`, trusting the network's CA for the server. */
  function presenting(forged: CertificateFiles): ClientIdentity {
    const authority = readFileSync(net.network.manifest.tls!.ca);
    return {
      credentials: grpc.credentials.createSsl(
        authority,
        Buffer.from(forged.privateKeyPem),
        Buffer.from(forged.certificatePem),
      ),
    };
  }

  test.each([
    [
      'issued by another CA in the name of the administrator',
      async () =>
        issueCertificate(await createCertificateAuthority('Interclear local network CA'), { commonName: 'admin' }),
    ],
    ['self-signed with the administrator as common name', () => createCertificateAuthority('admin')],
  ])('a certificate %s is UNAUTHENTICATED, moves nothing, and the refusal is logged', async (_case, forge) => {
    const forged = presenting(await forge());
    const ledger = createLedgerClient(net.ledger('dfsp-a').address, forged);
    clients.push(ledger);
    const before = await net.balances();
    expect(
      await refusal(
        ledger.withdraw({ withdrawalId: randomUUID(), account: 'alice', amount: 1n, externalReference: 'forged' }),
      ),
    ).toEqual({ code: 'UNAUTHENTICATED', reason: 'UNAUTHENTICATED' });
    const dfspA = net.network.manifest.dfsps.find((dfsp) => dfsp.name === 'dfsp-a')!;
    const payments = createPaymentClient(dfspA.spsp, forged);
    try {
      expect(
        await refusal(
          payments.pay({
            paymentId: randomUUID(),
            senderAccount: 'alice',
            receiver: 'bob@dfsp-b',
            amount: { $case: 'destinationAmount', value: 1_000n },
            data: Buffer.alloc(0),
          }),
        ),
      ).toEqual({ code: 'UNAUTHENTICATED', reason: 'UNAUTHENTICATED' });
    } finally {
      payments.close();
    }
    expect(await net.balances()).toEqual(before);
    for (const [service, method] of [
      ['dfsp-a-ledger', '/interclear.ledger.v1.LedgerService/Withdraw'],
      ['dfsp-a-spsp', '/interclear.spsp.v1.PaymentService/Pay'],
    ]) {
      const line = await expectLogged(service, { msg: 'rpc refused', method, code: 'UNAUTHENTICATED' });
      // Who knocked: the caller's address, since it has no principal.
      expect(line.peer).toMatch(/^(ipv4:)?127\.0\.0\.1:\d+$/);
    }
  });
});
