import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import * as ilpPacket from 'ilp-packet';
import { ILP_ADDRESS_SCHEMES } from './address';
import { InvalidPacketError } from './errors';
import { UINT64_MAX } from './oer';
import { TYPE_ILP_PAYMENT, deserializeIlpPayment, serializeIlpPayment, type IlpPayment } from './packet';

interface PacketVector {
  name: string;
  binary: string;
  json: { amount: string; account: string; data: string };
}

const vectorDirectory = join(__dirname, '../../test/vectors/ilp-packet');
const vectors: Array<[string, PacketVector]> = readdirSync(vectorDirectory)
  .filter((file) => file.endsWith('.json'))
  .sort()
  .map((file) => [file, JSON.parse(readFileSync(join(vectorDirectory, file), 'utf8')) as PacketVector]);

function paymentOf(vector: PacketVector): IlpPayment {
  // Vector data is base64 (base64url in the oldest files); Node's base64 decoder reads both.
  return {
    amount: BigInt(vector.json.amount),
    account: vector.json.account,
    data: Buffer.from(vector.json.data, 'base64'),
  };
}

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s/g, ''), 'hex');
}

// A valid packet to break in the rejection tests: 107 to example.alice, data 0x0102.
const validPacket = serializeIlpPayment({ amount: 107n, account: 'example.alice', data: Buffer.of(1, 2) });

const addressArbitrary = fc
  .tuple(
    fc.constantFrom(...ILP_ADDRESS_SCHEMES),
    fc.array(fc.stringMatching(/^[A-Za-z0-9_~-]{1,24}$/), { minLength: 1, maxLength: 6 }),
  )
  .map(([scheme, segments]) => [scheme, ...segments].join('.'));

const paymentArbitrary = fc.record({
  amount: fc.bigInt({ min: 0n, max: UINT64_MAX }),
  account: addressArbitrary,
  data: fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.from(bytes)),
});

describe('ILP payment packet: public ilp-packet vectors', () => {
  test('the vector folder is not empty', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(3);
  });

  test.each(vectors)('%s serializes byte-exact', (_file, vector) => {
    expect(serializeIlpPayment(paymentOf(vector)).toString('hex')).toBe(vector.binary);
  });

  test.each(vectors)('%s deserializes to its JSON', (_file, vector) => {
    expect(deserializeIlpPayment(Buffer.from(vector.binary, 'hex'))).toEqual(paymentOf(vector));
  });

  test.each(vectors)('%s is also what ilp-packet@2.2.0 writes', (_file, vector) => {
    const payment = paymentOf(vector);
    const theirs = ilpPacket.serializeIlpPayment({
      amount: vector.json.amount,
      account: payment.account,
      data: payment.data,
    });
    expect(theirs.toString('hex')).toBe(vector.binary);
  });
});

