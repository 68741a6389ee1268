import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { InvalidIlpAddressError } from './address';
import { conditionFromPreimage, isFulfillmentOf } from './condition';
import { InvalidPacketError } from './errors';
import {
  PAYMENT_NONCE_LENGTH,
  createPaymentRequest,
  createPaymentToken,
  deriveCondition,
  deriveFulfillment,
  verifyIncomingPayment,
  verifyPaymentToken,
  type IncomingPaymentAcceptance,
  type IncomingPaymentRejection,
} from './ipr';
import { UINT64_MAX } from './oer';
import { deserializeIlpPayment, serializeIlpPayment } from './packet';

const secret = Buffer.alloc(32, 0x42);
const otherSecret = Buffer.alloc(32, 0x43);
const receiverAddress = 'g.dfsp-b.bob';
const expiresAt = new Date('2030-01-01T00:00:00.000Z');
const beforeExpiry = new Date('2029-12-31T23:59:00.000Z');

// A fixed request whose bytes were checked against an independent implementation (Python's hmac
// and hashlib) of the construction documented in ipr.ts.
const knownRequestInput = {
  secret,
  destinationAccount: receiverAddress,
  destinationAmount: 1234n,
  data: Buffer.from('invoice 7'),
  expiresAt,
  nonce: Buffer.alloc(PAYMENT_NONCE_LENGTH, 0x07),
};
const knownRequest = createPaymentRequest(knownRequestInput);

function isRejection(result: IncomingPaymentAcceptance | IncomingPaymentRejection): result is IncomingPaymentRejection {
  return 'errorCode' in result;
}

describe('the documented construction', () => {
  test('a known answer: token, packet, fulfillment and condition', () => {
    expect(knownRequest.destinationAddress).toBe('g.dfsp-b.bob.BwcHBwcHBwcHBwcHBwcHBwAAAbjaxbQAiept6_Ana00YEhX4Hlie1Q');
    expect(knownRequest.packet.toString('hex')).toBe(
      '015700000000000004d243672e646673702d622e626f622e42776348427763484277634842776348427763484277414141626a' +
        '617862514169657074365f416e6130305945685834486c6965315109696e766f696365203700',
    );
    expect(deriveFulfillment(secret, knownRequest.packet).toString('hex')).toBe(
      'f3f8f157fe5f582ceba5af6f4365483c49775687ebe2a48dbaf7cb7379fc4b87',
    );
    expect(knownRequest.condition.toString('hex')).toBe(
      '83a6cbf9237915c6da9b555db6d121dfc87d9ff76e8babbd8de069e70fdb0252',
    );
  });

  test('fulfillment = HMAC(HMAC(secret, "ilp_psk_condition"), packet), condition = SHA-256(fulfillment)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 64 }),
        fc.uint8Array({ maxLength: 300 }),
        (secretBytes, packet) => {
          const conditionKey = createHmac('sha256', secretBytes).update('ilp_psk_condition').digest();
          const expected = createHmac('sha256', conditionKey).update(packet).digest();
          expect(deriveFulfillment(secretBytes, packet)).toEqual(expected);
          expect(deriveCondition(secretBytes, packet)).toEqual(createHash('sha256').update(expected).digest());
        },
      ),
    );
  });

  test('the token is base64url of nonce, expiry in milliseconds and a 16-byte tag', () => {
    const token = knownRequest.destinationAddress.slice(receiverAddress.length + 1);
    const bytes = Buffer.from(token, 'base64url');
    expect(token).toHaveLength(54);
    expect(bytes).toHaveLength(40);
    expect(bytes.subarray(0, 16)).toEqual(Buffer.alloc(16, 0x07));
    expect(bytes.readBigUInt64BE(16)).toBe(BigInt(expiresAt.getTime()));
    const tokenKey = createHmac('sha256', secret).update('ilp_ipr_payment_token').digest();
    const tag = createHmac('sha256', tokenKey)
      .update(Buffer.concat([Buffer.from(receiverAddress), Buffer.of(0), bytes.subarray(0, 24)]))
      .digest()
      .subarray(0, 16);
    expect(bytes.subarray(24)).toEqual(tag);
  });
});

