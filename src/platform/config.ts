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

/** Parses "500ms", "10s", "2m", "1h" (or a bare number of milliseconds) into milliseconds. */
export function parseDuration(key: string, value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0)
      throw new ConfigError(key, `must be a non-negative duration, got ${value}`);
    return value;
  }
  const match = /^(\d+)(ms|s|m|h)?$/.exec(value.trim());
  if (!match) throw new ConfigError(key, `must be a duration like 500ms, 10s or 2m, got "${value}"`);
  const amount = Number(match[1]);
  const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  return amount * unitMs;
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

/** Parses an amount in minor units (a non-negative integer, bigint). */
export function parseMinorUnits(key: string, value: string): bigint {
  if (!/^\d+$/.test(value.trim())) throw new ConfigError(key, `must be a whole number of minor units, got "${value}"`);
  return BigInt(value.trim());
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

/** `value` as a duration ("5s" or milliseconds), `fallback` when absent. */
export function durationAt(key: string, value: unknown, fallback: string): number {
  if (value === undefined) return parseDuration(key, fallback);
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new ConfigError(key, `must be a duration like "5s", got ${describeJsonValue(value)}`);
  }
  return parseDuration(key, value);
}
