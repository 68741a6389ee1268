import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  CONDITION_LENGTH,
  CRYPTO_CONDITION_COST_MAX,
  InvalidCryptoConditionError,
  conditionFromPreimage,
  deriveCryptoCondition,
  isFulfillmentOf,
  parseConditionBinary,
  parseConditionUri,
  parseFulfillmentBinary,
  serializeConditionBinary,
  serializeConditionUri,
  serializeFulfillmentBinary,
  validateFulfillment,
} from './condition';

// five-bells-condition ships no type declarations; these are the parts the tests call.
interface FiveBellsFulfillment {
  setPreimage(preimage: Buffer): void;
  getConditionUri(): string;
  getConditionBinary(): Buffer;
  serializeBinary(): Buffer;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fiveBells = require('five-bells-condition') as {
  PreimageSha256: new () => FiveBellsFulfillment;
  fromFulfillmentBinary(binary: Buffer): FiveBellsFulfillment;
  validateCondition(uri: string): boolean;
};

interface ConditionVector {
  json: { type: string; preimage: string };
  cost: number;
  fulfillment?: string;
  conditionBinary: string;
  conditionUri: string;
}

const vectorDirectory = join(__dirname, '../../test/vectors/crypto-conditions');
const vectors: Array<[string, ConditionVector]> = readdirSync(vectorDirectory)
  .filter((file) => file.endsWith('.json'))
  .sort()
  .map((file) => [file, JSON.parse(readFileSync(join(vectorDirectory, file), 'utf8')) as ConditionVector]);

// The vector files spell the URI `ni://sha-256;` or `ni:sha-256;`; the draft's example and
// five-bells-condition spell it `ni:///sha-256;`. Everything from "sha-256;" on must agree.
function uriAfterScheme(uri: string): string {
  return uri.slice(uri.indexOf('sha-256;'));
}

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s/g, ''), 'hex');
}

function fiveBellsFulfillmentOf(preimage: Buffer): FiveBellsFulfillment {
  const fulfillment = new fiveBells.PreimageSha256();
  fulfillment.setPreimage(preimage);
  return fulfillment;
}

const helloWorld = Buffer.from('Hello World!');
const helloWorldCondition = hex('A0258020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C');

describe('PREIMAGE-SHA-256: public crypto-conditions vectors', () => {
  test('the vector folder holds the PREIMAGE-SHA-256 vectors', () => {
    expect(vectors.map(([file]) => file)).toEqual(
      expect.arrayContaining(['0000_test-minimal-preimage.json', '0005_test-basic-preimage.json']),
    );
    for (const [, vector] of vectors) {
      expect(vector.json.type).toBe('preimage-sha-256');
    }
  });

  test.each(vectors)('%s: condition, URI and fulfillment are byte-exact', (_file, vector) => {
    const preimage = Buffer.from(vector.json.preimage, 'base64url');
    const condition = deriveCryptoCondition(preimage);
    expect(condition.cost).toBe(vector.cost);
    expect(serializeConditionBinary(condition).toString('hex').toUpperCase()).toBe(vector.conditionBinary);
    expect(uriAfterScheme(serializeConditionUri(condition))).toBe(uriAfterScheme(vector.conditionUri));
    expect(serializeConditionUri(condition).startsWith('ni:///sha-256;')).toBe(true);
    if (vector.fulfillment !== undefined) {
      expect(serializeFulfillmentBinary(preimage).toString('hex').toUpperCase()).toBe(vector.fulfillment);
    }
  });

  test.each(vectors)('%s: the binary forms parse and validate', (_file, vector) => {
    const preimage = Buffer.from(vector.json.preimage, 'base64url');
    const condition = parseConditionBinary(hex(vector.conditionBinary));
    expect(condition).toEqual({ fingerprint: conditionFromPreimage(preimage), cost: vector.cost });
    const fulfillment =
      vector.fulfillment === undefined ? serializeFulfillmentBinary(preimage) : hex(vector.fulfillment);
    expect(parseFulfillmentBinary(fulfillment)).toEqual(preimage);
    expect(validateFulfillment(fulfillment, hex(vector.conditionBinary))).toBe(true);
    expect(validateFulfillment(fulfillment, condition)).toBe(true);
  });

  test.each(vectors)('%s: the URI parses in the ni:/// spelling', (_file, vector) => {
    const canonical = `ni:///${uriAfterScheme(vector.conditionUri)}`;
    expect(parseConditionUri(canonical)).toEqual(parseConditionBinary(hex(vector.conditionBinary)));
  });

  test.each(vectors.filter(([, vector]) => !vector.conditionUri.startsWith('ni:///')))(
    '%s: the vector file’s own URI spelling is refused as not RFC 6920',
    (_file, vector) => {
      expect(() => parseConditionUri(vector.conditionUri)).toThrow(InvalidCryptoConditionError);
    },
  );

  test('the draft’s example condition ("Hello World!", cost 12)', () => {
    const condition = deriveCryptoCondition(helloWorld);
    expect(serializeConditionBinary(condition)).toEqual(helloWorldCondition);
    expect(serializeConditionUri(condition)).toBe(
      'ni:///sha-256;f4OxZX_x_FO5LcGBSKHWXfwtSx-j1ncoSt3SABJtkGk?fpt=preimage-sha-256&cost=12',
    );
  });
});

