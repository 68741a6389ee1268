/**
 * The SPSP service's configuration file (JSON), validated into {@link SpspSettings} with errors
 * that name the bad key, e.g. `receivers[0].maximumAmount: must be a whole number of minor units`.
 * Amounts are strings of minor units, never JSON numbers, so that large values stay exact.
 *
 * The receiver secret is never written in the file itself in production: it comes from the file
 * named by `secretFile` or from the environment variable INTERCLEAR_SPSP_SECRET (hex).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isValidIlpPrefix, RECEIVER_SECRET_LENGTH_MIN } from '../ilp';
import {
  ConfigError,
  describeJsonValue,
  durationAt,
  environment,
  joinKey,
  minorUnitsMax,
  type JsonObject,
  objectAt,
  parseListenAddress,
  readJsonFile,
  stringAt,
} from '../platform/config';

/** A receiver of this DFSP. */
export interface ReceiverSettings {
  /** The name in its identifier ("bob" in "bob@dfsp-b"). */
  name: string;
  /** Its account on the DFSP's ledger, owned by the SPSP principal. */
  account: string;
  /** For display to senders. */
  displayName: string;
  /** Smallest accepted amount, minor units (at least 1). */
  minimumAmount: bigint;
  /** Largest accepted amount, minor units; null: no limit. */
  maximumAmount: bigint | null;
  /** A disabled receiver is known but accepts no payment. */
  disabled: boolean;
}

/** Where another DFSP's SPSP server is. */
export interface DirectoryEntry {
  /** The DFSP's name, the domain of its receivers' identifiers ("dfsp-b" in "bob@dfsp-b"). */
  dfsp: string;
  /** host:port of its SpspService. */
  spspEndpoint: string;
  /** Its ledger's ILP prefix, so that receivers may also be named by ILP address; optional. */
  prefix: string | null;
}

/** The SPSP service's validated configuration. */
export interface SpspSettings {
  /** Names the service in logs. */
  name: string;
  /** This DFSP's name: the domain of its receivers' identifiers. */
  dfsp: string;
  /** host:port the gRPC server listens on. */
  listen: string;
  /** The principal the service acts as towards its ledger, its connector and other DFSPs. */
  principal: string;
  /** host:port of this DFSP's ledger. */
  ledgerEndpoint: string;
  /** host:port of this DFSP's connector (its QuotingService). */
  quotingEndpoint: string;
  /** The receiver secret every fulfillment derives from; never logged. */
  secret: Buffer;
  receivers: ReceiverSettings[];
  directory: DirectoryEntry[];
  /** How long a payment request stays payable unless the sender asks otherwise. */
  paymentRequestExpiryMs: number;
  /** The longest a sender may ask a payment request to stay payable. */
  maxPaymentRequestExpiryMs: number;
  /** How long receivers want their incoming transfer held. */
  destinationHoldMs: number;
  /**
   * How long a Pay attempt may stay recorded without its first transfer before the service
   * judges it interrupted (the process died between the two) and fails it with
   * PAYMENT_INTERRUPTED; no money has moved then. Undefined: the sending side's default, 60 s.
   */
  paymentAbandonmentMs?: number;
}

/** Defaults of the optional keys. */
export const spspDefaults = {
  paymentRequestExpiry: '30s',
  maxPaymentRequestExpiry: '5m',
  destinationHoldTime: '5s',
  paymentAbandonmentTime: '60s',
} as const;

/**
 * The longest each duration may be, in milliseconds: far beyond any sensible setting, and short
 * enough that every date computed from it exists (an expiry of 99999999999h would make every
 * SetupPayment fail instead of the configuration).
 */
export const spspDurationMaxMs = {
  paymentRequestExpiry: 24 * 3_600_000,
  maxPaymentRequestExpiry: 24 * 3_600_000,
  destinationHoldTime: 3_600_000,
  paymentAbandonmentTime: 24 * 3_600_000,
} as const;

const namePattern = /^[a-zA-Z0-9_-]{1,64}$/;
const accountNamePattern = /^[a-zA-Z0-9_-]{1,86}$/;
const receiverNamePattern = /^[a-zA-Z0-9._-]{1,86}$/;
const hexPattern = /^(?:[0-9a-fA-F]{2})+$/;

function optionalStringAt(key: string, value: unknown): string | undefined {
  return value === undefined ? undefined : stringAt(key, value);
}

function minorUnitsAt(key: string, value: unknown): bigint {
  if (typeof value === 'number') {
    throw new ConfigError(key, `must be a string of minor units like "1000", not a JSON number (${value})`);
  }
  const text = stringAt(key, value);
  if (!/^\d{1,19}$/.test(text)) throw new ConfigError(key, `must be a whole number of minor units, got "${text}"`);
  const amount = BigInt(text);
  if (amount > minorUnitsMax) {
    throw new ConfigError(
      key,
      `must be at most ${minorUnitsMax} minor units (the ledger's largest amount), got "${text}"`,
    );
  }
  return amount;
}

