/**
 * The ILP payment packet of Interledger RFC 0003 (2017, ILPv1), byte-exact with `ilp-packet` 1.x:
 *
 *   envelope = type (UInt8, 1 = IlpPayment) ‖ content as a var-octet-string
 *   content  = amount (UInt64) ‖ account (var-octet-string, ASCII) ‖ data (var-octet-string)
 *              ‖ extensions (UInt8, 0 = none)
 *
 * The packet travels unchanged with all transfers of a payment and its exact bytes derive the
 * receiver's fulfillment, so reading is strict: one packet has exactly one spelling.
 */
import { isValidIlpAddress } from './address';
import { InvalidPacketError } from './errors';
import { OerReader, OerWriter, UINT64_MAX } from './oer';

/** The envelope type of an ILP payment packet. */
export const TYPE_ILP_PAYMENT = 1;

// ilp-packet 1.x writes a single zero octet where RFC 0003 reserves room for extensions; we write
// the same and accept nothing else, because unknown extensions could carry meaning we ignore.
const NO_EXTENSIONS = 0;

/** The content of an ILP payment packet. */
export interface IlpPayment {
  /** Amount to deliver to `account`, in the destination ledger's minor units (UInt64). */
  amount: bigint;
  /** ILP address of the destination account (RFC 0015). */
  account: string;
  /** Data for the receiver, opaque to connectors. */
  data: Buffer;
}

/**
 * Serializes an ILP payment packet.
 *
 * @throws InvalidPacketError when the amount is outside UInt64, the account is not an ILP address
 *   or the data is not a byte array.
 */
export function serializeIlpPayment(payment: IlpPayment): Buffer {
  if (typeof payment.amount !== 'bigint' || payment.amount < 0n || payment.amount > UINT64_MAX) {
    throw new InvalidPacketError(`amount must be a bigint from 0 to 2^64 - 1, got ${String(payment.amount)}`);
  }
  if (!isValidIlpAddress(payment.account)) {
    throw new InvalidPacketError(`account is not an ILP address: ${JSON.stringify(payment.account)}`);
  }
  if (!(payment.data instanceof Uint8Array)) {
    throw new InvalidPacketError('data must be a Buffer');
  }
  const content = new OerWriter()
    .writeUInt64(payment.amount)
    .writeVarOctetString(Buffer.from(payment.account, 'ascii'))
    .writeVarOctetString(payment.data)
    .writeUInt8(NO_EXTENSIONS)
    .toBuffer();
  return new OerWriter().writeUInt8(TYPE_ILP_PAYMENT).writeVarOctetString(content).toBuffer();
}

/**
 * Reads an ILP payment packet. The returned data is a copy, so the caller may keep it.
 *
 * @throws InvalidPacketError (ILP error F01) when the type is not 1, a length is malformed or not
 *   minimal, the packet is truncated or has trailing bytes, the extensions octet is not 0, or the
 *   account is not an ILP address.
 */
export function deserializeIlpPayment(packet: Uint8Array): IlpPayment {
  if (!(packet instanceof Uint8Array)) {
    throw new InvalidPacketError('packet must be a Buffer');
  }
  const envelope = new OerReader(Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength));
  const type = envelope.readUInt8('type');
  if (type !== TYPE_ILP_PAYMENT) {
    throw new InvalidPacketError(`packet type is ${type}, expected ${TYPE_ILP_PAYMENT} (ILP payment)`);
  }
  const content = new OerReader(envelope.readVarOctetString('content'));
  envelope.assertEnd('the packet');

  const amount = content.readUInt64('amount');
  const accountBytes = content.readVarOctetString('account');
  const data = Buffer.from(content.readVarOctetString('data'));
  const extensions = content.readUInt8('extensions');
  if (extensions !== NO_EXTENSIONS) {
    throw new InvalidPacketError(`extensions octet is ${extensions}, expected ${NO_EXTENSIONS}`);
  }
  content.assertEnd('the packet content');

  // latin1 maps every byte to one character, so a byte above 127 cannot pass the address check
  // by being folded into ASCII (Node's 'ascii' decoder drops the high bit).
  const account = accountBytes.toString('latin1');
  if (!isValidIlpAddress(account)) {
    throw new InvalidPacketError(
      `account is not an ILP address: ${JSON.stringify(accountBytes.subarray(0, 80).toString('latin1'))}`,
    );
  }
  return { amount, account, data };
}
