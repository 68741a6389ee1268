/**
 * Amounts and exchange rates without floating point.
 *
 * An amount is a bigint of minor units (cents for USD at scale 2), an unsigned 64-bit integer as
 * on the wire. A rate is an exact fraction built from its decimal text, so that "0.1" is one tenth
 * and not 0.1000000000000000055511151231257827. Conversions round in one stated direction:
 * amounts the connector receives round up and amounts it pays out round down, so rounding never
 * costs the connector money.
 */
import { InvalidAmountError } from './errors';
import { UINT64_MAX } from './oer';

/** The largest asset scale (digits after the decimal point) an Interledger asset may have. */
export const ASSET_SCALE_MAX = 255;

/** The largest amount in minor units: 2^64 - 1, the range of the packet's UInt64. */
export const AMOUNT_MAX = UINT64_MAX;

// Decimal text longer than this cannot be a valid amount or rate, and refusing it early keeps an
// attacker from making us build a huge bigint.
const DECIMAL_TEXT_LENGTH_MAX = 20 + 1 + ASSET_SCALE_MAX;

// No sign, no exponent, no spaces, no leading zeros ("007"), at least one digit on each side of
// the point: one spelling per value, short of trailing fraction zeros.
const decimalPattern = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;

/** An exact non-negative fraction, always in lowest terms with a positive denominator. */
export interface Rational {
  readonly numerator: bigint;
  readonly denominator: bigint;
}

/** Which way a conversion rounds when the exact result has a fraction of a minor unit. */
export type RoundingMode = 'up' | 'down';

/**
 * Parses decimal text ("12.34") into minor units at `scale` (1234n at scale 2).
 *
 * @throws InvalidAmountError when the text is not a plain non-negative decimal, has more fraction
 *   digits than `scale`, or exceeds 2^64 - 1 minor units.
 * @throws RangeError when `scale` is not an integer from 0 to 255.
 */
export function parseAmount(text: string, scale: number): bigint {
  assertScale(scale);
  const { integerDigits, fractionDigits } = splitDecimal(text, 'amount');
  if (fractionDigits.length > scale) {
    throw new InvalidAmountError(
      `amount ${JSON.stringify(text)} has ${fractionDigits.length} fraction digits, the asset scale is ${scale}`,
    );
  }
  const amount = BigInt(integerDigits + fractionDigits.padEnd(scale, '0'));
  if (amount > AMOUNT_MAX) {
    throw new InvalidAmountError(`amount ${JSON.stringify(text)} at scale ${scale} exceeds 2^64 - 1 minor units`);
  }
  return amount;
}

/**
 * Formats minor units as decimal text with exactly `scale` fraction digits (1230n at scale 2 is
 * "12.30"), the form {@link parseAmount} reads back to the same amount.
 *
 * @throws InvalidAmountError when the amount is negative or exceeds 2^64 - 1.
 * @throws RangeError when `scale` is not an integer from 0 to 255.
 */