function parseReceiver(key: string, value: unknown): ReceiverSettings {
  const receiver = objectAt(key, value, [
    'name',
    'account',
    'displayName',
    'minimumAmount',
    'maximumAmount',
    'disabled',
  ]);
  const name = stringAt(joinKey(key, 'name'), receiver.name);
  if (!receiverNamePattern.test(name)) {
    throw new ConfigError(joinKey(key, 'name'), `must match [a-zA-Z0-9._-]{1,86}, got "${name}"`);
  }
  const account = optionalStringAt(joinKey(key, 'account'), receiver.account) ?? name;
  if (!accountNamePattern.test(account)) {
    throw new ConfigError(
      joinKey(key, 'account'),
      `must be an account name matching [a-zA-Z0-9_-]{1,86}, got "${account}"`,
    );
  }
  const displayName = optionalStringAt(joinKey(key, 'displayName'), receiver.displayName) ?? name;
  const minimumAmount =
    receiver.minimumAmount === undefined ? 1n : minorUnitsAt(joinKey(key, 'minimumAmount'), receiver.minimumAmount);
  if (minimumAmount < 1n) throw new ConfigError(joinKey(key, 'minimumAmount'), 'must be at least 1');
  const maximumAmount =
    receiver.maximumAmount === undefined ? null : minorUnitsAt(joinKey(key, 'maximumAmount'), receiver.maximumAmount);
  if (maximumAmount !== null && maximumAmount < minimumAmount) {
    throw new ConfigError(joinKey(key, 'maximumAmount'), `must be at least minimumAmount (${minimumAmount})`);
  }
  if (receiver.disabled !== undefined && typeof receiver.disabled !== 'boolean') {
    throw new ConfigError(
      joinKey(key, 'disabled'),
      `must be true or false, got ${describeJsonValue(receiver.disabled)}`,
    );
  }
  return { name, account, displayName, minimumAmount, maximumAmount, disabled: receiver.disabled === true };
}

function parseDirectory(value: unknown): DirectoryEntry[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError('directory', `must be an object of DFSP names, got ${describeJsonValue(value)}`);
  }
  return Object.entries(value as JsonObject).map(([dfsp, entryValue]) => {
    const key = `directory.${dfsp}`;
    if (!namePattern.test(dfsp)) throw new ConfigError(key, 'a DFSP name must match [a-zA-Z0-9_-]{1,64}');
    const entry = objectAt(key, entryValue, ['spsp', 'prefix']);
    const spspEndpoint = parseListenAddress(joinKey(key, 'spsp'), stringAt(joinKey(key, 'spsp'), entry.spsp));
    const prefix = optionalStringAt(joinKey(key, 'prefix'), entry.prefix) ?? null;
    if (prefix !== null && !isValidIlpPrefix(prefix)) {
      throw new ConfigError(joinKey(key, 'prefix'), `must be an ILP prefix ending with ".", got "${prefix}"`);
    }
    return { dfsp, spspEndpoint, prefix };
  });
}

/** Reads a hex secret of at least 32 bytes. */
export function parseSecret(key: string, text: string): Buffer {
  const trimmed = text.trim();
  if (!hexPattern.test(trimmed) || trimmed.length < RECEIVER_SECRET_LENGTH_MIN * 2) {
    throw new ConfigError(key, `must be at least ${RECEIVER_SECRET_LENGTH_MIN} bytes in hex (64 hex digits or more)`);
  }
  return Buffer.from(trimmed, 'hex');
}

function readSecret(config: JsonObject, baseDirectory: string): Buffer {
  const fromEnvironment = environment('SPSP_SECRET');
  if (fromEnvironment !== undefined) return parseSecret('INTERCLEAR_SPSP_SECRET', fromEnvironment);
  const file = optionalStringAt('secretFile', config.secretFile);
  if (file !== undefined) {
    const resolved = path.resolve(baseDirectory, file);
    let text: string;
    try {
      text = readFileSync(resolved, 'utf8');
    } catch (error) {
      throw new ConfigError('secretFile', `cannot read "${resolved}": ${(error as Error).message}`);
    }
    return parseSecret('secretFile', text);
  }
  const inline = optionalStringAt('secret', config.secret);
  if (inline !== undefined) return parseSecret('secret', inline);
  throw new ConfigError(
    'secretFile',
    'is required: name a file holding the receiver secret (64 hex digits), or set INTERCLEAR_SPSP_SECRET',
  );
}

