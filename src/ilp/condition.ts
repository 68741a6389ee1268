/**
 * PREIMAGE-SHA-256 crypto-conditions (draft-thomas-crypto-conditions, as implemented by
 * five-bells-condition 5.x) and the raw 32-byte form Interclear's ledgers store.
 *
 * A ledger holds a transfer until someone shows a preimage whose SHA-256 is the transfer's
 * condition. The standard encodings (condition URI, DER condition, DER fulfillment) exist so that
 * conditions can be exchanged with other Interledger software; inside Interclear the condition is
 * the 32-byte digest and the fulfillment is the preimage itself.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { encodeLengthDeterminant } from './oer';

/** Length of a SHA-256 digest, and so of a raw condition, in bytes. */
export const CONDITION_LENGTH = 32;

/** The largest cost a condition can carry: the ASN.1 type is INTEGER (0..4294967295). */
export const CRYPTO_CONDITION_COST_MAX = 0xffff_ffff;

/** The registry name of the only crypto-condition type this library supports. */
export const PREIMAGE_SHA256_TYPE_NAME = 'preimage-sha-256';

/** A PREIMAGE-SHA-256 crypto-condition: the digest of a preimage and the preimage's length. */
export interface CryptoCondition {
  /** SHA-256 of the preimage, 32 bytes. */
  readonly fingerprint: Buffer;
  /** Length of the preimage in bytes, which the draft calls the cost of validating it. */
  readonly cost: number;
}

/** A condition URI, DER condition or DER fulfillment is malformed or of an unsupported type. */
export class InvalidCryptoConditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidCryptoConditionError';
  }
}

// The type ids of the crypto-conditions draft, used as context tags. Only PREIMAGE-SHA-256 is
// supported; the others are named so that a rejection says what was received.
const typeNamesById = ['preimage-sha-256', 'prefix-sha-256', 'threshold-sha-256', 'rsa-sha-256', 'ed25519-sha-256'];

// DER identifier octets (X.690 §8.1.2): context-specific class; constructed for the CHOICE
// alternative [0], primitive for the implicitly tagged SEQUENCE members [0] and [1].
const CONTEXT_CONSTRUCTED = 0xa0;
const CONTEXT_PRIMITIVE = 0x80;
const TAG_NUMBER_MASK = 0x1f;
const PREIMAGE_SHA256_TYPE_ID = 0;
const PREIMAGE_SHA256_TAG = CONTEXT_CONSTRUCTED | PREIMAGE_SHA256_TYPE_ID;
// Members of the SEQUENCEs, numbered in order: [0] fingerprint and [1] cost of a condition,
// [0] preimage of a fulfillment.
const FINGERPRINT_TAG = CONTEXT_PRIMITIVE | 0;
const COST_TAG = CONTEXT_PRIMITIVE | 1;
const PREIMAGE_TAG = CONTEXT_PRIMITIVE | 0;

// Lengths above 2^32 - 1 cannot occur: no preimage is longer than the cost can say.
const DER_LENGTH_OF_LENGTH_MAX = 4;

const conditionUriPattern = /^ni:\/\/\/sha-256;([A-Za-z0-9_-]{43})\?fpt=([a-z0-9-]+)&cost=(0|[1-9][0-9]{0,9})$/;

/** SHA-256 of `preimage`: the raw 32-byte condition Interclear's ledgers store. */
export function conditionFromPreimage(preimage: Uint8Array): Buffer {
  return createHash('sha256').update(preimage).digest();
}

/**
 * True when SHA-256 of `preimage` equals the raw `condition`. The comparison takes the same time
 * wherever the digests differ, so timing does not tell an attacker how close a guess was.
 */
export function isFulfillmentOf(preimage: Uint8Array, condition: Uint8Array): boolean {
  if (condition.length !== CONDITION_LENGTH) {
    return false;
  }
  return timingSafeEqual(conditionFromPreimage(preimage), condition);
}

/**
 * The crypto-condition of a preimage of any length.
 *
 * @throws InvalidCryptoConditionError when the preimage is longer than the cost can express.
 */
export function deriveCryptoCondition(preimage: Uint8Array): CryptoCondition {
  if (preimage.length > CRYPTO_CONDITION_COST_MAX) {
    throw new InvalidCryptoConditionError(`preimage of ${preimage.length} bytes exceeds the maximum cost`);
  }
  return { fingerprint: conditionFromPreimage(preimage), cost: preimage.length };
}

/** The condition URI: `ni:///sha-256;<base64url fingerprint>?fpt=preimage-sha-256&cost=<cost>`. */
export function serializeConditionUri(condition: CryptoCondition): string {
  assertCryptoCondition(condition);
  const fingerprint = condition.fingerprint.toString('base64url');
  return `ni:///sha-256;${fingerprint}?fpt=${PREIMAGE_SHA256_TYPE_NAME}&cost=${condition.cost}`;
}