export function formatAmount(amount: bigint, scale: number): string {
  assertScale(scale);
  assertAmount(amount, 'amount');
  if (scale === 0) {
    return amount.toString();
  }
  const digits = amount.toString().padStart(scale + 1, '0');
  return `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/**
 * Parses decimal text ("0.8734", "1", "0.002") into an exact fraction (4367/5000, 1/1, 1/500).
 * Zero is allowed, for a spread of nothing.
 *
 * @throws InvalidAmountError when the text is not a plain non-negative decimal.
 */
export function parseRational(text: string): Rational {
  const { integerDigits, fractionDigits } = splitDecimal(text, 'number');
  return reduce(BigInt(integerDigits + fractionDigits), 10n ** BigInt(fractionDigits.length));
}

/**
 * Parses an exchange rate: how many destination units one source unit buys, both in whole units
 * (not minor units), e.g. "0.8734" USD → EUR.
 *
 * @throws InvalidAmountError when the text is not a plain positive decimal.
 */
export function parseRate(text: string): Rational {
  const rate = parseRational(text);
  if (rate.numerator === 0n) {
    throw new InvalidAmountError('an exchange rate must be greater than zero');
  }
  return rate;
}

/** The rate of the opposite direction: 1 / `rate`. */
export function invertRate(rate: Rational): Rational {
  assertRate(rate);
  return reduce(rate.denominator, rate.numerator);
}

/**
 * The rate after the connector keeps `spread` of every payment: `rate` × (1 - `spread`), e.g. a
 * spread of 0.002 (0.2 %) turns 0.8734 into 0.8716532.
 *
 * @throws InvalidAmountError when the spread is not at least 0 and below 1.
 */
export function applySpread(rate: Rational, spread: Rational): Rational {
  assertRate(rate);
  assertRational(spread, 'spread');
  if (spread.numerator >= spread.denominator) {
    throw new InvalidAmountError('a spread must be below 1');
  }
  return reduce(rate.numerator * (spread.denominator - spread.numerator), rate.denominator * spread.denominator);
}

/**
 * Converts `amount` minor units at `sourceScale` into minor units at `destinationScale` at `rate`
 * (whole destination units per whole source unit), rounding the exact result `up` or `down`.
 *
 * @throws InvalidAmountError when the amount or the result is outside 0 … 2^64 - 1, or the rate
 *   is not positive.
 * @throws RangeError when a scale is not an integer from 0 to 255.
 */
export function convertAmount(conversion: {
  amount: bigint;
  rate: Rational;
  sourceScale: number;
  destinationScale: number;
  rounding: RoundingMode;
}): bigint {
  const { amount, rate, sourceScale, destinationScale, rounding } = conversion;
  assertAmount(amount, 'amount');
  assertRate(rate);
  assertScale(sourceScale);
  assertScale(destinationScale);
  // destination = amount × rate × 10^destinationScale / 10^sourceScale, kept as one fraction so
  // that the only rounding is the final division.
  let numerator = amount * rate.numerator;
  let denominator = rate.denominator;
  if (destinationScale >= sourceScale) {
    numerator *= 10n ** BigInt(destinationScale - sourceScale);
  } else {
    denominator *= 10n ** BigInt(sourceScale - destinationScale);
  }
  const quotient = numerator / denominator;
  const result = rounding === 'up' && quotient * denominator !== numerator ? quotient + 1n : quotient;
  if (result > AMOUNT_MAX) {
    throw new InvalidAmountError(`converted amount ${result} exceeds 2^64 - 1 minor units`);
  }
  return result;
}

/**
 * The amount a connector delivers for `sourceAmount` received: converted at `rate` and rounded
 * down, in the connector's favour.
 */
export function destinationAmountForSource(quote: {
  sourceAmount: bigint;
  rate: Rational;
  sourceScale: number;
  destinationScale: number;
}): bigint {
  return convertAmount({
    amount: quote.sourceAmount,
    rate: quote.rate,
    sourceScale: quote.sourceScale,
    destinationScale: quote.destinationScale,
    rounding: 'down',
  });
}

/**
 * The amount a connector asks for to deliver `destinationAmount`: converted at the inverse of
 * `rate` and rounded up, in the connector's favour. Delivering the result through
 * {@link destinationAmountForSource} gives at least `destinationAmount`.
 */
export function sourceAmountForDestination(quote: {
  destinationAmount: bigint;
  rate: Rational;
  sourceScale: number;
  destinationScale: number;
}): bigint {
  return convertAmount({
    amount: quote.destinationAmount,
    rate: invertRate(quote.rate),
    sourceScale: quote.destinationScale,
    destinationScale: quote.sourceScale,
    rounding: 'up',
  });
}

function splitDecimal(text: string, what: string): { integerDigits: string; fractionDigits: string } {
  if (typeof text !== 'string') {
    throw new InvalidAmountError(`${what} must be decimal text, got ${typeof text}`);
  }
  if (text.length > DECIMAL_TEXT_LENGTH_MAX) {
    throw new InvalidAmountError(`${what} text of ${text.length} characters is too long`);
  }
  if (text.startsWith('-')) {
    throw new InvalidAmountError(`${what} ${JSON.stringify(text)} is negative`);
  }
  const match = decimalPattern.exec(text);
  if (match === null) {
    throw new InvalidAmountError(`${what} ${JSON.stringify(text)} is not a plain decimal number`);
  }
  return { integerDigits: match[1], fractionDigits: match[2] ?? '' };
}

function reduce(numerator: bigint, denominator: bigint): Rational {
  const divisor = greatestCommonDivisor(numerator, denominator);
  return { numerator: numerator / divisor, denominator: denominator / divisor };
}

function greatestCommonDivisor(left: bigint, right: bigint): bigint {
  let a = left;
  let b = right;
  while (b !== 0n) {
    [a, b] = [b, a % b];
  }
  return a;
}

function assertScale(scale: number): void {
  if (!Number.isInteger(scale) || scale < 0 || scale > ASSET_SCALE_MAX) {
    throw new RangeError(`asset scale must be an integer from 0 to ${ASSET_SCALE_MAX}, got ${scale}`);
  }
}

function assertAmount(amount: bigint, what: string): void {
  if (typeof amount !== 'bigint' || amount < 0n || amount > AMOUNT_MAX) {
    throw new InvalidAmountError(`${what} must be a bigint from 0 to 2^64 - 1, got ${String(amount)}`);
  }
}

function assertRational(value: Rational, what: string): void {
  if (
    typeof value?.numerator !== 'bigint' ||
    typeof value.denominator !== 'bigint' ||
    value.numerator < 0n ||
    value.denominator <= 0n
  ) {
    throw new InvalidAmountError(`${what} must be a non-negative fraction with a positive denominator`);
  }
}

function assertRate(rate: Rational): void {
  assertRational(rate, 'rate');
  if (rate.numerator === 0n) {
    throw new InvalidAmountError('an exchange rate must be greater than zero');
  }
}
