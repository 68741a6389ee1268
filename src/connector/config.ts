/**
 * The connector's configuration file (JSON), validated into {@link ConnectorSettings} with errors
 * that name the bad key, e.g. `ledgers[1].scale: must be an integer from 0 to 18, got "x"`.
 * Rates and the spread are decimal strings, never JSON numbers, so that "0.1" stays one tenth.
 */
import {
  InvalidAmountError,
  isValidIlpAddress,
  isValidIlpPrefix,
  parseRate,
  parseRational,
  type Rational,
} from '../ilp';
import {
  arrayAt,
  ConfigError,
  describeJsonValue,
  durationAt,
  joinKey,
  objectAt,
  parseDuration,
  parseInteger,
  parseListenAddress,
  readJsonFile,
  stringAt,
} from '../platform/config';
import type { ConnectorSettings, LedgerEndpoint, RateEntry, Route } from './model';

const accountNamePattern = /^[a-zA-Z0-9_-]{1,86}$/;
const connectorNamePattern = /^[a-zA-Z0-9_-]{1,64}$/;
const currencyPattern = /^[A-Z0-9]{3,12}$/;

/** Defaults of the optional keys. */
export const connectorDefaults = {
  spread: '0.002',
  messageWindow: '1s',
  maxHoldTime: '10s',
  destinationHoldTime: '5s',
} as const;

/**
 * The longest each duration may be, in milliseconds: holds of transfers last seconds, so these
 * only refuse values no ledger would accept and no date could be computed from.
 */
export const connectorDurationMaxMs = {
  messageWindow: 60_000,
  maxHoldTime: 3_600_000,
  destinationHoldTime: 3_600_000,
} as const;

function decimalAt(key: string, value: unknown, parse: (text: string) => Rational): Rational {
  if (typeof value === 'number') {
    throw new ConfigError(key, `must be a decimal string like "0.9", not a JSON number (${value}): floats are inexact`);
  }
  const text = stringAt(key, value);
  try {
    return parse(text);
  } catch (error) {
    if (error instanceof InvalidAmountError) throw new ConfigError(key, error.message);
    throw error;
  }
}

function parseLedger(key: string, value: unknown): LedgerEndpoint {
  const ledger = objectAt(key, value, ['prefix', 'address', 'account', 'currency', 'scale']);
  const prefix = stringAt(joinKey(key, 'prefix'), ledger.prefix);
  if (!isValidIlpPrefix(prefix)) {
    throw new ConfigError(
      joinKey(key, 'prefix'),
      `must be an ILP prefix ending with ".", like "private.dfsp-a.", got "${prefix}"`,
    );
  }
  const endpoint = parseListenAddress(joinKey(key, 'address'), stringAt(joinKey(key, 'address'), ledger.address));
  const account = stringAt(joinKey(key, 'account'), ledger.account);
  if (!accountNamePattern.test(account)) {
    throw new ConfigError(
      joinKey(key, 'account'),
      `must be an account name matching [a-zA-Z0-9_-]{1,86}, got "${account}"`,
    );
  }
  const currency = stringAt(joinKey(key, 'currency'), ledger.currency);
  if (!currencyPattern.test(currency)) {
    throw new ConfigError(joinKey(key, 'currency'), `must be a currency code like USD, got "${currency}"`);
  }
  if (ledger.scale === undefined) throw new ConfigError(joinKey(key, 'scale'), 'is required');
  if (typeof ledger.scale !== 'number' && typeof ledger.scale !== 'string') {
    throw new ConfigError(
      joinKey(key, 'scale'),
      `must be an integer from 0 to 18, got ${describeJsonValue(ledger.scale)}`,
    );
  }
  const scale = parseInteger(joinKey(key, 'scale'), ledger.scale, 0, 18);
  return { prefix, endpoint, account, currency, scale };
}

