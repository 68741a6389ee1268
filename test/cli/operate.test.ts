/**
 * The ledger's operator commands as a user runs them, against a stand-in LedgerService: `watch`
 * stops quietly when its reader goes away (`watch | head`), and number flags are checked, with
 * a message that names what they are, before anything is sent; and against a real ledger,
 * deposits and withdrawals that a repeated command cannot apply twice.
 */
import {
  Event,
  EventType,
  LedgerServiceService,
  type LedgerServiceServer,
} from '../../src/gen/interclear/ledger/v1/ledger';
import { startTestLedger, type TestLedger } from '../support/ledger';
import { runInterclear, spawnInterclearCommand, startStandInServer, type StandInServer } from './support';

let server: StandInServer;
const calls: string[] = [];
/** Settles when the latest subscription is cancelled by its subscriber. */
let subscriptionCancelled: Promise<void> = Promise.resolve();

beforeAll(async () => {
  const ledger: Partial<LedgerServiceServer> = {
    // An endless stream: an event every few milliseconds until the subscriber cancels.
    subscribe: (call) => {
      calls.push(`Subscribe after ${call.request.afterSequence ?? 'none'}`);
      let cancelled: () => void = () => undefined;
      subscriptionCancelled = new Promise((resolve) => (cancelled = resolve));
      call.write({ kind: { $case: 'subscribed', value: { headSequence: 0n } } });
      let sequence = 0n;
      const timer = setInterval(() => {
        sequence += 1n;
        const event = Event.fromPartial({ sequence, type: EventType.EVENT_TYPE_MESSAGE_SENT });
        call.write({ kind: { $case: 'event', value: event } });
      }, 5);
      call.on('cancelled', () => {
        clearInterval(timer);
        cancelled();
      });
    },
    listTransfers: (_call, callback) => {
      calls.push('ListTransfers');
      callback(null, { transfers: [], nextPageToken: '' });
    },
    listAccounts: (_call, callback) => {
      calls.push('ListAccounts');
      callback(null, { accounts: [], nextPageToken: '' });
    },
  };
  server = await startStandInServer([
    { definition: LedgerServiceService, implementation: ledger as LedgerServiceServer },
  ]);
});

afterAll(() => server.stop());

beforeEach(() => {
  calls.length = 0;
});

test('`watch | head -3`: when the reader goes away, watch cancels its stream and exits quietly', async () => {
  const watch = spawnInterclearCommand(['watch', '--ledger', server.address, '--principal', 'admin']);
  let stderr = '';
  watch.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => watch.on('exit', (code) => resolve(code)));
  // Like head -3: read three lines, then close the pipe.
  const lines = await new Promise<string[]>((resolve) => {
    let text = '';
    watch.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      const read = text.split('\n');
      if (read.length > 3) {
        watch.stdout!.destroy();
        resolve(read.slice(0, 3));
      }
    });
  });
  expect(lines.map((line) => JSON.parse(line))).toEqual([
    { headSequence: '0' },
    expect.objectContaining({ sequence: '1' }),
    expect.objectContaining({ sequence: '2' }),
  ]);
  expect(await exited).toBe(0);
  expect(stderr).toBe('');
  await subscriptionCancelled;
});

test.each([
  ['watch --after abc', ['watch', '--after', 'abc'], '--after: must be a sequence number (a whole number), got "abc"'],
  [
    'watch --after 2^63',
    ['watch', '--after', '9223372036854775808'],
    '--after: must be a sequence number (a whole number) of at most 9223372036854775807, got "9223372036854775808"',
  ],
  [
    'transfer list --page-size abc',
    ['transfer', 'list', '--page-size', 'abc'],
    '--page-size: must be an integer from 1 to 1000, got "abc"',
  ],
  [
    'transfer list --page-size 5000000000',
    ['transfer', 'list', '--page-size', '5000000000'],
    '--page-size: must be an integer from 1 to 1000, got "5000000000"',
  ],
  [
    'account list --page-size 0',
    ['account', 'list', '--page-size', '0'],
    '--page-size: must be an integer from 1 to 1000, got "0"',
  ],
  [
    'deposit of 2^64',
    ['deposit', 'alice', '18446744073709551616', '--reference', 'r'],
    'amount: must be a whole number of minor units of at most 9223372036854775807, got "18446744073709551616"',
  ],
  [
    'account update --minimum-balance below int8',
    ['account', 'update', 'alice', '--minimum-balance', '-9223372036854775809'],
    '--minimum-balance: must be from -9223372036854775808 to 9223372036854775807 minor units, got "-9223372036854775809"',
  ],
])('`%s` is refused before anything is sent', async (_case, args, message) => {
  const { code, stderr } = await runInterclear([...args, '--ledger', server.address, '--principal', 'admin']);
  expect(stderr).toBe(`interclear: invalid configuration: ${message}\n`);
  expect(code).toBe(2);
  expect(calls).toEqual([]);
});

