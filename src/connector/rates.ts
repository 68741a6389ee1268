/**
 * Exchange rates and the arithmetic of one hop: a pluggable rate source (a static table from the
 * configuration here), the spread, and conversions between ledgers of different scales that
 * always round in the connector's favour — what it pays out rounds down, what it asks for
 * rounds up.
 */
import { applySpread, destinationAmountForSource, invertRate, sourceAmountForDestination, type Rational } from '../ilp';
import type { RateEntry } from './model';

/** Where rates come from. A live feed would implement the same interface. */
export interface RateSource {
  /** Destination units one source unit buys (whole units), or undefined when unknown. */
  rate(sourceCurrency: string, destinationCurrency: string): Rational | undefined;
  /** Every rate between different currencies, configured ones first. */
  list(): Array<RateEntry & { derived: boolean }>;
}

const one: Rational = { numerator: 1n, denominator: 1n };

/**
 * A rate source from the configured table. A pair that is not configured but whose opposite is
 * uses the exact inverse; a currency converts to itself at 1.
 */
export function createStaticRateSource(entries: RateEntry[]): RateSource {
  const key = (source: string, destination: string) => `${source}\u0000${destination}`;
  const configured = new Map(entries.map((entry) => [key(entry.source, entry.destination), entry.rate]));
  const derived: RateEntry[] = entries
    .filter((entry) => !configured.has(key(entry.destination, entry.source)))
    .map((entry) => ({ source: entry.destination, destination: entry.source, rate: invertRate(entry.rate) }));
  const all = new Map(configured);
  for (const entry of derived) all.set(key(entry.source, entry.destination), entry.rate);
  return {
    rate(sourceCurrency, destinationCurrency) {
      if (sourceCurrency === destinationCurrency) return one;
      return all.get(key(sourceCurrency, destinationCurrency));
    },
    list: () => [
      ...entries.map((entry) => ({ ...entry, derived: false })),
      ...derived.map((entry) => ({ ...entry, derived: true })),
    ],
  };
}

/** One hop of a payment: from a ledger of `sourceScale` to one of `destinationScale`. */
export interface HopConversion {
  /** The market rate, destination units per source unit (whole units). */
  rate: Rational;
  /** The share the connector keeps. */
  spread: Rational;
  sourceScale: number;
  destinationScale: number;
}

/** What the connector pays out for `sourceAmount` received: rate × (1 − spread), rounded down. */
export function hopDestinationAmount(sourceAmount: bigint, hop: HopConversion): bigint {
  return destinationAmountForSource({
    sourceAmount,
    rate: applySpread(hop.rate, hop.spread),
    sourceScale: hop.sourceScale,
    destinationScale: hop.destinationScale,
  });
}

/**
 * What the connector asks for to pay out `destinationAmount`, rounded up; paying it in gives at
 * least `destinationAmount` through {@link hopDestinationAmount}.
 */
export function hopSourceAmount(destinationAmount: bigint, hop: HopConversion): bigint {
  return sourceAmountForDestination({
    destinationAmount,
    rate: applySpread(hop.rate, hop.spread),
    sourceScale: hop.sourceScale,
    destinationScale: hop.destinationScale,
  });
}

/**
 * Decimal text of a fraction: exact when it has a finite decimal form ("0.9", "1.25"),
 * otherwise rounded half up to `fractionDigitsMax` digits ("1.111111111111111111").
 */
export function formatRational(value: Rational, fractionDigitsMax = 18): string {
  const { numerator, denominator } = value;
  let digits = 0;
  let scaled = numerator;
  // Multiply by 10 until the division is exact or the digit budget is spent.
  while (scaled % denominator !== 0n && digits < fractionDigitsMax) {
    scaled *= 10n;
    digits += 1;
  }
  let quotient = scaled / denominator;
  if (scaled % denominator !== 0n && (scaled % denominator) * 2n >= denominator) quotient += 1n;
  if (digits === 0) return quotient.toString();
  const text = quotient.toString().padStart(digits + 1, '0');
  const trimmed = `${text.slice(0, -digits)}.${text.slice(-digits)}`.replace(/0+$/, '');
  return trimmed.endsWith('.') ? trimmed.slice(0, -1) : trimmed;
}