function parseRoute(key: string, value: unknown, ledgers: LedgerEndpoint[]): Route {
  const route = objectAt(key, value, ['targetPrefix', 'ledger', 'nextHop']);
  const targetPrefix = stringAt(joinKey(key, 'targetPrefix'), route.targetPrefix);
  if (!isValidIlpPrefix(targetPrefix)) {
    throw new ConfigError(joinKey(key, 'targetPrefix'), `must be an ILP prefix ending with ".", got "${targetPrefix}"`);
  }
  if (ledgers.some((ledger) => ledger.prefix === targetPrefix)) {
    throw new ConfigError(
      joinKey(key, 'targetPrefix'),
      `"${targetPrefix}" is a connected ledger's prefix, which is already a route to that ledger`,
    );
  }
  const ledgerPrefix = stringAt(joinKey(key, 'ledger'), route.ledger);
  if (!ledgers.some((ledger) => ledger.prefix === ledgerPrefix)) {
    throw new ConfigError(
      joinKey(key, 'ledger'),
      `must be the prefix of one of the ledgers (${ledgers.map((ledger) => ledger.prefix).join(', ')}), got "${ledgerPrefix}"`,
    );
  }
  const hopKey = joinKey(key, 'nextHop');
  if (route.nextHop === undefined) throw new ConfigError(hopKey, 'is required');
  const nextHop = objectAt(hopKey, route.nextHop, ['account', 'quoting']);
  const account = stringAt(joinKey(hopKey, 'account'), nextHop.account);
  if (!accountNamePattern.test(account)) {
    throw new ConfigError(
      joinKey(hopKey, 'account'),
      `must be an account name matching [a-zA-Z0-9_-]{1,86}, got "${account}"`,
    );
  }
  const ownAccount = ledgers.find((ledger) => ledger.prefix === ledgerPrefix)?.account;
  if (account === ownAccount) {
    throw new ConfigError(joinKey(hopKey, 'account'), `is the connector's own account on ${ledgerPrefix}`);
  }
  const quotingEndpoint = parseListenAddress(
    joinKey(hopKey, 'quoting'),
    stringAt(joinKey(hopKey, 'quoting'), nextHop.quoting),
  );
  return { targetPrefix, ledgerPrefix, local: false, nextHop: { account, quotingEndpoint } };
}

function parseRateEntry(key: string, value: unknown): RateEntry {
  const entry = objectAt(key, value, ['source', 'destination', 'rate']);
  const source = stringAt(joinKey(key, 'source'), entry.source);
  if (!currencyPattern.test(source))
    throw new ConfigError(joinKey(key, 'source'), `must be a currency code, got "${source}"`);
  const destination = stringAt(joinKey(key, 'destination'), entry.destination);
  if (!currencyPattern.test(destination)) {
    throw new ConfigError(joinKey(key, 'destination'), `must be a currency code, got "${destination}"`);
  }
  if (source === destination) throw new ConfigError(joinKey(key, 'destination'), 'must differ from source');
  return { source, destination, rate: decimalAt(joinKey(key, 'rate'), entry.rate, parseRate) };
}

const topLevelKeys = [
  'name',
  'listen',
  'principal',
  'ilpAddress',
  'ledgers',
  'routes',
  'rates',
  'spread',
  'messageWindow',
  'maxHoldTime',
  'destinationHoldTime',
] as const;

/**
 * Validates a parsed configuration file.
 *
 * @throws ConfigError naming the first bad key.
 */