test('`watch --after` passes the sequence number exactly', async () => {
  const watch = spawnInterclearCommand([
    'watch',
    '--ledger',
    server.address,
    '--principal',
    'admin',
    '--after',
    '9223372036854775807',
  ]);
  const exited = new Promise<number | null>((resolve) => watch.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve) => watch.stdout!.once('data', () => resolve()));
  watch.kill('SIGINT');
  expect(await exited).toBe(0);
  expect(calls).toEqual(['Subscribe after 9223372036854775807']);
});

describe('deposit and withdraw against a real ledger', () => {
  let ledger: TestLedger;

  beforeAll(async () => {
    ledger = await startTestLedger({ ilpPrefix: 'private.deposits.', currencyCode: 'USD', scale: 2 });
    await ledger
      .client('admin')
      .createAccount({ name: 'alice', owner: 'alice', minimumBalanceUnlimited: false, disabled: false });
  });

  afterAll(() => ledger.stop());

  const run = (...args: string[]) =>
    runInterclear([...args, '--ledger', ledger.ledger.address, '--principal', 'admin']);
  const balance = async () => (await ledger.client('admin').getAccount({ name: 'alice' })).account?.balance;

  test('the same command twice (a retry after a timeout) moves the funds once; another reference moves them again', async () => {
    const first = await run('deposit', 'alice', '500', '--reference', 'wire-007');
    expect(first.code).toBe(0);
    const again = await run('deposit', 'alice', '500', '--reference', 'wire-007');
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual(JSON.parse(first.stdout));
    expect(await balance()).toBe(500n);

    // The same reference with another amount is another deposit under a taken id: refused.
    const changed = await run('deposit', 'alice', '600', '--reference', 'wire-007');
    expect(changed.code).not.toBe(0);
    expect(changed.stderr).toContain(
      'ALREADY_EXISTS: a deposit of another amount or account was made under reference "wire-007"',
    );
    expect(changed.stderr).toContain('give this one a reference of its own (or an --id)');
    expect(await balance()).toBe(500n);

    expect((await run('deposit', 'alice', '500', '--reference', 'wire-008')).code).toBe(0);
    expect(await balance()).toBe(1000n);
    // A withdrawal under the same reference as a deposit is its own operation.
    expect((await run('withdraw', 'alice', '300', '--reference', 'wire-008')).code).toBe(0);
    expect((await run('withdraw', 'alice', '300', '--reference', 'wire-008')).code).toBe(0);
    expect(await balance()).toBe(700n);
  });

  test('a repeat of a deposit recorded well before says that nothing moved now', async () => {
    // Recorded "two minutes ago" by the ledger's clock.
    ledger.advanceClock(-120_000);
    try {
      expect((await run('deposit', 'alice', '100', '--reference', 'wire-009')).code).toBe(0);
    } finally {
      ledger.advanceClock(120_000);
    }
    const before = await balance();
    const again = await run('deposit', 'alice', '100', '--reference', 'wire-009');
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(
      /^note: this deposit was recorded earlier, at .*, under reference "wire-009"; nothing moved now\. A new deposit needs a new --reference \(or --id\)\.\n$/,
    );
    expect(await balance()).toBe(before);
    // A retry moments after the first run is the same operation, and says nothing.
    const fresh = await run('deposit', 'alice', '100', '--reference', 'wire-010');
    const retry = await run('deposit', 'alice', '100', '--reference', 'wire-010');
    expect([fresh.stderr, retry.stderr]).toEqual(['', '']);
  });
});