const topLevelKeys = [
  'name',
  'dfsp',
  'listen',
  'principal',
  'ledger',
  'connector',
  'secretFile',
  'secret',
  'receivers',
  'directory',
  'paymentRequestExpiry',
  'maxPaymentRequestExpiry',
  'destinationHoldTime',
  'paymentAbandonmentTime',
] as const;

/**
 * Validates a parsed configuration file. `baseDirectory` resolves a relative `secretFile`.
 *
 * @throws ConfigError naming the first bad key.
 */
export function parseSpspConfig(value: unknown, baseDirectory = process.cwd()): SpspSettings {
  const config = objectAt('', value, topLevelKeys);
  const dfsp = stringAt('dfsp', config.dfsp);
  if (!namePattern.test(dfsp)) throw new ConfigError('dfsp', `must match [a-zA-Z0-9_-]{1,64}, got "${dfsp}"`);
  const name = optionalStringAt('name', config.name) ?? `spsp-${dfsp}`;
  if (!namePattern.test(name)) throw new ConfigError('name', `must match [a-zA-Z0-9_-]{1,64}, got "${name}"`);
  const listen = parseListenAddress('listen', stringAt('listen', config.listen));
  const principal = stringAt('principal', config.principal);
  if (principal.trim() === '' || principal.length > 256)
    throw new ConfigError('principal', 'must be 1 to 256 characters');
  const ledgerEndpoint = parseListenAddress('ledger', stringAt('ledger', config.ledger));
  const quotingEndpoint = parseListenAddress('connector', stringAt('connector', config.connector));
  const secret = readSecret(config, baseDirectory);

  if (config.receivers !== undefined && !Array.isArray(config.receivers)) {
    throw new ConfigError('receivers', `must be an array, got ${describeJsonValue(config.receivers)}`);
  }
  const receivers = ((config.receivers as unknown[] | undefined) ?? []).map((item, index) =>
    parseReceiver(`receivers[${index}]`, item),
  );
  receivers.forEach((receiver, index) => {
    const sameName = receivers.findIndex((other) => other.name === receiver.name);
    if (sameName !== index)
      throw new ConfigError(`receivers[${index}].name`, `"${receiver.name}" is also receivers[${sameName}]`);
    const sameAccount = receivers.findIndex((other) => other.account === receiver.account);
    if (sameAccount !== index) {
      throw new ConfigError(`receivers[${index}].account`, `"${receiver.account}" is also receivers[${sameAccount}]`);
    }
  });
  const directory = config.directory === undefined ? [] : parseDirectory(config.directory);

  const paymentRequestExpiryMs = durationAt(
    'paymentRequestExpiry',
    config.paymentRequestExpiry,
    spspDefaults.paymentRequestExpiry,
    spspDurationMaxMs.paymentRequestExpiry,
  );
  const maxPaymentRequestExpiryMs = durationAt(
    'maxPaymentRequestExpiry',
    config.maxPaymentRequestExpiry,
    spspDefaults.maxPaymentRequestExpiry,
    spspDurationMaxMs.maxPaymentRequestExpiry,
  );
  if (paymentRequestExpiryMs < 1000) throw new ConfigError('paymentRequestExpiry', 'must be at least 1s');
  if (maxPaymentRequestExpiryMs < paymentRequestExpiryMs) {
    throw new ConfigError('maxPaymentRequestExpiry', 'must be at least paymentRequestExpiry');
  }
  const destinationHoldMs = durationAt(
    'destinationHoldTime',
    config.destinationHoldTime,
    spspDefaults.destinationHoldTime,
    spspDurationMaxMs.destinationHoldTime,
  );
  if (destinationHoldMs < 100) throw new ConfigError('destinationHoldTime', 'must be at least 100ms');
  const paymentAbandonmentMs = durationAt(
    'paymentAbandonmentTime',
    config.paymentAbandonmentTime,
    spspDefaults.paymentAbandonmentTime,
    spspDurationMaxMs.paymentAbandonmentTime,
  );
  if (paymentAbandonmentMs < 1000) throw new ConfigError('paymentAbandonmentTime', 'must be at least 1s');

  return {
    name,
    dfsp,
    listen,
    principal,
    ledgerEndpoint,
    quotingEndpoint,
    secret,
    receivers,
    directory,
    paymentRequestExpiryMs,
    maxPaymentRequestExpiryMs,
    destinationHoldMs,
    paymentAbandonmentMs,
  };
}

/** Reads and validates the configuration file at `file` (a relative secretFile is relative to it). */
export function loadSpspConfig(file: string): SpspSettings {
  return parseSpspConfig(readJsonFile('--config', file), path.dirname(path.resolve(file)));
}
