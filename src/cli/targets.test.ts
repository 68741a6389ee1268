import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NetworkManifest } from '../network/manifest';
import { resolveTarget } from './targets';

const manifest: NetworkManifest = {
  version: 1,
  startTime: '2026-11-26T00:00:00.000Z',
  dataDir: '/tmp/network',
  adminPrincipal: 'admin',
  insecure: true,
  tls: null,
  database: { embedded: true, url: 'postgres://localhost/x' },
  services: [],
  ledgers: [
    {
      name: 'central',
      dfsp: null,
      address: '127.0.0.1:7100',
      prefix: 'private.central.',
      currency: 'EUR',
      scale: 2,
      accounts: [],
    },
    {
      name: 'dfsp-a',
      dfsp: 'dfsp-a',
      address: '127.0.0.1:7101',
      prefix: 'private.dfsp-a.',
      currency: 'USD',
      scale: 2,
      accounts: [],
    },
  ],
  dfsps: [
    {
      name: 'dfsp-a',
      ledger: 'dfsp-a',
      spsp: '127.0.0.1:7102',
      connector: '127.0.0.1:7103',
      spspPrincipal: 'spsp-a',
      customers: ['alice@dfsp-a'],
    },
  ],
};

let directory: string;
let file: string;

beforeAll(() => {
  directory = mkdtempSync(path.join(tmpdir(), 'targets-'));
  file = path.join(directory, 'network.json');
  writeFileSync(file, JSON.stringify(manifest));
});

afterAll(() => rmSync(directory, { recursive: true, force: true }));

test('a host:port is called as given, as the principal given', () => {
  expect(resolveTarget('ledger', '10.0.0.5:7001', { principal: 'ops' }, file)).toEqual({
    address: '10.0.0.5:7001',
    identity: { principal: 'ops' },
  });
});

test.each([
  ['ledger', 'central', '127.0.0.1:7100'],
  ['ledger', 'dfsp-a', '127.0.0.1:7101'],
  ['connector', 'dfsp-a', '127.0.0.1:7103'],
  ['spsp', 'dfsp-a', '127.0.0.1:7102'],
] as const)('the %s named %s is looked up in the manifest, and called as its operator', (kind, name, address) => {
  expect(resolveTarget(kind, name, { principal: 'ops' }, file)).toEqual({ address, identity: { principal: 'admin' } });
});

test('a name the manifest does not have is refused with the names it has', () => {
  expect(() => resolveTarget('connector', 'dfsp-z', {}, file)).toThrow(
    `--connector: must be HOST:PORT or the name of a DFSP of the network in "${file}" (dfsp-a), got "dfsp-z"`,
  );
  expect(() => resolveTarget('ledger', 'hub', {}, file)).toThrow('(central, dfsp-a), got "hub"');
});

test('without a manifest, a name says to start the network', () => {
  expect(() => resolveTarget('ledger', 'dfsp-a', {}, path.join(directory, 'missing.json'))).toThrow(
    'start a network with `interclear network` (or npm start)',
  );
});
