/**
 * The receiver's side of an Interledger Payment Request (IPR, RFC 0011) with the fulfillment
 * derivation of the Pre-Shared Key transport (PSK, RFC 0016): the receiver computes each
 * payment's fulfillment from a secret it never shares and the payment's ILP packet, so it can
 * fulfil any payment it set up without storing a per-payment secret.
 *
 * The exact construction (all HMACs are HMAC-SHA-256; `‖` is concatenation):
 *
 *   conditionKey = HMAC(secret, "ilp_psk_condition")
 *   fulfillment  = HMAC(conditionKey, packet)               32 bytes, the preimage
 *   condition    = SHA-256(fulfillment)                     32 bytes
 *
 *   tokenKey     = HMAC(secret, "ilp_ipr_payment_token")
 *   tag          = first 16 bytes of HMAC(tokenKey, receiverAddress ‖ 0x00 ‖ nonce ‖ expiresAt)
 *   token        = base64url(nonce ‖ expiresAt ‖ tag)       54 characters, no padding
 *   destination  = receiverAddress "." token
 *
 * where `packet` is the serialized ILP payment packet (amount, destination, data), `nonce` is 16
 * random bytes and `expiresAt` the payment request's expiry in Unix milliseconds as 8 bytes
 * big-endian.
 *
 * Why this construction:
 * - The fulfillment is the PSK one of RFC 0016, as the ILPv1-era PSK senders and receivers wrote
 *   it (`hmac(hmac(sharedSecret, 'ilp_psk_condition'), ilpPacket)`), so other Interledger software
 *   can check it. (ILP.js's IPR mode keyed the same HMAC with the label "ilp_ipr_condition"; one
 *   label for both keeps a single derivation.) Keying the HMAC with a derived key, not the secret
 *   itself, keeps the condition key apart from any other use of the secret (the token key).
 * - The HMAC covers the whole packet, so a connector that changes the amount, address or data
 *   changes the fulfillment the receiver computes; its SHA-256 no longer matches the transfer's
 *   condition and the receiver refuses (F05 Wrong Condition) instead of accepting less.
 * - The nonce makes every payment request a different packet, hence a different condition. Two
 *   requests for the same amount to the same account must not share a condition: once the first
 *   fulfillment is public, anyone could execute the second.
 * - The token carries the nonce and the expiry in the address itself, authenticated by a tag
 *   bound to the receiver's address. From the packet alone the receiver can tell a payment it set
 *   up (valid tag) from an unexpected one (F06), and an expired request (R00), with no lookup.
 *   16 bytes of tag leave a forger a 2^-128 chance per try; the full fulfillment HMAC is still
 *   the final check.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { assertIlpAddress, isValidIlpAddress } from './address';
import { conditionFromPreimage, isFulfillmentOf } from './condition';
import { type IlpErrorCode, InvalidPacketError } from './errors';
import { deserializeIlpPayment, type IlpPayment, serializeIlpPayment } from './packet';

/** The shortest receiver secret accepted: 32 bytes, the output size of the HMAC. */
export const RECEIVER_SECRET_LENGTH_MIN = 32;

/** Length of the random nonce in a payment token, in bytes. */
export const PAYMENT_NONCE_LENGTH = 16;

const EXPIRY_LENGTH = 8;
const TOKEN_TAG_LENGTH = 16;
const TOKEN_LENGTH = PAYMENT_NONCE_LENGTH + EXPIRY_LENGTH + TOKEN_TAG_LENGTH;

const CONDITION_KEY_LABEL = 'ilp_psk_condition';
const TOKEN_KEY_LABEL = 'ilp_ipr_payment_token';

/** What a payment token says, once its tag has been verified. */
export interface PaymentToken {
  /** The random bytes that make the payment request unique. */
  nonce: Buffer;
  /** When the payment request stops being payable. */
  expiresAt: Date;
}

/** A payment request: what the receiver gives the sender so it can pay. */
export interface PaymentRequest {
  /** The serialized ILP payment packet the sender must send unchanged. */
  packet: Buffer;
  /** SHA-256 of the fulfillment: the execution condition of every transfer of the payment. */
  condition: Buffer;
  /** The packet's destination: the receiver's account address, a dot and the payment token. */
  destinationAddress: string;
  /** The amount the receiver must get, in its ledger's minor units. */
  destinationAmount: bigint;
  /** The packet's data. */
  data: Buffer;
  /** When the receiver stops accepting this payment. */
  expiresAt: Date;
  /** The nonce in the token, for the receiver's payment history. */
  nonce: Buffer;
}