describe('createPaymentRequest', () => {
  test('builds the packet to the tokenized address with the amount and data', () => {
    expect(deserializeIlpPayment(knownRequest.packet)).toEqual({
      amount: 1234n,
      account: knownRequest.destinationAddress,
      data: Buffer.from('invoice 7'),
    });
    expect(knownRequest.destinationAmount).toBe(1234n);
    expect(knownRequest.expiresAt).toEqual(expiresAt);
    expect(knownRequest.nonce).toEqual(Buffer.alloc(16, 0x07));
  });

  test('the condition is SHA-256 of the fulfillment the receiver derives later', () => {
    expect(isFulfillmentOf(deriveFulfillment(secret, knownRequest.packet), knownRequest.condition)).toBe(true);
  });

  test('two requests for the same payment get different nonces, packets and conditions', () => {
    const request = { secret, destinationAccount: receiverAddress, destinationAmount: 100n, expiresAt };
    const first = createPaymentRequest(request);
    const second = createPaymentRequest(request);
    expect(first.nonce).toHaveLength(PAYMENT_NONCE_LENGTH);
    expect(first.nonce.equals(second.nonce)).toBe(false);
    expect(first.packet.equals(second.packet)).toBe(false);
    expect(first.condition.equals(second.condition)).toBe(false);
  });

  test('the same inputs and nonce give the same request', () => {
    const again = createPaymentRequest({ ...knownRequestInput, nonce: Buffer.from(knownRequestInput.nonce) });
    expect(again.packet).toEqual(knownRequest.packet);
    expect(again.condition).toEqual(knownRequest.condition);
  });

  test('data defaults to empty', () => {
    const request = createPaymentRequest({
      secret,
      destinationAccount: receiverAddress,
      destinationAmount: 1n,
      expiresAt,
    });
    expect(deserializeIlpPayment(request.packet).data).toHaveLength(0);
  });

  test('returns its own copy of the expiry', () => {
    const mutable = new Date(expiresAt.getTime());
    const request = createPaymentRequest({
      secret,
      destinationAccount: receiverAddress,
      destinationAmount: 1n,
      expiresAt: mutable,
    });
    mutable.setTime(0);
    expect(request.expiresAt).toEqual(expiresAt);
  });

  test.each([
    ['a secret of 31 bytes', { secret: Buffer.alloc(31) }, RangeError],
    ['an empty secret', { secret: Buffer.alloc(0) }, RangeError],
    ['a nonce of 15 bytes', { nonce: Buffer.alloc(15) }, RangeError],
    ['an invalid date', { expiresAt: new Date(Number.NaN) }, RangeError],
    ['a date before 1970', { expiresAt: new Date(-1) }, RangeError],
    ['a prefix as account', { destinationAccount: 'g.dfsp-b.' }, InvalidIlpAddressError],
    ['an address too long once tokenized', { destinationAccount: `g.${'a'.repeat(1000)}` }, InvalidPacketError],
    ['a negative amount', { destinationAmount: -1n }, InvalidPacketError],
    ['an amount of 2^64', { destinationAmount: UINT64_MAX + 1n }, InvalidPacketError],
  ])('refuses %s', (_case, override, errorType) => {
    const request = { secret, destinationAccount: receiverAddress, destinationAmount: 1n, expiresAt, ...override };
    expect(() => createPaymentRequest(request)).toThrow(errorType);
  });
});

describe('payment tokens', () => {
  const nonce = Buffer.alloc(PAYMENT_NONCE_LENGTH, 0x09);
  const token = createPaymentToken({ secret, receiverAddress, nonce, expiresAt });

  test('a token verifies and says its nonce and expiry', () => {
    expect(verifyPaymentToken({ secret, receiverAddress, token })).toEqual({ nonce, expiresAt });
  });

  test.each([
    ['another secret', { secret: otherSecret }],
    ['another receiver address', { receiverAddress: 'g.dfsp-b.carol' }],
    ['a changed character', { token: `${token.slice(0, 10)}${token[10] === 'A' ? 'B' : 'A'}${token.slice(11)}` }],
    ['a token one character short', { token: token.slice(1) }],
    ['a token with a character base64url does not have', { token: `${token.slice(0, -1)}.` }],
    [
      'a token with a non-canonical last character',
      { token: `${token.slice(0, -1)}${token.endsWith('R') ? 'S' : 'R'}` },
    ],
    ['an empty token', { token: '' }],
  ])('a token is refused under %s', (_case, override) => {
    expect(verifyPaymentToken({ secret, receiverAddress, token, ...override })).toBeUndefined();
  });

  test('a later expiry in a copied token breaks the tag', () => {
    const bytes = Buffer.from(token, 'base64url');
    bytes.writeBigUInt64BE(BigInt(expiresAt.getTime() + 86_400_000), PAYMENT_NONCE_LENGTH);
    expect(verifyPaymentToken({ secret, receiverAddress, token: bytes.toString('base64url') })).toBeUndefined();
  });
});

