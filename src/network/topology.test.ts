/**
 * The network plan: its ports, and configuration files that the connector and the SPSP service
 * accept as they are written (so `interclear network` never starts a process that refuses its
 * own configuration).
 */
import { parseConnectorConfig } from '../connector/config';
import { parseSpspConfig } from '../spsp/config';
import { stableUuid } from './seed';
import { planNetwork, portsFrom } from './topology';

const plan = planNetwork({ ports: portsFrom(7100) });

test('the default ports: the hub on 7100, DFSP A on 7101…7103, DFSP B on 7201…7203', () => {
  expect(Object.fromEntries(plan.services.map((service) => [service.name, service.address]))).toEqual({
    'central-ledger': '127.0.0.1:7100',
    'dfsp-a-ledger': '127.0.0.1:7101',
    'dfsp-b-ledger': '127.0.0.1:7201',
    'dfsp-a-connector': '127.0.0.1:7103',
    'dfsp-b-connector': '127.0.0.1:7203',
    'dfsp-a-spsp': '127.0.0.1:7102',
    'dfsp-b-spsp': '127.0.0.1:7202',
  });
});

test('one database per service', () => {
  const databases = plan.services.map((service) => service.database);
  expect(new Set(databases).size).toBe(databases.length);
  for (const database of databases) expect(database).toMatch(/^[a-z_][a-z0-9_]{0,62}$/);
});

test.each(plan.services.filter((service) => service.kind === 'connector').map((service) => [service.name, service]))(
  'the %s configuration is one the connector accepts',
  (_name, service) => {
    const settings = parseConnectorConfig(service.config!.content);
    expect(settings.ledgers.map((ledger) => ledger.prefix)).toContain('private.central.');
  },
);

test.each(plan.services.filter((service) => service.kind === 'spsp').map((service) => [service.name, service]))(
  'the %s configuration is one the SPSP service accepts',
  (_name, service) => {
    const settings = parseSpspConfig({ ...service.config!.content, secretFile: undefined, secret: 'ab'.repeat(32) });
    expect(settings.directory).toHaveLength(1);
    expect(settings.receivers).toHaveLength(1);
  },
);

test('every account on a ledger is owned by a principal that runs there', () => {
  const principals = new Set(['connector-a', 'connector-b', 'spsp-a', 'spsp-b']);
  for (const ledger of plan.ledgers) {
    for (const account of ledger.accounts) expect(principals).toContain(account.owner);
  }
});

test('seed deposit ids are stable UUIDs, so seeding twice deposits once', () => {
  expect(stableUuid('a')).toBe(stableUuid('a'));
  expect(stableUuid('a')).not.toBe(stableUuid('b'));
  expect(stableUuid('a')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});
