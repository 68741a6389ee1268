import { ConfigError } from '../platform/config';
import { parseConnectorConfig } from './config';
import { exampleConnectorConfigs } from './example';

const endpoints = {
  dfspALedger: '127.0.0.1:7101',
  centralLedger: '127.0.0.1:7100',
  dfspBLedger: '127.0.0.1:7201',
  connectorA: '127.0.0.1:7103',
  connectorB: '127.0.0.1:7203',
};

const valid = () => exampleConnectorConfigs(endpoints).a;

// The cases edit arbitrary JSON, wrong types included, which is what they test.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type EditableJson = Record<string, any>;

/** A copy of the valid configuration with `change` applied. */
function changed(change: (config: EditableJson) => void): Record<string, unknown> {
  const config = structuredClone(valid()) as EditableJson;
  change(config);
  return config;
}

test('a valid configuration parses into settings, with exact rates and durations', () => {
  const settings = parseConnectorConfig(valid());
  expect(settings.name).toBe('connector-a');
  expect(settings.ledgers.map((ledger) => ledger.prefix)).toEqual(['private.dfsp-a.', 'private.central.']);
  expect(settings.routes).toEqual([
    {
      targetPrefix: 'private.dfsp-b.',
      ledgerPrefix: 'private.central.',
      local: false,
      nextHop: { account: 'connector-b', quotingEndpoint: '127.0.0.1:7203' },
    },
  ]);
  expect(settings.rates).toEqual([{ source: 'USD', destination: 'EUR', rate: { numerator: 9n, denominator: 10n } }]);
  expect(settings.spread).toEqual({ numerator: 1n, denominator: 500n });
  expect(settings.messageWindowMs).toBe(1000);
  expect(settings.maxHoldMs).toBe(10_000);
  expect(settings.destinationHoldMs).toBe(5000);
});

test('optional keys take their defaults', () => {
  const settings = parseConnectorConfig(
    changed((config) => {
      delete config.spread;
      delete config.messageWindow;
      delete config.maxHoldTime;
      delete config.routes;
    }),
  );
  expect(settings.spread).toEqual({ numerator: 1n, denominator: 500n });
  expect(settings.messageWindowMs).toBe(1000);
  expect(settings.maxHoldMs).toBe(10_000);
  expect(settings.routes).toEqual([]);
});

test.each<[string, (config: EditableJson) => void, string]>([
  ['not an object', (config) => Object.assign(config, { ledgers: 'x' }), 'ledgers'],
  ['an unknown top-level key', (config) => (config.spred = '0.1'), 'spred'],
  ['a missing name', (config) => delete config.name, 'name'],
  ['a bad name', (config) => (config.name = 'a b'), 'name'],
  ['a bad listen address', (config) => (config.listen = 'localhost'), 'listen'],
  ['a bad ILP address', (config) => (config.ilpAddress = 'central.connector-a'), 'ilpAddress'],
  ['a single ledger', (config) => config.ledgers.pop(), 'ledgers'],
  [
    'a ledger prefix without the final dot',
    (config) => (config.ledgers[1].prefix = 'private.central'),
    'ledgers[1].prefix',
  ],
  ['a bad ledger address', (config) => (config.ledgers[0].address = '127.0.0.1'), 'ledgers[0].address'],
  ['a bad account name', (config) => (config.ledgers[0].account = 'connector a'), 'ledgers[0].account'],
  ['a bad currency', (config) => (config.ledgers[1].currency = 'eur'), 'ledgers[1].currency'],
  ['a scale out of range', (config) => (config.ledgers[1].scale = 19), 'ledgers[1].scale'],
  ['a missing scale', (config) => delete config.ledgers[1].scale, 'ledgers[1].scale'],
  ['an unknown ledger key', (config) => (config.ledgers[0].acount = 'x'), 'ledgers[0].acount'],
  ['a duplicate ledger prefix', (config) => (config.ledgers[1].prefix = 'private.dfsp-a.'), 'ledgers[1].prefix'],
  ['a route to an unknown ledger', (config) => (config.routes[0].ledger = 'private.nowhere.'), 'routes[0].ledger'],
  [
    'a route shadowing a ledger',
    (config) => (config.routes[0].targetPrefix = 'private.dfsp-a.'),
    'routes[0].targetPrefix',
  ],
  ['a route without next hop', (config) => delete config.routes[0].nextHop, 'routes[0].nextHop'],
  [
    'a next hop with a bad quoting address',
    (config) => (config.routes[0].nextHop.quoting = 'x'),
    'routes[0].nextHop.quoting',
  ],
  [
    "a next hop that is the connector's own account",
    (config) => (config.routes[0].nextHop.account = 'connector-a'),
    'routes[0].nextHop.account',
  ],
  ['a rate as a JSON number', (config) => (config.rates[0].rate = 0.9), 'rates[0].rate'],
  ['a rate of zero', (config) => (config.rates[0].rate = '0'), 'rates[0].rate'],
  ['a negative rate', (config) => (config.rates[0].rate = '-0.9'), 'rates[0].rate'],
  ['a rate from a currency to itself', (config) => (config.rates[0].destination = 'USD'), 'rates[0].destination'],
  ['no rate between the ledgers', (config) => (config.rates = []), 'rates'],
  ['a spread of 1', (config) => (config.spread = '1'), 'spread'],
  ['a spread as a number', (config) => (config.spread = 0.002), 'spread'],
  ['a bad message window', (config) => (config.messageWindow = '1 second'), 'messageWindow'],
  ['a zero message window', (config) => (config.messageWindow = '0s'), 'messageWindow'],
  ['a max hold time within two windows', (config) => (config.maxHoldTime = '2s'), 'maxHoldTime'],
  ['a destination hold beyond the max hold', (config) => (config.destinationHoldTime = '10s'), 'destinationHoldTime'],
])('%s is refused, naming the key', (_case, change, key) => {
  let error: unknown;
  try {
    parseConnectorConfig(changed(change));
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).key).toBe(key);
  expect((error as ConfigError).message.startsWith(`${key}: `)).toBe(true);
});

test('a configuration that is not an object is refused', () => {
  expect(() => parseConnectorConfig([])).toThrow(ConfigError);
});
