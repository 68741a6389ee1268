import type { LedgerEndpoint, Route } from './model';
import { createRoutingTable, destinationAccount } from './routing';

const ledger = (prefix: string): LedgerEndpoint => ({
  prefix,
  endpoint: '127.0.0.1:1',
  account: 'connector',
  currency: 'USD',
  scale: 2,
});

const peer = (targetPrefix: string, ledgerPrefix: string, account: string): Route => ({
  targetPrefix,
  ledgerPrefix,
  local: false,
  nextHop: { account, quotingEndpoint: '127.0.0.1:2' },
});

const table = createRoutingTable(
  [ledger('g.dfsp-a.'), ledger('g.central.')],
  [
    peer('g.dfsp-b.', 'g.central.', 'connector-b'),
    peer('g.dfsp-b.branch.', 'g.central.', 'connector-branch'),
    peer('g.', 'g.central.', 'default-connector'),
  ],
);

test.each<[string, string | undefined, boolean | undefined, string | undefined]>([
  // destination, ledger the payment leaves on, local (last hop)?, next hop account
  ['g.dfsp-a.alice', 'g.dfsp-a.', true, undefined],
  ['g.central.connector-b', 'g.central.', true, undefined],
  ['g.dfsp-b.bob', 'g.central.', false, 'connector-b'],
  ['g.dfsp-b.bob.invoice-1', 'g.central.', false, 'connector-b'],
  ['g.dfsp-b.branch.carol', 'g.central.', false, 'connector-branch'],
  // Prefixes match whole segments: g.dfsp-bx is not under g.dfsp-b.
  ['g.dfsp-bx.dave', 'g.central.', false, 'default-connector'],
  ['g.elsewhere.erin', 'g.central.', false, 'default-connector'],
  ['private.dfsp-a.alice', undefined, undefined, undefined],
])('a payment to %s leaves on %s', (destination, ledgerPrefix, local, nextHop) => {
  const route = table.find(destination);
  expect(route?.ledgerPrefix).toBe(ledgerPrefix);
  expect(route?.local).toBe(local);
  expect(route && !route.local ? route.nextHop.account : undefined).toBe(nextHop);
});

test('routes are listed longest target prefix first, local ones included', () => {
  expect(table.list().map((route) => route.targetPrefix)).toEqual([
    'g.dfsp-b.branch.',
    'g.central.',
    'g.dfsp-a.',
    'g.dfsp-b.',
    'g.',
  ]);
});

test.each<[string, string, string | undefined]>([
  ['private.dfsp-b.bob', 'private.dfsp-b.', 'bob'],
  ['private.dfsp-b.bob.invoice-7.part-2', 'private.dfsp-b.', 'bob'],
  ['private.dfsp-b.bob~x', 'private.dfsp-b.', undefined],
  ['private.dfsp-c.bob', 'private.dfsp-b.', undefined],
])('the account of %s on %s is %s', (destination, prefix, account) => {
  expect(destinationAccount(destination, prefix)).toBe(account);
});