/** Why an incoming payment is refused: an RFC 0003 code and a message for the sender. */
export interface IncomingPaymentRejection {
  errorCode: IlpErrorCode;
  message: string;
}

/** An incoming payment the receiver set up and may fulfil. */
export interface IncomingPaymentAcceptance {
  /** The preimage to fulfil the transfer with. */
  fulfillment: Buffer;
  /** The packet's content. */
  payment: IlpPayment;
  /** What the packet's payment token says. */
  token: PaymentToken;
}

/**
 * Creates a payment token for `receiverAddress`.
 *
 * @throws RangeError when the secret is shorter than 32 bytes, the nonce is not 16 bytes or the
 *   expiry is not a date from 1970 on.
 * @throws InvalidIlpAddressError when `receiverAddress` is not an ILP address.
 */
export function createPaymentToken(request: {
  secret: Uint8Array;
  receiverAddress: string;
  nonce: Uint8Array;
  expiresAt: Date;
}): string {
  assertSecret(request.secret);
  assertIlpAddress(request.receiverAddress);
  if (request.nonce.length !== PAYMENT_NONCE_LENGTH) {
    throw new RangeError(`nonce must be ${PAYMENT_NONCE_LENGTH} bytes`);
  }
  const expiry = encodeExpiry(request.expiresAt);
  const tag = tokenTag(request.secret, request.receiverAddress, request.nonce, expiry);
  return Buffer.concat([request.nonce, expiry, tag]).toString('base64url');
}

/**
 * Reads a payment token and checks its tag. Returns `undefined` for anything the receiver did not
 * create for `receiverAddress` with `secret`: a malformed token, a forged or altered one, or one
 * made for another address.
 */
export function verifyPaymentToken(request: {
  secret: Uint8Array;
  receiverAddress: string;
  token: string;
}): PaymentToken | undefined {
  assertSecret(request.secret);
  const bytes = Buffer.from(request.token, 'base64url');
  // Node's base64url decoder skips characters it does not know; re-encoding catches them.
  if (bytes.length !== TOKEN_LENGTH || bytes.toString('base64url') !== request.token) {
    return undefined;
  }
  const nonce = bytes.subarray(0, PAYMENT_NONCE_LENGTH);
  const expiry = bytes.subarray(PAYMENT_NONCE_LENGTH, PAYMENT_NONCE_LENGTH + EXPIRY_LENGTH);
  const tag = bytes.subarray(PAYMENT_NONCE_LENGTH + EXPIRY_LENGTH);
  if (!timingSafeEqual(tag, tokenTag(request.secret, request.receiverAddress, nonce, expiry))) {
    return undefined;
  }
  return { nonce: Buffer.from(nonce), expiresAt: new Date(Number(expiry.readBigUInt64BE())) };
}

/**
 * The fulfillment of a packet: HMAC-SHA-256(HMAC-SHA-256(secret, "ilp_psk_condition"), packet).
 *
 * @throws RangeError when the secret is shorter than 32 bytes.
 */
export function deriveFulfillment(secret: Uint8Array, packet: Uint8Array): Buffer {
  assertSecret(secret);
  const conditionKey = createHmac('sha256', secret).update(CONDITION_KEY_LABEL).digest();
  return createHmac('sha256', conditionKey).update(packet).digest();
}

/** The condition of a packet: SHA-256 of {@link deriveFulfillment}. */
export function deriveCondition(secret: Uint8Array, packet: Uint8Array): Buffer {
  return conditionFromPreimage(deriveFulfillment(secret, packet));
}

/**
 * Creates a payment request to `destinationAccount` (the receiver's account address) for
 * `destinationAmount`: a fresh nonce, a token in the destination address, the packet and its
 * condition.
 *
 * @throws RangeError for a short secret, a nonce that is not 16 bytes or an invalid expiry.
 * @throws InvalidIlpAddressError when `destinationAccount` is not an ILP address.
 * @throws InvalidPacketError when the amount is outside UInt64 or the address with its token
 *   exceeds 1023 characters.
 */