/**
 * Reads a condition URI in the form {@link serializeConditionUri} writes: `ni:///` (RFC 6920 with
 * an empty authority), an unpadded base64url fingerprint of 32 bytes, then `fpt` and `cost` in
 * that order.
 *
 * @throws InvalidCryptoConditionError for any other form, another type or a cost above 2^32 - 1.
 */
export function parseConditionUri(uri: string): CryptoCondition {
  const match = typeof uri === 'string' ? conditionUriPattern.exec(uri) : null;
  if (match === null) {
    throw new InvalidCryptoConditionError(`not a condition URI: ${JSON.stringify(String(uri).slice(0, 200))}`);
  }
  const [, encodedFingerprint, typeName, encodedCost] = match;
  if (typeName !== PREIMAGE_SHA256_TYPE_NAME) {
    throw new InvalidCryptoConditionError(`unsupported condition type ${typeName}`);
  }
  const fingerprint = Buffer.from(encodedFingerprint, 'base64url');
  // 43 characters carry 258 bits; a fingerprint whose last 2 bits are not zero is a second
  // spelling of the same 32 bytes.
  if (fingerprint.toString('base64url') !== encodedFingerprint) {
    throw new InvalidCryptoConditionError('fingerprint is not canonical base64url');
  }
  const cost = Number(encodedCost);
  if (cost > CRYPTO_CONDITION_COST_MAX) {
    throw new InvalidCryptoConditionError(`cost ${encodedCost} exceeds ${CRYPTO_CONDITION_COST_MAX}`);
  }
  return { fingerprint, cost };
}

/** The DER condition: `[0] { [0] fingerprint, [1] cost }`. */
export function serializeConditionBinary(condition: CryptoCondition): Buffer {
  assertCryptoCondition(condition);
  return encodeTlv(
    PREIMAGE_SHA256_TAG,
    Buffer.concat([
      encodeTlv(FINGERPRINT_TAG, condition.fingerprint),
      encodeTlv(COST_TAG, encodeUnsignedInteger(condition.cost)),
    ]),
  );
}

/**
 * Reads a DER condition.
 *
 * @throws InvalidCryptoConditionError when it is not a PREIMAGE-SHA-256 condition in canonical
 *   DER: another type, a fingerprint that is not 32 bytes, a negative, non-minimal or too large
 *   cost, a malformed length, or trailing bytes.
 */
export function parseConditionBinary(der: Uint8Array): CryptoCondition {
  const body = readOnlyTlv(toBuffer(der), 'condition');
  expectPreimageType(body.tag, 'condition');
  const fingerprintField = readTlv(body.value, 0, 'fingerprint');
  expectTag(fingerprintField.tag, FINGERPRINT_TAG, 'fingerprint');
  if (fingerprintField.value.length !== CONDITION_LENGTH) {
    throw new InvalidCryptoConditionError(`fingerprint is ${fingerprintField.value.length} bytes, expected 32`);
  }
  const costField = readTlv(body.value, fingerprintField.end, 'cost');
  expectTag(costField.tag, COST_TAG, 'cost');
  if (costField.end !== body.value.length) {
    throw new InvalidCryptoConditionError('trailing bytes inside the condition');
  }
  return { fingerprint: Buffer.from(fingerprintField.value), cost: decodeUnsignedInteger(costField.value) };
}

/** The DER fulfillment: `[0] { [0] preimage }`. */
export function serializeFulfillmentBinary(preimage: Uint8Array): Buffer {
  return encodeTlv(PREIMAGE_SHA256_TAG, encodeTlv(PREIMAGE_TAG, preimage));
}

/**
 * Reads a DER fulfillment and returns its preimage (a copy).
 *
 * @throws InvalidCryptoConditionError when it is not a PREIMAGE-SHA-256 fulfillment in canonical
 *   DER.
 */
export function parseFulfillmentBinary(der: Uint8Array): Buffer {
  const body = readOnlyTlv(toBuffer(der), 'fulfillment');
  expectPreimageType(body.tag, 'fulfillment');
  const preimageField = readTlv(body.value, 0, 'preimage');
  expectTag(preimageField.tag, PREIMAGE_TAG, 'preimage');
  if (preimageField.end !== body.value.length) {
    throw new InvalidCryptoConditionError('trailing bytes inside the fulfillment');
  }
  return Buffer.from(preimageField.value);
}

/**
 * True when the DER `fulfillment` fulfils `condition` (a condition URI, a DER condition or a
 * parsed one): the fingerprint AND the cost derived from the preimage must both match, as the
 * draft compares whole conditions.
 *
 * @throws InvalidCryptoConditionError when either input is malformed; a well-formed mismatch is
 *   `false`.
 */
export function validateFulfillment(
  fulfillment: Uint8Array,
  condition: CryptoCondition | string | Uint8Array,
): boolean {
  const expected =
    typeof condition === 'string'
      ? parseConditionUri(condition)
      : condition instanceof Uint8Array
        ? parseConditionBinary(condition)
        : condition;
  assertCryptoCondition(expected);
  const preimage = parseFulfillmentBinary(fulfillment);
  return preimage.length === expected.cost && isFulfillmentOf(preimage, expected.fingerprint);
}

