import fc from 'fast-check';
import { InvalidAmountError, parseRate, parseRational, type Rational } from '../ilp';
import {
  createStaticRateSource,
  formatRational,
  hopDestinationAmount,
  hopSourceAmount,
  type HopConversion,
} from './rates';

const hop = (rate: string, spread: string, sourceScale: number, destinationScale: number): HopConversion => ({
  rate: parseRate(rate),
  spread: parseRational(spread),
  sourceScale,
  destinationScale,
});

describe('one hop, by source amount: rate × (1 − spread), scaled, rounded down', () => {
  test.each<[string, string, string, number, number, bigint, bigint]>([
    // rate, spread, [source scale → destination scale], source amount, destination amount
    ['1', '0', 'same scale, no spread', 2, 2, 1000n, 1000n],
    ['1', '0.002', '0.2 % kept', 2, 2, 1000n, 998n],
    ['1', '0.002', 'rounds down a fraction of a cent', 2, 2, 999n, 997n], // 997.002
    ['0.9', '0.002', 'USD → EUR', 2, 2, 10000n, 8982n], // 8982.0
    ['0.9', '0.002', 'USD cents → EUR at scale 4', 2, 4, 10000n, 898200n],
    ['0.9', '0.002', 'EUR scale 4 → 2 rounds down', 4, 2, 898299n, 8068n], // 8068.52...
    ['110.25', '0.002', 'USD → JPY (scale 0)', 2, 0, 1234n, 1357n], // 1357.85...
    ['0.0090702947845805', '0', 'JPY → USD', 0, 2, 1000n, 907n], // 907.029...
    ['1', '0.002', 'a tiny amount buys nothing', 2, 2, 1n, 0n],
  ])(
    '%s at spread %s (%s): %i→%i, %d buys %d',
    (rate, spread, _case, sourceScale, destinationScale, source, destination) => {
      expect(hopDestinationAmount(source, hop(rate, spread, sourceScale, destinationScale))).toBe(destination);
    },
  );
});

describe('one hop, by destination amount: the inverse, rounded up', () => {
  test.each<[string, string, number, number, bigint, bigint]>([
    ['1', '0', 2, 2, 1000n, 1000n],
    ['1', '0.002', 2, 2, 998n, 1000n], // 998 / 0.998 = 1000 exactly
    ['1', '0.002', 2, 2, 1000n, 1003n], // 1002.004 → 1003
    ['0.9', '0.002', 2, 2, 8982n, 10000n],
    ['0.9', '0.002', 2, 4, 898200n, 10000n],
    ['0.9', '0.002', 2, 4, 898201n, 10001n], // a sliver more costs a whole cent
    ['0.9', '0.002', 4, 2, 1000n, 111334n], // 111333.7... → 111334
    ['110.25', '0.002', 2, 0, 1000n, 909n], // 908.8... → 909
  ])(
    '%s at spread %s, %i→%i: %d arrives for %d',
    (rate, spread, sourceScale, destinationScale, destination, source) => {
      expect(hopSourceAmount(destination, hop(rate, spread, sourceScale, destinationScale))).toBe(source);
    },
  );
});

test('paying the quoted source amount always delivers at least the destination amount (property)', () => {
  const rates = ['0.9', '1', '1.1', '110.25', '0.0090702947845805', '3.3333'];
  fc.assert(
    fc.property(
      fc.constantFrom(...rates),
      fc.constantFrom('0', '0.002', '0.05'),
      fc.integer({ min: 0, max: 6 }),
      fc.integer({ min: 0, max: 6 }),
      fc.bigInt({ min: 1n, max: 10n ** 12n }),
      (rate, spread, sourceScale, destinationScale, destination) => {
        const conversion = hop(rate, spread, sourceScale, destinationScale);
        let source: bigint;
        try {
          source = hopSourceAmount(destination, conversion);
        } catch (error) {
          // Beyond 2^64 - 1 minor units: refused (F03), nothing to deliver.
          expect(error).toBeInstanceOf(InvalidAmountError);
          return;
        }
        expect(hopDestinationAmount(source, conversion)).toBeGreaterThanOrEqual(destination);
        // And one minor unit less would not: the connector asks for no more than it must.
        if (source > 0n) expect(hopDestinationAmount(source - 1n, conversion)).toBeLessThan(destination);
      },
    ),
  );
});

describe('the static rate source', () => {
  const source = createStaticRateSource([
    { source: 'USD', destination: 'EUR', rate: parseRate('0.9') },
    { source: 'EUR', destination: 'JPY', rate: parseRate('160') },
    { source: 'JPY', destination: 'EUR', rate: parseRate('0.00625') },
  ]);
  test.each<[string, string, Rational | undefined]>([
    ['USD', 'EUR', { numerator: 9n, denominator: 10n }],
    ['EUR', 'USD', { numerator: 10n, denominator: 9n }], // derived exactly, not 1.111…
    ['EUR', 'JPY', { numerator: 160n, denominator: 1n }],
    ['JPY', 'EUR', { numerator: 1n, denominator: 160n }], // configured, not derived
    ['USD', 'USD', { numerator: 1n, denominator: 1n }],
    ['USD', 'JPY', undefined],
  ])('%s → %s', (from, to, rate) => {
    expect(source.rate(from, to)).toEqual(rate);
  });
  test('lists configured rates, then derived inverses of pairs configured one way', () => {
    expect(source.list().map((entry) => `${entry.source}/${entry.destination}${entry.derived ? '*' : ''}`)).toEqual([
      'USD/EUR',
      'EUR/JPY',
      'JPY/EUR',
      'EUR/USD*',
    ]);
  });
});

test.each<[Rational, string]>([
  [{ numerator: 9n, denominator: 10n }, '0.9'],
  [{ numerator: 10n, denominator: 9n }, '1.111111111111111111'],
  [{ numerator: 2n, denominator: 3n }, '0.666666666666666667'],
  [{ numerator: 160n, denominator: 1n }, '160'],
  [{ numerator: 1n, denominator: 500n }, '0.002'],
  [{ numerator: 0n, denominator: 1n }, '0'],
])('formatRational(%o) is %s', (value, text) => {
  expect(formatRational(value)).toBe(text);
});
