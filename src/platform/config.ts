/**
 * Configuration helpers shared by every command: values from flags, environment variables
 * (INTERCLEAR_*) or a JSON config file, validated with messages that name the bad key.
 */
import { readFileSync } from 'node:fs';

/** A configuration value that failed validation; the message names the key and the fix. */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

/**
 * The longest duration a setting may name unless it sets its own maximum: the longest delay a
 * Node.js timer keeps (longer ones fire at once), about 24.8 days.
 */
export const durationMaxMs = 2 ** 31 - 1;

const durationUnitsMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** A duration in milliseconds as configuration names it: "24h", "5m", "30s" or "250ms". */
export function formatDuration(durationMs: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    if (durationMs > 0 && durationMs % durationUnitsMs[unit] === 0)
      return `${durationMs / durationUnitsMs[unit]}${unit}`;
  }
  return `${durationMs}ms`;
}

/**
 * Parses "500ms", "10s", "2m", "1h" (or a JSON number of milliseconds; text needs its unit, "0"
 * aside) into milliseconds, at most
 * `maximumMs` (by default {@link durationMaxMs}): a duration too long to add to a date or to wait
 * for is refused here, with the key, rather than failing every request that uses it.
 */
export function parseDuration(key: string, value: string | number, maximumMs = durationMaxMs): number {
  let durationMs: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0)
      throw new ConfigError(key, `must be a non-negative duration, got ${value}`);
    durationMs = value;
  } else {
    const match = /^(\d+)(ms|s|m|h)?$/.exec(value.trim());
    if (!match) throw new ConfigError(key, `must be a duration like 500ms, 10s or 2m, got "${value}"`);
    // "10" could mean seconds as well as milliseconds: text says which (a JSON number is milliseconds).
    if (match[2] === undefined && Number(match[1]) !== 0) {
      throw new ConfigError(key, `needs a unit: ${match[1]}ms, ${match[1]}s or ${match[1]}m, got "${value}"`);
    }
    durationMs = Number(match[1]) * durationUnitsMs[(match[2] ?? 'ms') as keyof typeof durationUnitsMs];
  }
  if (durationMs > maximumMs) {
    throw new ConfigError(key, `must be at most ${formatDuration(maximumMs)}, got ${JSON.stringify(value)}`);
  }
  return durationMs;
}

/** Validates "host:port". */
export function parseListenAddress(key: string, value: string): string {
  const match = /^(.+):(\d{1,5})$/.exec(value);
  if (!match || Number(match[2]) > 65535) throw new ConfigError(key, `must be HOST:PORT, got "${value}"`);
  return value;
}

/** Parses a non-negative integer within [minimum, maximum]. */
export function parseInteger(key: string, value: string | number, minimum: number, maximum: number): number {
  const number = typeof value === 'number' ? value : /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(number) || number < minimum || number > maximum) {
    throw new ConfigError(key, `must be an integer from ${minimum} to ${maximum}, got "${value}"`);
  }
  return number;
}

/** The largest amount a ledger holds, in minor units: PostgreSQL int8. */
export const minorUnitsMax = 2n ** 63n - 1n;

/** The largest sequence number of a ledger's notification stream (PostgreSQL int8). */
export const sequenceMax = 2n ** 63n - 1n;

/** Parses a whole number from 0 to `maximum`, exactly (bigint); `what` names it in the message. */
function parseWholeNumber(key: string, value: string, what: string, maximum: bigint): bigint {
  const text = value.trim();
  if (!/^\d+$/.test(text)) throw new ConfigError(key, `must be ${what}, got "${value}"`);
  const number = BigInt(text);
  if (number > maximum) throw new ConfigError(key, `must be ${what} of at most ${maximum}, got "${value}"`);
  return number;
}

/** Parses an amount in minor units: a whole number from 0 to `maximum` (by default the ledger's largest). */
export function parseMinorUnits(key: string, value: string, maximum = minorUnitsMax): bigint {
  return parseWholeNumber(key, value, 'a whole number of minor units', maximum);
}

/** Parses an amount to move: a whole number of minor units, at least 1. */
export function parseAmount(key: string, value: string): bigint {
  const amount = parseMinorUnits(key, value);
  if (amount === 0n) throw new ConfigError(key, `must be at least 1 minor unit, got "${value}"`);
  return amount;
}

/** Parses a sequence number of a ledger's notification stream. */
export function parseSequence(key: string, value: string): bigint {
  return parseWholeNumber(key, value, 'a sequence number (a whole number)', sequenceMax);
}

/** Reads a JSON config file, reporting syntax errors with the file name. */
export function readJsonFile(key: string, file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(key, `cannot read "${file}": ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(key, `"${file}" is not valid JSON: ${(error as Error).message}`);
  }
}

/** The value of environment variable INTERCLEAR_<NAME>, if set and not empty. */
export function environment(name: string): string | undefined {
  const value = process.env[`INTERCLEAR_${name}`];
  return value === undefined || value === '' ? undefined : value;
}

/** A parsed JSON object of a configuration file. */
export type JsonObject = Record<string, unknown>;

/** How a JSON value reads in an error message. */
export function describeJsonValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return `the number ${value}`;
  return typeof value;
}

/** The path of `key` under `parent` ("routes[0]" + "ledger" → "routes[0].ledger"). */
export function joinKey(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

/** `value` as an object with only `allowedKeys`; an unknown key is an error naming it. */
export function objectAt(key: string, value: unknown, allowedKeys: readonly string[]): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(key || '(top level)', `must be an object, got ${describeJsonValue(value)}`);
  }
  for (const name of Object.keys(value)) {
    if (!allowedKeys.includes(name)) {
      throw new ConfigError(joinKey(key, name), `unknown key; expected one of ${allowedKeys.join(', ')}`);
    }
  }
  return value as JsonObject;
}

/** `value` as an array. */
export function arrayAt(key: string, value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new ConfigError(key, `must be an array, got ${describeJsonValue(value)}`);
  return value;
}

/** `value` as a required string. */
export function stringAt(key: string, value: unknown): string {
  if (value === undefined) throw new ConfigError(key, 'is required');
  if (typeof value !== 'string') throw new ConfigError(key, `must be a string, got ${describeJsonValue(value)}`);
  return value;
}

/** `value` as a duration ("5s" or milliseconds) of at most `maximumMs`, `fallback` when absent. */
export function durationAt(key: string, value: unknown, fallback: string, maximumMs = durationMaxMs): number {
  if (value === undefined) return parseDuration(key, fallback, maximumMs);
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new ConfigError(key, `must be a duration like "5s", got ${describeJsonValue(value)}`);
  }
  return parseDuration(key, value, maximumMs);
}