describe('ILP payment packet: against ilp-packet@2.2.0', () => {
  test('random payments serialize to the same bytes as ilp-packet', () => {
    fc.assert(
      fc.property(paymentArbitrary, (payment) => {
        const theirs = ilpPacket.serializeIlpPayment({
          amount: payment.amount.toString(),
          account: payment.account,
          data: payment.data,
        });
        expect(serializeIlpPayment(payment).equals(theirs)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('ilp-packet reads what we write, and we read what it writes', () => {
    fc.assert(
      fc.property(paymentArbitrary, (payment) => {
        const ours = serializeIlpPayment(payment);
        const readByThem = ilpPacket.deserializeIlpPayment(ours);
        expect(readByThem).toEqual({ amount: payment.amount.toString(), account: payment.account, data: payment.data });
        const theirs = ilpPacket.serializeIlpPayment(readByThem);
        expect(deserializeIlpPayment(theirs)).toEqual(payment);
      }),
      { numRuns: 200 },
    );
  });

  test('a packet survives a round trip unchanged', () => {
    fc.assert(
      fc.property(paymentArbitrary, (payment) => {
        const bytes = serializeIlpPayment(payment);
        expect(deserializeIlpPayment(bytes)).toEqual(payment);
        expect(serializeIlpPayment(deserializeIlpPayment(bytes)).equals(bytes)).toBe(true);
      }),
    );
  });

  // Data lengths around each boundary of the length determinant: 1, 2 and 3 length octets.
  test.each([0, 1, 106, 107, 127, 128, 255, 256, 65535, 65536, 70000])(
    'data of %i bytes matches ilp-packet, lengths included',
    (dataLength) => {
      const data = Buffer.alloc(dataLength, 0xa5);
      const ours = serializeIlpPayment({ amount: UINT64_MAX, account: 'g.alice', data });
      const theirs = ilpPacket.serializeIlpPayment({ amount: UINT64_MAX.toString(), account: 'g.alice', data });
      expect(ours.equals(theirs)).toBe(true);
      expect(deserializeIlpPayment(ours).data.length).toBe(dataLength);
    },
  );
});

describe('serializeIlpPayment', () => {
  test.each([
    ['zero amount', 0n],
    ['largest amount', UINT64_MAX],
  ])('accepts the %s', (_case, amount) => {
    const bytes = serializeIlpPayment({ amount, account: 'g.alice', data: Buffer.alloc(0) });
    expect(bytes[0]).toBe(TYPE_ILP_PAYMENT);
    expect(deserializeIlpPayment(bytes).amount).toBe(amount);
  });

  test.each([
    ['a negative amount', { amount: -1n, account: 'g.alice', data: Buffer.alloc(0) }, /amount/],
    ['an amount of 2^64', { amount: UINT64_MAX + 1n, account: 'g.alice', data: Buffer.alloc(0) }, /amount/],
    ['a number amount', { amount: 5 as unknown as bigint, account: 'g.alice', data: Buffer.alloc(0) }, /amount/],
    ['a prefix as account', { amount: 1n, account: 'g.alice.', data: Buffer.alloc(0) }, /account/],
    ['a non-ASCII account', { amount: 1n, account: 'g.alicé', data: Buffer.alloc(0) }, /account/],
    ['string data', { amount: 1n, account: 'g.alice', data: 'BBBB' as unknown as Buffer }, /data/],
  ])('refuses %s', (_case, payment, message) => {
    expect(() => serializeIlpPayment(payment)).toThrow(InvalidPacketError);
    expect(() => serializeIlpPayment(payment)).toThrow(message);
  });
});

describe('deserializeIlpPayment', () => {
  test('returns data the caller may keep: a copy, not a view of the packet', () => {
    const packet = Buffer.from(validPacket);
    const { data } = deserializeIlpPayment(packet);
    packet.fill(0);
    expect(data).toEqual(Buffer.of(1, 2));
  });

  test('reads a packet that is a view into a larger buffer', () => {
    const larger = Buffer.concat([Buffer.from('junk'), validPacket, Buffer.from('junk')]);
    const view = larger.subarray(4, 4 + validPacket.length);
    expect(deserializeIlpPayment(view).account).toBe('example.alice');
  });

  // 01 | 1a | 000000000000006b | 0d example.alice | 02 0102 | 00
  test.each([
    ['an empty buffer', '', /truncated type/],
    ['the wrong type', '02 1a 000000000000006b 0d 6578616d706c652e616c696365 02 0102 00', /type is 2/],
    ['type 12 (ILPv4 prepare)', '0c 1a 000000000000006b 0d 6578616d706c652e616c696365 02 0102 00', /type is 12/],
    [
      'a byte after the envelope',
      '01 1a 000000000000006b 0d 6578616d706c652e616c696365 02 0102 00 00',
      /trailing byte\(s\) after the packet$/,
    ],
    [
      'a byte after the extensions',
      '01 1b 000000000000006b 0d 6578616d706c652e616c696365 02 0102 00 00',
      /after the packet content/,
    ],
    ['no extensions octet', '01 19 000000000000006b 0d 6578616d706c652e616c696365 02 0102', /truncated extensions/],
    [
      'an extensions octet of 1',
      '01 1a 000000000000006b 0d 6578616d706c652e616c696365 02 0102 01',
      /extensions octet is 1/,
    ],
    [
      'a content length longer than the packet',
      '01 1b 000000000000006b 0d 6578616d706c652e616c696365 02 0102 00',
      /truncated content/,
    ],
    [
      'a non-minimal content length',
      '01 811a 000000000000006b 0d 6578616d706c652e616c696365 02 0102 00',
      /not minimally encoded/,
    ],
    ['an indefinite content length', '01 80 000000000000006b 0d 6578616d706c652e616c696365 02 0102 00', /indefinite/],
    [
      'an account longer than the content',
      '01 1a 000000000000006b 2d 6578616d706c652e616c696365 02 0102 00',
      /truncated account/,
    ],
    [
      'a data length past the content',
      '01 1a 000000000000006b 0d 6578616d706c652e616c696365 05 0102 00',
      /truncated data/,
    ],
    ['an amount cut short', '01 05 0000000000', /truncated amount/],
    [
      'an account that is a prefix',
      '01 1a 000000000000006b 0d 6578616d706c652e616c6963 2e 02 0102 00',
      /not an ILP address/,
    ],
    [
      'an account with an unknown scheme',
      '01 1a 000000000000006b 0d 7878616d706c652e616c696365 02 0102 00',
      /not an ILP address/,
    ],
    // 0xe1 would read as "a" through Node's 7-bit ascii decoder, making "example.alice".
    [
      'an account byte above 127',
      '01 1a 000000000000006b 0d 6578616d706c652ee16c696365 02 0102 00',
      /not an ILP address/,
    ],
    ['an empty account', '01 0d 000000000000006b 00 02 0102 00', /not an ILP address/],
  ])('refuses %s', (_case, input, message) => {
    expect(() => deserializeIlpPayment(hex(input))).toThrow(InvalidPacketError);
    expect(() => deserializeIlpPayment(hex(input))).toThrow(message);
  });

  test('the rejection test packet is itself valid, so each case breaks one thing', () => {
    expect(validPacket.toString('hex')).toBe('011a000000000000006b0d6578616d706c652e616c69636502010200');
  });

  test('every truncation of a valid packet is refused', () => {
    for (let length = 0; length < validPacket.length; length += 1) {
      expect(() => deserializeIlpPayment(validPacket.subarray(0, length))).toThrow(InvalidPacketError);
    }
  });

  test('random bytes never crash the reader with anything but InvalidPacketError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          deserializeIlpPayment(Buffer.from(bytes));
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidPacketError);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('refuses a value that is not a Buffer', () => {
    expect(() => deserializeIlpPayment('011a' as unknown as Buffer)).toThrow(InvalidPacketError);
  });

  test('the error maps to ILP error F01', () => {
    expect(() => deserializeIlpPayment(Buffer.alloc(0))).toThrow(expect.objectContaining({ code: 'F01' }));
  });
});
