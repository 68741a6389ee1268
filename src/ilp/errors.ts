/**
 * ILP error codes of Interledger RFC 0003 (2017) and the typed errors the client library throws.
 *
 * The first letter of a code is its class: F (final: retrying the same payment will fail again),
 * T (temporary: the same payment may succeed later) and R (relative: it failed because of the
 * payment's own parameters, e.g. too little time left).
 */

/** Names of the ILP error codes of RFC 0003, keyed by code. */
export const ILP_ERROR_NAMES = {
  F00: 'Bad Request',
  F01: 'Invalid Packet',
  F02: 'Unreachable',
  F03: 'Invalid Amount',
  F04: 'Insufficient Destination Amount',
  F05: 'Wrong Condition',
  F06: 'Unexpected Payment',
  F07: 'Cannot Receive',
  T00: 'Internal Error',
  T01: 'Ledger Unreachable',
  T02: 'Ledger Busy',
  T03: 'Connector Busy',
  T04: 'Insufficient Liquidity',
  T05: 'Rate Limited',
  R00: 'Transfer Timed Out',
  R01: 'Insufficient Source Amount',
  R02: 'Insufficient Timeout',
} as const satisfies Record<string, string>;

/** A code of the RFC 0003 table, e.g. `F01`. */
export type IlpErrorCode = keyof typeof ILP_ERROR_NAMES;

/** The class of an ILP error code: its first letter. */
export type IlpErrorClass = 'final' | 'temporary' | 'relative';

const classNames: Record<IlpErrorClass, string> = {
  final: 'Final Error',
  temporary: 'Temporary Error',
  relative: 'Relative Error',
};

const classByLetter: Record<string, IlpErrorClass> = { F: 'final', T: 'temporary', R: 'relative' };

// A code is a class letter and two characters; RFC 0003 leaves room for codes not in the table.
const wellFormedCode = /^[FTR][0-9A-Z]{2}$/;

/** True when `code` is one of the codes of the RFC 0003 table. */
export function isIlpErrorCode(code: string): code is IlpErrorCode {
  return Object.prototype.hasOwnProperty.call(ILP_ERROR_NAMES, code);
}

/**
 * The class of a well-formed ILP error code, known or not, so that a connector can decide whether
 * to retry a code a newer peer sends.
 *
 * @throws RangeError when `code` is not a class letter followed by two digits or capitals.
 */
export function ilpErrorClass(code: string): IlpErrorClass {
  if (!wellFormedCode.test(code)) {
    throw new RangeError(`not an ILP error code: ${JSON.stringify(code)}`);
  }
  return classByLetter[code[0]];
}

/**
 * The name of an ILP error code: the RFC 0003 name for a code in the table (`F01` → "Invalid
 * Packet"), or the name of its class ("Final Error") for a well-formed code the table lacks, since
 * errors from other implementations must still be reported, not dropped.
 *
 * @throws RangeError when `code` is not well-formed.
 */
export function ilpErrorName(code: string): string {
  if (isIlpErrorCode(code)) {
    return ILP_ERROR_NAMES[code];
  }
  return classNames[ilpErrorClass(code)];
}

/** An error that maps to an ILP error code, so the edge can turn it into an ILP rejection. */
export class IlpError extends Error {
  constructor(
    /** The RFC 0003 code this error maps to. */
    readonly code: IlpErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'IlpError';
  }

  /** The RFC 0003 name of {@link IlpError.code}. */
  get ilpErrorName(): string {
    return ILP_ERROR_NAMES[this.code];
  }
}

/** A packet could not be read or written: ILP error F01 Invalid Packet. */
export class InvalidPacketError extends IlpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('F01', message, options);
    this.name = 'InvalidPacketError';
  }
}

/** An amount is malformed, negative or out of range: ILP error F03 Invalid Amount. */
export class InvalidAmountError extends IlpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('F03', message, options);
    this.name = 'InvalidAmountError';
  }
}
