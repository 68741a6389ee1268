/**
 * ILP addresses and prefixes of Interledger RFC 0015.
 *
 * An address names one account (`g.dfsp-a.alice`); a prefix names a ledger or a route and ends
 * with a dot (`g.dfsp-a.`), so that a prefix only ever matches whole segments of an address.
 */

/** The longest address or prefix RFC 0015 allows, in characters. */
export const ILP_ADDRESS_LENGTH_MAX = 1023;

/** The allocation schemes of RFC 0015: the first segment of every address. */
export const ILP_ADDRESS_SCHEMES = [
  'g',
  'private',
  'example',
  'peer',
  'self',
  'test',
  'test1',
  'test2',
  'test3',
] as const;

/** One of {@link ILP_ADDRESS_SCHEMES}. */
export type IlpAddressScheme = (typeof ILP_ADDRESS_SCHEMES)[number];

const scheme = `(?:${ILP_ADDRESS_SCHEMES.join('|')})`;
const segment = '[A-Za-z0-9_~-]+';
// A scheme followed by at least one segment; no empty segment, no trailing dot.
const addressPattern = new RegExp(`^${scheme}(?:\\.${segment})+$`);
// A scheme followed by zero or more segments, each closed by a dot: `g.` is the global prefix.
const prefixPattern = new RegExp(`^${scheme}\\.(?:${segment}\\.)*$`);

/** An address was expected and the value is not one. */
export class InvalidIlpAddressError extends Error {
  constructor(
    /** The rejected value, for logs. */
    readonly address: unknown,
  ) {
    super(`invalid ILP address: ${describe(address)}`);
    this.name = 'InvalidIlpAddressError';
  }
}

function describe(value: unknown): string {
  if (typeof value !== 'string') {
    return typeof value;
  }
  // An attacker-chosen address may be huge; a log line needs only its start.
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** True when `address` is an RFC 0015 address: a scheme, then one or more dot-separated segments. */
export function isValidIlpAddress(address: unknown): address is string {
  return typeof address === 'string' && address.length <= ILP_ADDRESS_LENGTH_MAX && addressPattern.test(address);
}

/** True when `prefix` is an RFC 0015 prefix: a scheme and zero or more segments, ending with a dot. */
export function isValidIlpPrefix(prefix: unknown): prefix is string {
  return typeof prefix === 'string' && prefix.length <= ILP_ADDRESS_LENGTH_MAX && prefixPattern.test(prefix);
}

/**
 * Narrows `address` to a valid ILP address.
 *
 * @throws InvalidIlpAddressError when it is not one.
 */
export function assertIlpAddress(address: unknown): asserts address is string {
  if (!isValidIlpAddress(address)) {
    throw new InvalidIlpAddressError(address);
  }
}

/**
 * The longest of `prefixes` that `address` starts with, or `undefined` when none does: the
 * routing rule, so `g.dfsp-a.` wins over `g.` for `g.dfsp-a.alice`.
 *
 * Prefixes end with a dot, so a match is always on a segment boundary (`g.dfsp-a.` does not match
 * `g.dfsp-ab.alice`). The prefixes are not validated here: a routing table validates them once,
 * when a route is added, rather than on every lookup.
 */
export function longestPrefixMatch(address: string, prefixes: Iterable<string>): string | undefined {
  let best: string | undefined;
  for (const prefix of prefixes) {
    if (address.startsWith(prefix) && (best === undefined || prefix.length > best.length)) {
      best = prefix;
    }
  }
  return best;
}
