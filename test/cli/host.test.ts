/**
 * `interclear host --config`: several services in one process from a configuration file, each
 * started as its own command line would start it, database URLs from the environment, and one
 * stop for all of them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseHostConfig } from '../../src/cli/host';
import { createLedgerClient } from '../../src/ledger/client';
import { createTestDatabase } from '../support/database';
import { spawnInterclear, stopAllProcesses } from '../support/processes';

jest.setTimeout(60_000);

const ledgerArgs = (prefix: string) => [
  'ledger',
  '--listen',
  '127.0.0.1:0',
  '--ilp-prefix',
  prefix,
  '--currency',
  'USD',
  '--scale',
  '2',
  '--insecure',
];

describe('the configuration file', () => {
  const env = { LEDGER_DATABASE_URL: 'postgres://ledger', SPSP_DATABASE_URL: 'postgres://spsp' };

  it('lists the services in order, each with the database URL its environment variable names', () => {
    const config = parseHostConfig(
      'host.json',
      {
        name: 'dfsp-a',
        services: [
          { args: ledgerArgs('private.dfsp-a.'), databaseUrlEnv: 'LEDGER_DATABASE_URL' },
          { args: ['spsp', '--config', 'spsp.json'], databaseUrlEnv: 'SPSP_DATABASE_URL' },
          { args: ['connector', '--config', 'connector.json'] },
        ],
      },
      env,
    );
    expect(config).toEqual({
      name: 'dfsp-a',
      services: [
        [...ledgerArgs('private.dfsp-a.'), '--database-url', 'postgres://ledger'],
        ['spsp', '--config', 'spsp.json', '--database-url', 'postgres://spsp'],
        ['connector', '--config', 'connector.json'],
      ],
    });
  });

  it.each([
    ['no services', { name: 'dfsp-a', services: [] }, 'services: lists no service'],
    ['an unknown key', { name: 'dfsp-a', services: [], extra: 1 }, 'extra: unknown key'],
    ['a bad name', { name: 'DFSP A', services: [{ args: ['ledger'] }] }, 'name: must be lower-case'],
    [
      'a command that is not a service',
      { name: 'dfsp-a', services: [{ args: ['network'] }] },
      'services[0].args[0]: must be one of ledger, connector, spsp, got "network"',
    ],
    [
      'an argument that is not a string',
      { name: 'dfsp-a', services: [{ args: ['ledger', 7001] }] },
      'services[0].args[1]: must be a string',
    ],
    [
      'a database variable that is not set',
      { name: 'dfsp-a', services: [{ args: ['ledger'], databaseUrlEnv: 'NOT_SET_ANYWHERE' }] },
      'services[0].databaseUrlEnv: names environment variable NOT_SET_ANYWHERE, which is not set',
    ],
  ])('refuses %s', (_case, value, message) => {
    expect(() => parseHostConfig('host.json', value, env)).toThrow(message);
  });
});

describe('interclear host --config', () => {
  const directory = mkdtempSync(path.join(tmpdir(), 'interclear-host-'));

  afterAll(async () => {
    await stopAllProcesses();
    rmSync(directory, { recursive: true, force: true });
  });

  it('runs two ledgers in one process, each on its own database, and stops both on SIGTERM', async () => {
    const [first, second] = await Promise.all([createTestDatabase('host_a'), createTestDatabase('host_b')]);
    try {
      const file = path.join(directory, 'host.json');
      writeFileSync(
        file,
        JSON.stringify({
          name: 'two-ledgers',
          services: [
            { args: ledgerArgs('private.first.'), databaseUrlEnv: 'FIRST_DATABASE_URL' },
            { args: ledgerArgs('private.second.'), databaseUrlEnv: 'SECOND_DATABASE_URL' },
          ],
        }),
      );
      const host = spawnInterclear('host', ['host', '--config', file], {
        FIRST_DATABASE_URL: first.url,
        SECOND_DATABASE_URL: second.url,
        LOG_LEVEL: 'info',
      });
      const addressOf = async (prefix: string) =>
        /serving on (\S+)/.exec(
          await host.waitForLog(new RegExp(`ledger ${prefix.replace(/\./g, '\\.')} .*serving on`)),
        )![1];
      const addresses = [await addressOf('private.first.'), await addressOf('private.second.')];
      for (const [index, address] of addresses.entries()) {
        const client = createLedgerClient(address, { principal: 'someone' });
        try {
          const info = await client.getLedgerInfo({});
          expect(info.ledger?.ilpPrefix).toBe(['private.first.', 'private.second.'][index]);
        } finally {
          client.close();
        }
      }
      const mark = host.mark();
      await host.kill('SIGTERM');
      expect(host.logs()).toMatch(/exited: code 0/);
      // Both stopped, the last started first.
      const stops = host
        .logs()
        .split('\n')
        .filter((line, index) => index >= mark - 1 && line.includes('"msg":"stopping"'));
      expect(stops).toHaveLength(2);
    } finally {
      await Promise.all([first.drop(), second.drop()]);
    }
  });
});