describe('verifyIncomingPayment', () => {
  const incoming = {
    secret,
    receiverAddress,
    packet: knownRequest.packet,
    condition: knownRequest.condition,
    amount: 1234n,
    now: beforeExpiry,
  };

  function repacked(change: Partial<{ amount: bigint; account: string; data: Buffer }>): Buffer {
    return serializeIlpPayment({ ...deserializeIlpPayment(knownRequest.packet), ...change });
  }

  const otherRequest = createPaymentRequest({ ...knownRequestInput, nonce: undefined });
  const carolRequest = createPaymentRequest({
    secret,
    destinationAccount: 'g.dfsp-b.carol',
    destinationAmount: 1234n,
    expiresAt,
  });
  const tokenOfCarol = carolRequest.destinationAddress.slice('g.dfsp-b.carol.'.length);
  const strangerRequest = createPaymentRequest({
    secret: otherSecret,
    destinationAccount: receiverAddress,
    destinationAmount: 1234n,
    expiresAt,
  });

  test('accepts the payment it set up and returns the fulfillment', () => {
    const result = verifyIncomingPayment(incoming);
    expect(isRejection(result)).toBe(false);
    const acceptance = result as IncomingPaymentAcceptance;
    expect(conditionFromPreimage(acceptance.fulfillment)).toEqual(knownRequest.condition);
    expect(acceptance.payment.amount).toBe(1234n);
    expect(acceptance.payment.data).toEqual(Buffer.from('invoice 7'));
    expect(acceptance.token).toEqual({ nonce: knownRequest.nonce, expiresAt });
  });

  test.each([
    ['more than asked', { amount: 1235n }],
    ['the last millisecond before expiry', { now: expiresAt }],
  ])('accepts %s', (_case, override) => {
    expect(isRejection(verifyIncomingPayment({ ...incoming, ...override }))).toBe(false);
  });

  test.each([
    ['a packet that is not a packet', { packet: Buffer.from('garbage') }, 'F01'],
    ['a packet with trailing bytes', { packet: Buffer.concat([knownRequest.packet, Buffer.of(0)]) }, 'F01'],
    ['a packet for another receiver', { packet: repacked({ account: 'g.dfsp-b.carol.x' }) }, 'F02'],
    ['a packet to the receiver without a token', { packet: repacked({ account: receiverAddress }) }, 'F02'],
    [
      'a packet with a segment after the token',
      { packet: repacked({ account: `${knownRequest.destinationAddress}.x` }) },
      'F02',
    ],
    ['a packet to a longer account name', { packet: repacked({ account: `${receiverAddress}by.x` }) }, 'F02'],
    ['a malformed receiver address', { receiverAddress: 'g.dfsp-b.bob.' }, 'F02'],
    [
      'a token this receiver never made',
      { packet: strangerRequest.packet, condition: strangerRequest.condition },
      'F06',
    ],
    [
      'a token made for another account',
      { packet: repacked({ account: `${receiverAddress}.${tokenOfCarol}` }) },
      'F06',
    ],
    ['an expired payment request', { now: new Date(expiresAt.getTime() + 1) }, 'R00'],
    ['less than asked', { amount: 1233n }, 'F04'],
    ['nothing', { amount: 0n }, 'F04'],
    ['a packet whose amount a connector lowered', { packet: repacked({ amount: 1000n }) }, 'F05'],
    ['a packet whose data a connector changed', { packet: repacked({ data: Buffer.from('invoice 8') }) }, 'F05'],
    ['the condition of another request', { condition: otherRequest.condition }, 'F05'],
    ['a condition of 31 bytes', { condition: knownRequest.condition.subarray(1) }, 'F05'],
  ])('refuses %s', (_case, override, errorCode) => {
    const result = verifyIncomingPayment({ ...incoming, ...override });
    expect(isRejection(result)).toBe(true);
    expect((result as IncomingPaymentRejection).errorCode).toBe(errorCode);
    expect((result as IncomingPaymentRejection).message.length).toBeGreaterThan(0);
  });

  test.each([
    // An expired request for too little with the wrong condition reports the expiry first.
    [
      'expiry before amount and condition',
      { now: new Date(expiresAt.getTime() + 1), amount: 1n, condition: Buffer.alloc(32) },
      'R00',
    ],
    ['amount before condition', { amount: 1n, condition: Buffer.alloc(32) }, 'F04'],
    [
      'an unknown token before expiry',
      { packet: strangerRequest.packet, now: new Date(expiresAt.getTime() + 1) },
      'F06',
    ],
  ])('checks in the documented order: %s', (_case, override, errorCode) => {
    const result = verifyIncomingPayment({ ...incoming, ...override });
    expect((result as IncomingPaymentRejection).errorCode).toBe(errorCode);
  });

  test('refuses a short secret as a programming error', () => {
    expect(() => verifyIncomingPayment({ ...incoming, secret: Buffer.alloc(16) })).toThrow(RangeError);
  });

  test('accepts every request it creates, and no single-byte change of its packet', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: UINT64_MAX }),
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(),
        (destinationAmount, data, position) => {
          const request = createPaymentRequest({
            secret,
            destinationAccount: receiverAddress,
            destinationAmount,
            data: Buffer.from(data),
            expiresAt,
          });
          const transfer = {
            ...incoming,
            packet: request.packet,
            condition: request.condition,
            amount: destinationAmount,
          };
          expect(isRejection(verifyIncomingPayment(transfer))).toBe(false);

          const tampered = Buffer.from(request.packet);
          tampered[position % tampered.length] ^= 0x01;
          expect(isRejection(verifyIncomingPayment({ ...transfer, packet: tampered, amount: UINT64_MAX }))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});