export function createPaymentRequest(request: {
  secret: Uint8Array;
  destinationAccount: string;
  destinationAmount: bigint;
  data?: Buffer;
  expiresAt: Date;
  /** Only for tests that need a fixed packet; a real request takes fresh random bytes. */
  nonce?: Uint8Array;
}): PaymentRequest {
  const nonce = Buffer.from(request.nonce ?? randomBytes(PAYMENT_NONCE_LENGTH));
  const token = createPaymentToken({
    secret: request.secret,
    receiverAddress: request.destinationAccount,
    nonce,
    expiresAt: request.expiresAt,
  });
  const destinationAddress = `${request.destinationAccount}.${token}`;
  const data = request.data ?? Buffer.alloc(0);
  const packet = serializeIlpPayment({ amount: request.destinationAmount, account: destinationAddress, data });
  return {
    packet,
    condition: deriveCondition(request.secret, packet),
    destinationAddress,
    destinationAmount: request.destinationAmount,
    data,
    expiresAt: new Date(request.expiresAt.getTime()),
    nonce,
  };
}

/**
 * Decides whether the receiver fulfils an incoming transfer, from the transfer alone. Checks, in
 * this order, the first failure winning:
 *
 * 1. the packet is a valid ILP payment packet, else F01 Invalid Packet;
 * 2. its destination is `receiverAddress` followed by exactly one segment, else F02 Unreachable;
 * 3. that segment is a token this receiver made for this address, else F06 Unexpected Payment;
 * 4. `now` is not after the token's expiry, else R00 Transfer Timed Out;
 * 5. the transfer's `amount` is at least the packet's amount, else F04 Insufficient Destination
 *    Amount;
 * 6. SHA-256 of the derived fulfillment is the transfer's `condition`, else F05 Wrong Condition.
 *
 * Returns the fulfillment, or the rejection as a value: refusing a payment is an expected
 * outcome, not an exception.
 */
export function verifyIncomingPayment(transfer: {
  secret: Uint8Array;
  receiverAddress: string;
  packet: Uint8Array;
  condition: Uint8Array;
  amount: bigint;
  now: Date;
}): IncomingPaymentAcceptance | IncomingPaymentRejection {
  assertSecret(transfer.secret);
  let payment: IlpPayment;
  try {
    payment = deserializeIlpPayment(transfer.packet);
  } catch (error) {
    if (error instanceof InvalidPacketError) {
      return { errorCode: 'F01', message: error.message };
    }
    throw error;
  }
  const addressPrefix = `${transfer.receiverAddress}.`;
  const tokenText = payment.account.slice(addressPrefix.length);
  if (
    !isValidIlpAddress(transfer.receiverAddress) ||
    !payment.account.startsWith(addressPrefix) ||
    tokenText.includes('.')
  ) {
    return { errorCode: 'F02', message: `${payment.account} is not an address of this receiver` };
  }
  const token = verifyPaymentToken({
    secret: transfer.secret,
    receiverAddress: transfer.receiverAddress,
    token: tokenText,
  });
  if (token === undefined) {
    return { errorCode: 'F06', message: 'no payment was set up for this address' };
  }
  if (transfer.now.getTime() > token.expiresAt.getTime()) {
    return { errorCode: 'R00', message: `the payment request expired at ${token.expiresAt.toISOString()}` };
  }
  if (transfer.amount < payment.amount) {
    return {
      errorCode: 'F04',
      message: `received ${transfer.amount}, the payment request is for ${payment.amount}`,
    };
  }
  const fulfillment = deriveFulfillment(transfer.secret, transfer.packet);
  if (!isFulfillmentOf(fulfillment, transfer.condition)) {
    return { errorCode: 'F05', message: 'the condition does not match the packet' };
  }
  return { fulfillment, payment, token };
}

function assertSecret(secret: Uint8Array): void {
  if (!(secret instanceof Uint8Array) || secret.length < RECEIVER_SECRET_LENGTH_MIN) {
    throw new RangeError(`the receiver secret must be at least ${RECEIVER_SECRET_LENGTH_MIN} bytes`);
  }
}

function encodeExpiry(expiresAt: Date): Buffer {
  const milliseconds = expiresAt instanceof Date ? expiresAt.getTime() : Number.NaN;
  if (!Number.isInteger(milliseconds) || milliseconds < 0) {
    throw new RangeError('expiresAt must be a valid date from 1970 on');
  }
  const expiry = Buffer.alloc(EXPIRY_LENGTH);
  expiry.writeBigUInt64BE(BigInt(milliseconds));
  return expiry;
}

function tokenTag(secret: Uint8Array, receiverAddress: string, nonce: Uint8Array, expiry: Uint8Array): Buffer {
  const tokenKey = createHmac('sha256', secret).update(TOKEN_KEY_LABEL).digest();
  return createHmac('sha256', tokenKey)
    .update(receiverAddress, 'latin1')
    .update(Buffer.of(0))
    .update(nonce)
    .update(expiry)
    .digest()
    .subarray(0, TOKEN_TAG_LENGTH);
}
