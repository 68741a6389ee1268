import { InvalidPacketError } from './errors';
import { OerReader, OerWriter, UINT64_MAX, encodeLengthDeterminant } from './oer';

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s/g, ''), 'hex');
}

describe('encodeLengthDeterminant', () => {
  test.each([
    [0, '00'],
    [1, '01'],
    [127, '7f'],
    [128, '8180'],
    [255, '81ff'],
    [256, '820100'],
    [65535, '82ffff'],
    [65536, '83010000'],
  ])('writes %i as %s', (length, expected) => {
    expect(encodeLengthDeterminant(length).toString('hex')).toBe(expected);
  });
});

describe('OerWriter', () => {
  test('writes values in order', () => {
    const bytes = new OerWriter().writeUInt8(1).writeUInt64(258n).writeVarOctetString(Buffer.from('ab')).toBuffer();
    expect(bytes.toString('hex')).toBe('01' + '0000000000000102' + '02' + '6162');
  });

  test.each([
    [0n, '0000000000000000'],
    [UINT64_MAX, 'ffffffffffffffff'],
  ])('writes the UInt64 %s big-endian', (value, expected) => {
    expect(new OerWriter().writeUInt64(value).toBuffer().toString('hex')).toBe(expected);
  });

  test.each([[-1n], [UINT64_MAX + 1n]])('refuses the UInt64 %s', (value) => {
    expect(() => new OerWriter().writeUInt64(value)).toThrow(InvalidPacketError);
  });

  test.each([[-1], [256], [1.5]])('refuses the UInt8 %s', (value) => {
    expect(() => new OerWriter().writeUInt8(value)).toThrow(InvalidPacketError);
  });

  test('writes a long octet string with a long-form length', () => {
    const bytes = new OerWriter().writeVarOctetString(Buffer.alloc(300, 7)).toBuffer();
    expect(bytes.subarray(0, 3).toString('hex')).toBe('82012c');
    expect(bytes.length).toBe(303);
  });
});

describe('OerReader', () => {
  test.each([
    ['short form', '03 616263', 'abc'],
    ['empty', '00', ''],
    ['long form', `8180 ${'61'.repeat(128)}`, 'a'.repeat(128)],
  ])('reads a var-octet-string in %s', (_case, input, expected) => {
    const reader = new OerReader(hex(input));
    expect(reader.readVarOctetString('field').toString('latin1')).toBe(expected);
    expect(() => reader.assertEnd('input')).not.toThrow();
  });

  test.each([
    ['indefinite length', '80', /indefinite/],
    ['long form for a short length', '8105 6161616161', /not minimally encoded/],
    ['leading zero length octet', `820080 ${'61'.repeat(128)}`, /not minimally encoded/],
    ['seven length octets', '87 00000000000001', /too many/],
    ['missing length octets', '82 01', /truncated/],
    ['fewer bytes than announced', '05 6161', /truncated field: needs 5 byte\(s\), 2 left/],
    ['no length at all', '', /truncated length of field/],
  ])('refuses %s', (_case, input, message) => {
    expect(() => new OerReader(hex(input)).readVarOctetString('field')).toThrow(InvalidPacketError);
    expect(() => new OerReader(hex(input)).readVarOctetString('field')).toThrow(message);
  });

  test('reads a UInt64 up to 2^64 - 1', () => {
    expect(new OerReader(hex('ffffffffffffffff')).readUInt64('amount')).toBe(UINT64_MAX);
  });

  test('refuses a truncated UInt64', () => {
    expect(() => new OerReader(hex('ffffffffffffff')).readUInt64('amount')).toThrow('truncated amount');
  });

  test('reports trailing bytes', () => {
    const reader = new OerReader(hex('01 02'));
    reader.readUInt8('type');
    expect(reader.remainingLength).toBe(1);
    expect(() => reader.assertEnd('the packet')).toThrow('1 trailing byte(s) after the packet');
  });
});