export function parseConnectorConfig(value: unknown): ConnectorSettings {
  const config = objectAt('', value, topLevelKeys);
  const name = stringAt('name', config.name);
  if (!connectorNamePattern.test(name)) throw new ConfigError('name', `must match [a-zA-Z0-9_-]{1,64}, got "${name}"`);
  const listen = parseListenAddress('listen', stringAt('listen', config.listen));
  const principal = stringAt('principal', config.principal);
  if (principal.trim() === '' || principal.length > 256)
    throw new ConfigError('principal', 'must be 1 to 256 characters');
  const ilpAddress = stringAt('ilpAddress', config.ilpAddress);
  if (!isValidIlpAddress(ilpAddress)) {
    throw new ConfigError(
      'ilpAddress',
      `must be an ILP address like "private.central.connector-a", got "${ilpAddress}"`,
    );
  }

  if (config.ledgers === undefined) throw new ConfigError('ledgers', 'is required');
  const ledgers = arrayAt('ledgers', config.ledgers).map((item, index) => parseLedger(`ledgers[${index}]`, item));
  if (ledgers.length < 2) throw new ConfigError('ledgers', `must list at least two ledgers, got ${ledgers.length}`);
  ledgers.forEach((ledger, index) => {
    const first = ledgers.findIndex((other) => other.prefix === ledger.prefix);
    if (first !== index)
      throw new ConfigError(`ledgers[${index}].prefix`, `"${ledger.prefix}" is also ledgers[${first}]`);
  });

  const routes = arrayAt('routes', config.routes ?? []).map((item, index) =>
    parseRoute(`routes[${index}]`, item, ledgers),
  );
  routes.forEach((route, index) => {
    const first = routes.findIndex((other) => other.targetPrefix === route.targetPrefix);
    if (first !== index) {
      throw new ConfigError(`routes[${index}].targetPrefix`, `"${route.targetPrefix}" is also routes[${first}]`);
    }
  });

  const rates = arrayAt('rates', config.rates ?? []).map((item, index) => parseRateEntry(`rates[${index}]`, item));
  rates.forEach((rate, index) => {
    const first = rates.findIndex((other) => other.source === rate.source && other.destination === rate.destination);
    if (first !== index) {
      throw new ConfigError(`rates[${index}]`, `${rate.source} → ${rate.destination} is also rates[${first}]`);
    }
  });
  const currencies = [...new Set(ledgers.map((ledger) => ledger.currency))];
  for (const source of currencies) {
    for (const destination of currencies) {
      if (source === destination) continue;
      const known = rates.some(
        (rate) =>
          (rate.source === source && rate.destination === destination) ||
          (rate.source === destination && rate.destination === source),
      );
      if (!known)
        throw new ConfigError(
          'rates',
          `no rate between ${source} and ${destination}: add one (its inverse is derived)`,
        );
    }
  }

  const spread = decimalAt('spread', config.spread ?? connectorDefaults.spread, parseRational);
  if (spread.numerator >= spread.denominator) throw new ConfigError('spread', 'must be at least 0 and below 1');
  const messageWindowMs = durationAt(
    'messageWindow',
    config.messageWindow,
    connectorDefaults.messageWindow,
    connectorDurationMaxMs.messageWindow,
  );
  if (messageWindowMs <= 0) throw new ConfigError('messageWindow', 'must be longer than zero');
  const maxHoldMs = durationAt(
    'maxHoldTime',
    config.maxHoldTime,
    connectorDefaults.maxHoldTime,
    connectorDurationMaxMs.maxHoldTime,
  );
  if (maxHoldMs <= messageWindowMs * 2) {
    throw new ConfigError('maxHoldTime', `must be longer than two message windows (${messageWindowMs * 2} ms)`);
  }
  const destinationHoldMs =
    config.destinationHoldTime === undefined
      ? Math.min(
          parseDuration('destinationHoldTime', connectorDefaults.destinationHoldTime),
          maxHoldMs - messageWindowMs,
        )
      : durationAt(
          'destinationHoldTime',
          config.destinationHoldTime,
          connectorDefaults.destinationHoldTime,
          connectorDurationMaxMs.destinationHoldTime,
        );
  if (destinationHoldMs < messageWindowMs || destinationHoldMs + messageWindowMs > maxHoldMs) {
    throw new ConfigError(
      'destinationHoldTime',
      `must be at least the message window (${messageWindowMs} ms) and at most maxHoldTime minus the message window (${maxHoldMs - messageWindowMs} ms)`,
    );
  }

  return {
    name,
    listen,
    principal,
    ilpAddress,
    ledgers,
    routes,
    rates,
    spread,
    messageWindowMs,
    maxHoldMs,
    destinationHoldMs,
  };
}

/** Reads and validates the configuration file at `file`. */
export function loadConnectorConfig(file: string): ConnectorSettings {
  return parseConnectorConfig(readJsonFile('--config', file));
}
