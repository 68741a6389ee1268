/**
 * The few Octet Encoding Rules (OER, ITU-T X.696) primitives the ILP packet needs: unsigned
 * integers of fixed width and variable-length octet strings with a length determinant.
 *
 * The reader is strict because a packet's bytes are hashed into its condition: a second spelling
 * of the same packet (a non-minimal length, a trailing byte) would be a second condition for the
 * same payment. Every decoding failure is an {@link InvalidPacketError} (ILP error F01).
 */
import { InvalidPacketError } from './errors';

/** The largest value of an OER UInt64: 2^64 - 1. */
export const UINT64_MAX = 0xffff_ffff_ffff_ffffn;

// A length determinant of more than 6 octets would describe more than 2^48 bytes: no packet has
// that many, and 6 octets still fit a JavaScript number exactly.
const LENGTH_OF_LENGTH_MAX = 6;

const LONG_FORM_FLAG = 0x80;

/** Writes OER values into one buffer, in order. */
export class OerWriter {
  private readonly parts: Buffer[] = [];

  /** Writes one octet. */
  writeUInt8(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xff) {
      throw new InvalidPacketError(`UInt8 out of range: ${value}`);
    }
    this.parts.push(Buffer.of(value));
    return this;
  }

  /** Writes an unsigned 64-bit integer as 8 octets, big-endian. */
  writeUInt64(value: bigint): this {
    if (value < 0n || value > UINT64_MAX) {
      throw new InvalidPacketError(`UInt64 out of range: ${value}`);
    }
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64BE(value);
    this.parts.push(bytes);
    return this;
  }

  /** Writes a length determinant (short form below 128, else minimal long form) and the octets. */
  writeVarOctetString(octets: Uint8Array): this {
    this.parts.push(encodeLengthDeterminant(octets.length), Buffer.from(octets));
    return this;
  }

  /** The bytes written so far. */
  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** The OER length determinant of `length`: one octet below 128, else 0x80 | n and n octets. */
export function encodeLengthDeterminant(length: number): Buffer {
  if (length < LONG_FORM_FLAG) {
    return Buffer.of(length);
  }
  const octets: number[] = [];
  for (let remaining = length; remaining > 0; remaining = Math.floor(remaining / 256)) {
    octets.unshift(remaining % 256);
  }
  return Buffer.from([LONG_FORM_FLAG | octets.length, ...octets]);
}

/** Reads OER values from a buffer, in order, refusing anything truncated or non-canonical. */
export class OerReader {
  private offset = 0;

  constructor(private readonly buffer: Buffer) {}

  /** How many bytes are left to read. */
  get remainingLength(): number {
    return this.buffer.length - this.offset;
  }

  /** Reads one octet. */
  readUInt8(field: string): number {
    this.requireBytes(1, field);
    return this.buffer[this.offset++];
  }

  /** Reads an unsigned 64-bit integer from 8 octets, big-endian. */
  readUInt64(field: string): bigint {
    this.requireBytes(8, field);
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  /** Reads a length determinant and that many octets. The result shares memory with the input. */
  readVarOctetString(field: string): Buffer {
    const length = this.readLengthDeterminant(field);
    this.requireBytes(length, field);
    const octets = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return octets;
  }

  /** Fails unless every byte has been read: trailing bytes would be a second spelling. */
  assertEnd(what: string): void {
    if (this.remainingLength !== 0) {
      throw new InvalidPacketError(`${this.remainingLength} trailing byte(s) after ${what}`);
    }
  }

  private readLengthDeterminant(field: string): number {
    const first = this.readUInt8(`length of ${field}`);
    if ((first & LONG_FORM_FLAG) === 0) {
      return first;
    }
    const lengthOfLength = first & ~LONG_FORM_FLAG;
    if (lengthOfLength === 0) {
      throw new InvalidPacketError(`length of ${field}: indefinite length is not allowed`);
    }
    if (lengthOfLength > LENGTH_OF_LENGTH_MAX) {
      throw new InvalidPacketError(`length of ${field}: ${lengthOfLength} length octets is too many`);
    }
    this.requireBytes(lengthOfLength, `length of ${field}`);
    const length = this.buffer.readUIntBE(this.offset, lengthOfLength);
    if (this.buffer[this.offset] === 0 || length < LONG_FORM_FLAG) {
      throw new InvalidPacketError(`length of ${field}: not minimally encoded`);
    }
    this.offset += lengthOfLength;
    return length;
  }

  private requireBytes(count: number, field: string): void {
    if (this.remainingLength < count) {
      throw new InvalidPacketError(`truncated ${field}: needs ${count} byte(s), ${this.remainingLength} left`);
    }
  }
}