function assertCryptoCondition(condition: CryptoCondition): void {
  if (!(condition.fingerprint instanceof Uint8Array) || condition.fingerprint.length !== CONDITION_LENGTH) {
    throw new InvalidCryptoConditionError('fingerprint must be 32 bytes');
  }
  if (!Number.isInteger(condition.cost) || condition.cost < 0 || condition.cost > CRYPTO_CONDITION_COST_MAX) {
    throw new InvalidCryptoConditionError(`cost must be an integer from 0 to ${CRYPTO_CONDITION_COST_MAX}`);
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidCryptoConditionError('expected a Buffer');
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// DER and OER write a definite length the same way: short form below 128, else minimal long form.
function encodeTlv(tag: number, value: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(tag), encodeLengthDeterminant(value.length), value]);
}

// A DER INTEGER is minimal two's complement: an unsigned value whose top bit is set needs a
// leading zero octet so it does not read as negative.
function encodeUnsignedInteger(value: number): Buffer {
  const octets: number[] = [];
  for (let remaining = value; remaining > 0; remaining = Math.floor(remaining / 256)) {
    octets.unshift(remaining % 256);
  }
  if (octets.length === 0 || octets[0] >= 0x80) {
    octets.unshift(0);
  }
  return Buffer.from(octets);
}

function decodeUnsignedInteger(octets: Buffer): number {
  if (octets.length === 0) {
    throw new InvalidCryptoConditionError('cost is empty');
  }
  if (octets[0] >= 0x80) {
    throw new InvalidCryptoConditionError('cost is negative');
  }
  if (octets.length > 1 && octets[0] === 0 && octets[1] < 0x80) {
    throw new InvalidCryptoConditionError('cost is not minimally encoded');
  }
  if (octets.length > 5) {
    throw new InvalidCryptoConditionError('cost is too large');
  }
  const value = octets.readUIntBE(0, octets.length);
  if (value > CRYPTO_CONDITION_COST_MAX) {
    throw new InvalidCryptoConditionError(`cost ${value} exceeds ${CRYPTO_CONDITION_COST_MAX}`);
  }
  return value;
}

interface Tlv {
  tag: number;
  value: Buffer;
  /** Offset just past the value, in the buffer the element was read from. */
  end: number;
}

function readOnlyTlv(der: Buffer, what: string): Tlv {
  const element = readTlv(der, 0, what);
  if (element.end !== der.length) {
    throw new InvalidCryptoConditionError(`${der.length - element.end} trailing byte(s) after the ${what}`);
  }
  return element;
}

function readTlv(der: Buffer, start: number, what: string): Tlv {
  if (start >= der.length) {
    throw new InvalidCryptoConditionError(`truncated ${what}: no tag`);
  }
  const tag = der[start];
  if ((tag & TAG_NUMBER_MASK) === TAG_NUMBER_MASK) {
    throw new InvalidCryptoConditionError(`${what}: multi-byte tags are not used by crypto-conditions`);
  }
  let offset = start + 1;
  if (offset >= der.length) {
    throw new InvalidCryptoConditionError(`truncated ${what}: no length`);
  }
  const first = der[offset++];
  let length = first;
  if (first & 0x80) {
    const lengthOfLength = first & 0x7f;
    if (lengthOfLength === 0) {
      throw new InvalidCryptoConditionError(`${what}: indefinite length is not DER`);
    }
    if (lengthOfLength > DER_LENGTH_OF_LENGTH_MAX) {
      throw new InvalidCryptoConditionError(`${what}: length of ${lengthOfLength} octets is too large`);
    }
    if (offset + lengthOfLength > der.length) {
      throw new InvalidCryptoConditionError(`truncated ${what}: incomplete length`);
    }
    length = der.readUIntBE(offset, lengthOfLength);
    if (der[offset] === 0 || length < 0x80) {
      throw new InvalidCryptoConditionError(`${what}: length is not minimally encoded`);
    }
    offset += lengthOfLength;
  }
  const end = offset + length;
  if (end > der.length) {
    throw new InvalidCryptoConditionError(
      `truncated ${what}: ${length} byte(s) announced, ${der.length - offset} present`,
    );
  }
  return { tag, value: der.subarray(offset, end), end };
}

function expectPreimageType(tag: number, what: string): void {
  const typeId = tag & TAG_NUMBER_MASK;
  if ((tag & ~TAG_NUMBER_MASK) !== CONTEXT_CONSTRUCTED) {
    throw new InvalidCryptoConditionError(`${what}: tag 0x${tag.toString(16)} is not a crypto-condition type`);
  }
  if (typeId !== PREIMAGE_SHA256_TYPE_ID) {
    const typeName = typeNamesById[typeId] ?? `type ${typeId}`;
    throw new InvalidCryptoConditionError(`${what}: unsupported type ${typeName}`);
  }
}

function expectTag(actual: number, expected: number, what: string): void {
  if (actual !== expected) {
    throw new InvalidCryptoConditionError(`${what}: tag 0x${actual.toString(16)}, expected 0x${expected.toString(16)}`);
  }
}