describe('PREIMAGE-SHA-256: against five-bells-condition@5.0.1', () => {
  test('URI, DER condition and DER fulfillment equal five-bells-condition for preimages of 0..1000 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 1000 }), (bytes) => {
        const preimage = Buffer.from(bytes);
        const theirs = fiveBellsFulfillmentOf(preimage);
        const condition = deriveCryptoCondition(preimage);
        expect(serializeConditionUri(condition)).toBe(theirs.getConditionUri());
        expect(serializeConditionBinary(condition).equals(theirs.getConditionBinary())).toBe(true);
        expect(serializeFulfillmentBinary(preimage).equals(theirs.serializeBinary())).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('we parse what five-bells-condition writes, and it parses what we write', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 1000 }), (bytes) => {
        const preimage = Buffer.from(bytes);
        const theirs = fiveBellsFulfillmentOf(preimage);
        expect(parseFulfillmentBinary(theirs.serializeBinary())).toEqual(preimage);
        expect(parseConditionUri(theirs.getConditionUri())).toEqual(parseConditionBinary(theirs.getConditionBinary()));
        expect(validateFulfillment(theirs.serializeBinary(), theirs.getConditionUri())).toBe(true);

        const ours = serializeFulfillmentBinary(preimage);
        const readByThem = fiveBells.fromFulfillmentBinary(ours);
        expect(readByThem.getConditionUri()).toBe(serializeConditionUri(deriveCryptoCondition(preimage)));
        expect(fiveBells.validateCondition(serializeConditionUri(deriveCryptoCondition(preimage)))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  // Preimage lengths at each boundary of the DER length and INTEGER encodings.
  test.each([0, 1, 31, 32, 126, 127, 128, 129, 255, 256, 32767, 32768, 65535, 65536, 70000])(
    'a preimage of %i bytes encodes as five-bells-condition does',
    (length) => {
      const preimage = Buffer.alloc(length, 0x5a);
      const theirs = fiveBellsFulfillmentOf(preimage);
      const condition = deriveCryptoCondition(preimage);
      expect(serializeConditionUri(condition)).toBe(theirs.getConditionUri());
      expect(serializeConditionBinary(condition).equals(theirs.getConditionBinary())).toBe(true);
      expect(serializeFulfillmentBinary(preimage).equals(theirs.serializeBinary())).toBe(true);
      expect(parseConditionBinary(theirs.getConditionBinary()).cost).toBe(length);
      expect(parseFulfillmentBinary(theirs.serializeBinary()).length).toBe(length);
    },
  );
});

describe('raw conditions, as the ledgers store them', () => {
  const preimage = Buffer.alloc(32, 7);
  const condition = createHash('sha256').update(preimage).digest();

  test('conditionFromPreimage is SHA-256 of the preimage', () => {
    expect(conditionFromPreimage(preimage)).toEqual(condition);
    expect(conditionFromPreimage(preimage).length).toBe(CONDITION_LENGTH);
  });

  test.each([
    ['the preimage', preimage, condition, true],
    ['another preimage', Buffer.alloc(32, 8), condition, false],
    ['the condition itself', condition, condition, false],
    ['a preimage one byte short', preimage.subarray(1), condition, false],
    ['a condition of 31 bytes', preimage, condition.subarray(1), false],
    ['an empty condition', preimage, Buffer.alloc(0), false],
    ['an empty preimage of the empty digest', Buffer.alloc(0), conditionFromPreimage(Buffer.alloc(0)), true],
  ])('isFulfillmentOf: %s → %s', (_case, candidate, expectedCondition, expected) => {
    expect(isFulfillmentOf(candidate, expectedCondition)).toBe(expected);
  });
});

describe('parseConditionUri', () => {
  const valid = 'ni:///sha-256;f4OxZX_x_FO5LcGBSKHWXfwtSx-j1ncoSt3SABJtkGk?fpt=preimage-sha-256&cost=12';

  test('reads the fingerprint and cost', () => {
    expect(parseConditionUri(valid)).toEqual({ fingerprint: conditionFromPreimage(helloWorld), cost: 12 });
  });

  test('reads the largest cost', () => {
    expect(parseConditionUri(valid.replace('cost=12', `cost=${CRYPTO_CONDITION_COST_MAX}`)).cost).toBe(
      CRYPTO_CONDITION_COST_MAX,
    );
  });

  test.each([
    ['the ni:// spelling', valid.replace('ni:///', 'ni://'), /not a condition URI/],
    ['the ni: spelling', valid.replace('ni:///', 'ni:'), /not a condition URI/],
    ['an authority', valid.replace('ni:///', 'ni://example.com/'), /not a condition URI/],
    ['another hash', valid.replace('sha-256', 'sha-512'), /not a condition URI/],
    ['base64 padding', valid.replace('kGk?', 'kGk=?'), /not a condition URI/],
    ['standard base64 characters', valid.replace('_x_', '/x/'), /not a condition URI/],
    ['a fingerprint one character short', valid.replace('kGk?', 'kG?'), /not a condition URI/],
    ['a non-canonical last character', valid.replace('kGk?', 'kGl?'), /not canonical/],
    ['another type', valid.replace('preimage-sha-256', 'prefix-sha-256'), /unsupported condition type prefix-sha-256/],
    [
      'parameters in another order',
      valid.replace('fpt=preimage-sha-256&cost=12', 'cost=12&fpt=preimage-sha-256'),
      /not a condition URI/,
    ],
    ['no cost', valid.replace('&cost=12', ''), /not a condition URI/],
    ['a cost with a leading zero', valid.replace('cost=12', 'cost=012'), /not a condition URI/],
    ['a negative cost', valid.replace('cost=12', 'cost=-12'), /not a condition URI/],
    ['a cost above 2^32 - 1', valid.replace('cost=12', 'cost=4294967296'), /exceeds/],
    ['an extra parameter', `${valid}&subtypes=prefix-sha-256`, /not a condition URI/],
    ['a trailing space', `${valid} `, /not a condition URI/],
    ['an empty string', '', /not a condition URI/],
  ])('refuses %s', (_case, uri, message) => {
    // Guards the table itself: a replace that matched nothing would test the valid URI.
    expect(uri).not.toBe(valid);
    expect(() => parseConditionUri(uri)).toThrow(InvalidCryptoConditionError);
    expect(() => parseConditionUri(uri)).toThrow(message);
  });
});

describe('parseConditionBinary', () => {
  test.each([
    ['nothing', '', /no tag/],
    [
      'a prefix-sha-256 condition',
      'A1258020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C',
      /unsupported type prefix-sha-256/,
    ],
    [
      'an ed25519-sha-256 condition',
      'A4258020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C',
      /unsupported type ed25519-sha-256/,
    ],
    [
      'a primitive outer tag',
      '80258020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C',
      /not a crypto-condition type/,
    ],
    [
      'a universal SEQUENCE',
      '30258020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C',
      /not a crypto-condition type/,
    ],
    ['a multi-byte tag', 'BF', /multi-byte tags/],
    [
      'a 31-byte fingerprint',
      'A024801F 83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C',
      /31 bytes, expected 32/,
    ],
    [
      'a 33-byte fingerprint',
      'A0268021 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D906900 81010C',
      /33 bytes, expected 32/,
    ],
    [
      'cost before fingerprint',
      'A025 81010C 8020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069',
      /fingerprint: tag 0x81/,
    ],
    [
      'a cost with the wrong tag',
      'A0258020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 82010C',
      /cost: tag 0x82/,
    ],
    ['no cost', 'A0228020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069', /truncated cost/],
    [
      'an empty cost',
      'A0248020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 8100',
      /cost is empty/,
    ],
    ['a negative cost', 'A0258020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 810180', /negative/],
    [
      'a cost with a redundant zero',
      'A0268020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 8102000C',
      /not minimally encoded/,
    ],
    [
      'a cost of 2^32',
      'A0298020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81050100000000',
      /exceeds/,
    ],
    [
      'a cost of six octets',
      'A02A8020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 8106010000000000',
      /too large/,
    ],
    [
      'a byte after the condition',
      'A0258020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C 00',
      /1 trailing byte\(s\) after the condition/,
    ],
    [
      'a byte inside after the cost',
      'A0268020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C 00',
      /trailing bytes inside the condition/,
    ],
    [
      'a length past the end',
      'A0268020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C',
      /truncated condition/,
    ],
    [
      'an indefinite length',
      'A0808020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C 0000',
      /indefinite/,
    ],
    [
      'a long-form length below 128',
      'A081258020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C',
      /not minimally encoded/,
    ],
    [
      'a length with a leading zero octet',
      'A08200258020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C',
      /not minimally encoded/,
    ],
    ['a length of five octets', 'A0850000000025', /too large/],
    ['a cut length', 'A082', /incomplete length/],
    ['a tag alone', 'A0', /no length/],
  ])('refuses %s', (_case, input, message) => {
    expect(() => parseConditionBinary(hex(input))).toThrow(InvalidCryptoConditionError);
    expect(() => parseConditionBinary(hex(input))).toThrow(message);
  });

  test('the rejection cases start from a valid condition', () => {
    expect(parseConditionBinary(helloWorldCondition).cost).toBe(12);
  });

  test.each([
    [0, '810100'],
    [127, '81017F'],
    [128, '81020080'],
    [255, '810200FF'],
    [256, '81020100'],
    [CRYPTO_CONDITION_COST_MAX, '810500FFFFFFFF'],
  ])('writes and reads the cost %i as the INTEGER %s', (cost, costHex) => {
    const condition = { fingerprint: conditionFromPreimage(helloWorld), cost };
    const binary = serializeConditionBinary(condition);
    expect(
      binary
        .subarray(2 + 34)
        .toString('hex')
        .toUpperCase(),
    ).toBe(costHex);
    expect(parseConditionBinary(binary)).toEqual(condition);
  });

  test.each([
    ['a fingerprint of 31 bytes', { fingerprint: Buffer.alloc(31), cost: 1 }],
    ['a negative cost', { fingerprint: Buffer.alloc(32), cost: -1 }],
    ['a fractional cost', { fingerprint: Buffer.alloc(32), cost: 1.5 }],
    ['a cost above 2^32 - 1', { fingerprint: Buffer.alloc(32), cost: CRYPTO_CONDITION_COST_MAX + 1 }],
  ])('refuses to write %s', (_case, condition) => {
    expect(() => serializeConditionBinary(condition)).toThrow(InvalidCryptoConditionError);
    expect(() => serializeConditionUri(condition)).toThrow(InvalidCryptoConditionError);
  });
});

describe('parseFulfillmentBinary', () => {
  test.each([
    ['nothing', '', /no tag/],
    ['a prefix-sha-256 fulfillment', 'A1028000', /unsupported type prefix-sha-256/],
    [
      'a condition instead',
      'A0258020 7F83B1657FF1FC53B92DC18148A1D65DFC2D4B1FA3D677284ADDD200126D9069 81010C',
      /trailing bytes inside the fulfillment/,
    ],
    ['the wrong inner tag', 'A0028100', /preimage: tag 0x81/],
    ['a constructed inner tag', 'A002A000', /preimage: tag 0xa0/],
    ['a preimage past the end', 'A0058004616161', /truncated preimage/],
    ['a byte after the fulfillment', 'A005800361616100', /1 trailing byte\(s\) after the fulfillment/],
    ['a byte inside after the preimage', 'A006800361616100', /trailing bytes inside the fulfillment/],
    ['an empty body', 'A000', /truncated preimage: no tag/],
    ['a long-form length below 128', 'A081058003616161', /not minimally encoded/],
  ])('refuses %s', (_case, input, message) => {
    expect(() => parseFulfillmentBinary(hex(input))).toThrow(InvalidCryptoConditionError);
    expect(() => parseFulfillmentBinary(hex(input))).toThrow(message);
  });

  test('returns a copy of the preimage', () => {
    const binary = serializeFulfillmentBinary(Buffer.from('aaa'));
    const preimage = parseFulfillmentBinary(binary);
    binary.fill(0);
    expect(preimage.toString()).toBe('aaa');
  });
});

describe('validateFulfillment', () => {
  const fulfillment = serializeFulfillmentBinary(helloWorld);
  const condition = deriveCryptoCondition(helloWorld);

  test.each([
    ['a parsed condition', condition],
    ['a condition URI', serializeConditionUri(condition)],
    ['a DER condition', serializeConditionBinary(condition)],
  ])('accepts the matching fulfillment against %s', (_case, expected) => {
    expect(validateFulfillment(fulfillment, expected)).toBe(true);
  });

  test.each([
    ['another preimage', serializeFulfillmentBinary(Buffer.from('Hello World?')), condition],
    ['the right fingerprint with another cost', fulfillment, { fingerprint: condition.fingerprint, cost: 13 }],
    ['another fingerprint with the right cost', fulfillment, { fingerprint: Buffer.alloc(32), cost: 12 }],
  ])('refuses %s', (_case, candidate, expected) => {
    expect(validateFulfillment(candidate, expected)).toBe(false);
  });

  test('throws on a malformed fulfillment rather than answering false', () => {
    expect(() => validateFulfillment(Buffer.from('nonsense'), condition)).toThrow(InvalidCryptoConditionError);
  });

  test('throws on a malformed condition', () => {
    expect(() => validateFulfillment(fulfillment, 'ni:///nonsense')).toThrow(InvalidCryptoConditionError);
  });

  test('a fulfillment validates against its own condition and no other', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (first, second) => {
        fc.pre(!Buffer.from(first).equals(Buffer.from(second)));
        const firstFulfillment = serializeFulfillmentBinary(first);
        expect(validateFulfillment(firstFulfillment, serializeConditionUri(deriveCryptoCondition(first)))).toBe(true);
        expect(validateFulfillment(firstFulfillment, serializeConditionUri(deriveCryptoCondition(second)))).toBe(false);
      }),
    );
  });
});
