/** The SPSP configuration file: what it accepts, and errors that name the bad key. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../src/platform/config';
import { loadSpspConfig, parseSpspConfig } from '../../src/spsp/config';

const secret = 'ab'.repeat(32);
const valid = {
  dfsp: 'dfsp-b',
  listen: '127.0.0.1:7202',
  principal: 'spsp-b',
  ledger: '127.0.0.1:7201',
  connector: '127.0.0.1:7203',
  secret,
  receivers: [{ name: 'bob', displayName: 'Bob', maximumAmount: '5000' }],
  directory: { 'dfsp-a': { spsp: '127.0.0.1:7102', prefix: 'private.dfsp-a.' } },
};

test('a minimal file gets the documented defaults', () => {
  const settings = parseSpspConfig(valid);
  expect(settings).toMatchObject({
    name: 'spsp-dfsp-b',
    dfsp: 'dfsp-b',
    ledgerEndpoint: '127.0.0.1:7201',
    quotingEndpoint: '127.0.0.1:7203',
    paymentRequestExpiryMs: 30_000,
    maxPaymentRequestExpiryMs: 300_000,
    destinationHoldMs: 5_000,
    receivers: [
      { name: 'bob', account: 'bob', displayName: 'Bob', minimumAmount: 1n, maximumAmount: 5000n, disabled: false },
    ],
    directory: [{ dfsp: 'dfsp-a', spspEndpoint: '127.0.0.1:7102', prefix: 'private.dfsp-a.' }],
  });
  expect(settings.secret).toEqual(Buffer.from(secret, 'hex'));
});

test('the secret comes from a file relative to the configuration file', () => {
  const directory = mkdtempSync(path.join(tmpdir(), 'spsp-config-'));
  writeFileSync(path.join(directory, 'receiver.secret'), `${'cd'.repeat(32)}\n`);
  const { secret: _inline, ...rest } = valid;
  writeFileSync(path.join(directory, 'spsp.json'), JSON.stringify({ ...rest, secretFile: 'receiver.secret' }));
  try {
    expect(loadSpspConfig(path.join(directory, 'spsp.json')).secret).toEqual(Buffer.from('cd'.repeat(32), 'hex'));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test.each([
  ['an unknown key', { colour: 'blue' }, 'colour'],
  ['no DFSP name', { dfsp: undefined }, 'dfsp'],
  ['a listen address without port', { listen: 'localhost' }, 'listen'],
  ['a short secret', { secret: 'abcd' }, 'secret'],
  ['no secret at all', { secret: undefined }, 'secretFile'],
  ['an amount as a JSON number', { receivers: [{ name: 'bob', maximumAmount: 5000 }] }, 'receivers[0].maximumAmount'],
  [
    'a maximum below the minimum',
    { receivers: [{ name: 'bob', minimumAmount: '10', maximumAmount: '5' }] },
    'receivers[0].maximumAmount',
  ],
  ['a bad account name', { receivers: [{ name: 'bob', account: 'bob smith' }] }, 'receivers[0].account'],
  [
    'two receivers with one name',
    { receivers: [{ name: 'bob' }, { name: 'bob', account: 'bob2' }] },
    'receivers[1].name',
  ],
  [
    'a directory prefix without the dot',
    { directory: { 'dfsp-a': { spsp: '127.0.0.1:1', prefix: 'private.dfsp-a' } } },
    'directory.dfsp-a.prefix',
  ],
  ['a directory entry without address', { directory: { 'dfsp-a': {} } }, 'directory.dfsp-a.spsp'],
  [
    'a maximum expiry below the default',
    { paymentRequestExpiry: '1m', maxPaymentRequestExpiry: '30s' },
    'maxPaymentRequestExpiry',
  ],
  [
    'a payment request expiry no date can hold',
    { paymentRequestExpiry: '99999999999h', maxPaymentRequestExpiry: '99999999999h' },
    'paymentRequestExpiry',
  ],
  ['a maximum payment request expiry above a day', { maxPaymentRequestExpiry: '25h' }, 'maxPaymentRequestExpiry'],
  ['a destination hold above an hour', { destinationHoldTime: '61m' }, 'destinationHoldTime'],
  [
    'an abandonment time above a day',
    { paymentAbandonmentTime: '999999999999999999999999h' },
    'paymentAbandonmentTime',
  ],
  ['an abandonment time in milliseconds above a day', { paymentAbandonmentTime: 86_400_001 }, 'paymentAbandonmentTime'],
  [
    'a maximum amount above the ledger’s largest',
    { receivers: [{ name: 'bob', maximumAmount: '9223372036854775808' }] },
    'receivers[0].maximumAmount',
  ],
  [
    'a minimum amount above the ledger’s largest',
    { receivers: [{ name: 'bob', minimumAmount: '9999999999999999999' }] },
    'receivers[0].minimumAmount',
  ],
])('%s is refused, naming the key', (_case, change, key) => {
  const config: Record<string, unknown> = { ...valid, ...change };
  for (const [name, value] of Object.entries(change)) if (value === undefined) delete config[name];
  let error: unknown;
  try {
    parseSpspConfig(config);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).key).toBe(key);
});

test('durations and amounts up to their maximum are accepted', () => {
  const settings = parseSpspConfig({
    ...valid,
    receivers: [{ name: 'bob', maximumAmount: '9223372036854775807' }],
    paymentRequestExpiry: '24h',
    maxPaymentRequestExpiry: '24h',
    destinationHoldTime: '1h',
    paymentAbandonmentTime: '24h',
  });
  expect(settings).toMatchObject({
    receivers: [{ maximumAmount: 2n ** 63n - 1n }],
    paymentRequestExpiryMs: 86_400_000,
    maxPaymentRequestExpiryMs: 86_400_000,
    destinationHoldMs: 3_600_000,
    paymentAbandonmentMs: 86_400_000,
  });
});

test('a duration above its maximum is refused with the maximum in the message', () => {
  expect(() => parseSpspConfig({ ...valid, paymentRequestExpiry: '99999999999h' })).toThrow(
    'paymentRequestExpiry: must be at most 24h, got "99999999999h"',
  );
});
