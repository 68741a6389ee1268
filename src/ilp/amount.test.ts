import fc from 'fast-check';
import {
  AMOUNT_MAX,
  applySpread,
  convertAmount,
  destinationAmountForSource,
  formatAmount,
  invertRate,
  parseAmount,
  parseRate,
  parseRational,
  sourceAmountForDestination,
  type Rational,
  type RoundingMode,
} from './amount';
import { InvalidAmountError } from './errors';

function rational(numerator: bigint, denominator: bigint): Rational {
  return { numerator, denominator };
}

describe('parseAmount', () => {
  test.each([
    ['0', 0, 0n],
    ['12', 0, 12n],
    ['18446744073709551615', 0, AMOUNT_MAX],
    ['12.34', 2, 1234n],
    ['12.3', 2, 1230n],
    ['12', 2, 1200n],
    ['0.01', 2, 1n],
    ['0', 2, 0n],
    ['184467440737095516.15', 2, AMOUNT_MAX],
    ['1', 6, 1_000_000n],
    ['0.000001', 6, 1n],
    ['123456.789012', 6, 123_456_789_012n],
    ['1.5', 9, 1_500_000_000n],
    ['0.000000001', 9, 1n],
    ['18446744073.709551615', 9, AMOUNT_MAX],
  ])('reads %s at scale %i as %s minor units', (text, scale, expected) => {
    expect(parseAmount(text, scale)).toBe(expected);
  });

  test.each([
    ['more fraction digits than the scale', '12.345', 2, /3 fraction digits, the asset scale is 2/],
    ['a fraction at scale 0', '1.0', 0, /1 fraction digits, the asset scale is 0/],
    ['ten fraction digits at scale 9', '0.0000000001', 9, /10 fraction digits/],
    ['a negative amount', '-1', 2, /negative/],
    ['negative zero', '-0', 2, /negative/],
    ['2^64 minor units at scale 0', '18446744073709551616', 0, /exceeds 2\^64 - 1/],
    ['2^64 minor units at scale 2', '184467440737095516.16', 2, /exceeds 2\^64 - 1/],
    ['2^64 minor units at scale 9', '18446744073.709551616', 9, /exceeds 2\^64 - 1/],
    ['an empty string', '', 2, /not a plain decimal/],
    ['a plus sign', '+1', 2, /not a plain decimal/],
    ['spaces', ' 1', 2, /not a plain decimal/],
    ['an exponent', '1e3', 0, /not a plain decimal/],
    ['hexadecimal', '0x10', 0, /not a plain decimal/],
    ['a trailing point', '1.', 2, /not a plain decimal/],
    ['a leading point', '.5', 2, /not a plain decimal/],
    ['a leading zero', '01', 2, /not a plain decimal/],
    ['a comma', '1,5', 2, /not a plain decimal/],
    ['two points', '1.2.3', 6, /not a plain decimal/],
    ['NaN', 'NaN', 2, /not a plain decimal/],
    ['Infinity', 'Infinity', 2, /not a plain decimal/],
    ['a non-ASCII digit', '١', 0, /not a plain decimal/],
    ['text too long to be an amount', '1'.repeat(300), 0, /too long/],
  ])('refuses %s', (_case, text, scale, message) => {
    expect(() => parseAmount(text, scale)).toThrow(InvalidAmountError);
    expect(() => parseAmount(text, scale)).toThrow(message);
  });

  test('refuses a number instead of text', () => {
    expect(() => parseAmount(12 as unknown as string, 2)).toThrow(InvalidAmountError);
  });

  test.each([[-1], [1.5], [256], [Number.NaN]])('refuses the scale %s', (scale) => {
    expect(() => parseAmount('1', scale)).toThrow(RangeError);
  });
});

describe('formatAmount', () => {
  test.each([
    [0n, 0, '0'],
    [12n, 0, '12'],
    [AMOUNT_MAX, 0, '18446744073709551615'],
    [1234n, 2, '12.34'],
    [1230n, 2, '12.30'],
    [1n, 2, '0.01'],
    [0n, 2, '0.00'],
    [AMOUNT_MAX, 2, '184467440737095516.15'],
    [1n, 6, '0.000001'],
    [123_456_789_012n, 6, '123456.789012'],
    [1_500_000_000n, 9, '1.500000000'],
    [AMOUNT_MAX, 9, '18446744073.709551615'],
  ])('writes %s minor units at scale %i as %s', (amount, scale, expected) => {
    expect(formatAmount(amount, scale)).toBe(expected);
  });

  test.each([[-1n], [AMOUNT_MAX + 1n]])('refuses %s', (amount) => {
    expect(() => formatAmount(amount, 2)).toThrow(InvalidAmountError);
  });

  test('parseAmount reads back what formatAmount writes, at every scale', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: AMOUNT_MAX }), fc.integer({ min: 0, max: 30 }), (amount, scale) => {
        expect(parseAmount(formatAmount(amount, scale), scale)).toBe(amount);
      }),
    );
  });
});

describe('parseRational and parseRate', () => {
  test.each([
    ['0.8734', 4367n, 5000n],
    ['1', 1n, 1n],
    ['0.002', 1n, 500n],
    ['2.50', 5n, 2n],
    ['1234.5678', 6172839n, 5000n],
    ['0.000000001', 1n, 1_000_000_000n],
  ])('reads %s as %s/%s in lowest terms', (text, numerator, denominator) => {
    expect(parseRate(text)).toEqual(rational(numerator, denominator));
    expect(parseRational(text)).toEqual(rational(numerator, denominator));
  });

  test('a rational may be zero (no spread), a rate may not', () => {
    expect(parseRational('0')).toEqual(rational(0n, 1n));
    expect(parseRational('0.000')).toEqual(rational(0n, 1n));
    expect(() => parseRate('0')).toThrow(/greater than zero/);
    expect(() => parseRate('0.00')).toThrow(InvalidAmountError);
  });

  test.each(['-1', '-0.5', '1e-3', '', '.5', '1/3', '0.1 '])('refuses %j', (text) => {
    expect(() => parseRational(text)).toThrow(InvalidAmountError);
    expect(() => parseRate(text)).toThrow(InvalidAmountError);
  });

  test('invertRate turns a rate around', () => {
    expect(invertRate(parseRate('0.8734'))).toEqual(rational(5000n, 4367n));
    expect(invertRate(invertRate(parseRate('0.8734')))).toEqual(parseRate('0.8734'));
  });

  test.each([
    ['zero', rational(0n, 1n)],
    ['a zero denominator', rational(1n, 0n)],
    ['a negative numerator', rational(-1n, 2n)],
  ])('invertRate refuses %s', (_case, rate) => {
    expect(() => invertRate(rate)).toThrow(InvalidAmountError);
  });
});

describe('applySpread', () => {
  test.each([
    ['0.8734', '0.002', '0.8716532'],
    ['0.8734', '0', '0.8734'],
    ['2', '0.5', '1'],
    ['1', '0.01', '0.99'],
    ['1', '0.999999999', '0.000000001'],
  ])('rate %s with spread %s is %s', (rate, spread, expected) => {
    expect(applySpread(parseRate(rate), parseRational(spread))).toEqual(parseRate(expected));
  });

  test.each([
    ['a spread of 1', rational(1n, 1n), /below 1/],
    ['a spread above 1', rational(3n, 2n), /below 1/],
    ['a negative spread', rational(-1n, 100n), /non-negative/],
  ])('refuses %s', (_case, spread, message) => {
    expect(() => applySpread(parseRate('1'), spread)).toThrow(InvalidAmountError);
    expect(() => applySpread(parseRate('1'), spread)).toThrow(message);
  });

  test('never raises the rate', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.bigInt({ min: 0n, max: 999n }),
        (numerator, denominator, spreadThousandths) => {
          const rate = rational(numerator, denominator);
          const spread = rational(spreadThousandths, 1000n);
          const result = applySpread(rate, spread);
          // result ≤ rate  ⇔  result.numerator × rate.denominator ≤ rate.numerator × result.denominator
          expect(result.numerator * denominator <= numerator * result.denominator).toBe(true);
        },
      ),
    );
  });
});

describe('convertAmount', () => {
  const oneToOne = rational(1n, 1n);
  const oneThird = rational(1n, 3n);

  test.each<[string, bigint, Rational, number, number, bigint, bigint]>([
    // case, amount, rate, source scale, destination scale, rounded down, rounded up
    ['USD 1.00 → EUR at 0.8734', 100n, parseRate('0.8734'), 2, 2, 87n, 88n],
    ['USD 100.00 → EUR at 0.8734, exact', 10_000n, parseRate('0.8734'), 2, 2, 8734n, 8734n],
    ['0.01 at scale 2 → scale 9 at 0.5, exact', 1n, parseRate('0.5'), 2, 9, 5_000_000n, 5_000_000n],
    ['1 unit at scale 9 → scale 2, below a cent', 1n, oneToOne, 9, 2, 0n, 1n],
    ['1.5 at scale 6 → scale 0', 1_500_000n, oneToOne, 6, 0, 1n, 2n],
    ['1.000001 at scale 6 → scale 0', 1_000_001n, oneToOne, 6, 0, 1n, 2n],
    ['0 stays 0', 0n, parseRate('123.456'), 0, 9, 0n, 0n],
    ['1.00 at a third', 100n, oneThird, 2, 2, 33n, 34n],
    ['0.99 at a third, exact', 99n, oneThird, 2, 2, 33n, 33n],
    [
      'scale 0 → 6 just under 2^64',
      18_446_744_073_709n,
      oneToOne,
      0,
      6,
      18_446_744_073_709_000_000n,
      18_446_744_073_709_000_000n,
    ],
    ['2^64 - 1 at scale 9 unchanged', AMOUNT_MAX, oneToOne, 9, 9, AMOUNT_MAX, AMOUNT_MAX],
    ['2^64 - 1 at scale 2 → scale 0', AMOUNT_MAX, oneToOne, 2, 0, 184_467_440_737_095_516n, 184_467_440_737_095_517n],
    [
      '2^64 - 1 at scale 9 → scale 6 at 1.5',
      AMOUNT_MAX,
      parseRate('1.5'),
      9,
      6,
      27_670_116_110_564_327n,
      27_670_116_110_564_328n,
    ],
    ['2^64 - 1 at half', AMOUNT_MAX, parseRate('0.5'), 0, 0, 9_223_372_036_854_775_807n, 9_223_372_036_854_775_808n],
  ])('%s', (_case, amount, rate, sourceScale, destinationScale, down, up) => {
    expect(convertAmount({ amount, rate, sourceScale, destinationScale, rounding: 'down' })).toBe(down);
    expect(convertAmount({ amount, rate, sourceScale, destinationScale, rounding: 'up' })).toBe(up);
  });

  test.each<[string, bigint, Rational, number, number, RoundingMode]>([
    ['2^64 - 1 at scale 0 → scale 2', AMOUNT_MAX, oneToOne, 0, 2, 'down'],
    ['2^64 - 1 doubled', AMOUNT_MAX, parseRate('2'), 0, 0, 'down'],
    ['2^64 - 1 at a rate of 2^64 / (2^64 - 1)', AMOUNT_MAX, rational(AMOUNT_MAX + 1n, AMOUNT_MAX), 0, 0, 'up'],
  ])('refuses a result above 2^64 - 1: %s', (_case, amount, rate, sourceScale, destinationScale, rounding) => {
    expect(() => convertAmount({ amount, rate, sourceScale, destinationScale, rounding })).toThrow(/exceeds 2\^64 - 1/);
  });

  test.each<[string, bigint, Rational]>([
    ['a negative amount', -1n, oneToOne],
    ['an amount of 2^64', AMOUNT_MAX + 1n, oneToOne],
    ['a zero rate', 1n, rational(0n, 1n)],
    ['a zero denominator', 1n, rational(1n, 0n)],
  ])('refuses %s', (_case, amount, rate) => {
    expect(() => convertAmount({ amount, rate, sourceScale: 2, destinationScale: 2, rounding: 'down' })).toThrow(
      InvalidAmountError,
    );
  });

  test('down is the floor and up the ceiling of the exact value, or the result is refused as too large', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: AMOUNT_MAX }),
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.constantFrom(0, 2, 6, 9),
        fc.constantFrom(0, 2, 6, 9),
        (amount, numerator, denominator, sourceScale, destinationScale) => {
          const rate = rational(numerator, denominator);
          // exact = amount × n × 10^d / (den × 10^s), compared in integers.
          const exactNumerator = amount * numerator * 10n ** BigInt(destinationScale);
          const exactDenominator = denominator * 10n ** BigInt(sourceScale);
          const floor = exactNumerator / exactDenominator;
          const ceiling = floor * exactDenominator === exactNumerator ? floor : floor + 1n;
          for (const [rounding, expected] of [
            ['down', floor],
            ['up', ceiling],
          ] as const) {
            const convert = () => convertAmount({ amount, rate, sourceScale, destinationScale, rounding });
            if (expected > AMOUNT_MAX) {
              expect(convert).toThrow(InvalidAmountError);
            } else {
              expect(convert()).toBe(expected);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('quoting in the connector’s favour', () => {
  test.each<[string, bigint, string, number, number, bigint]>([
    ['EUR 87.34 from USD at 0.8734', 8734n, '0.8734', 2, 2, 10_000n],
    ['EUR 1.00 from USD at 0.8734', 100n, '0.8734', 2, 2, 115n],
    ['1 drop (scale 6) from cents at 1', 1n, '1', 2, 6, 1n],
    ['1 unit at scale 9 from whole units at 3', 1n, '3', 0, 9, 1n],
  ])(
    'sourceAmountForDestination: %s costs %s',
    (_case, destinationAmount, rate, sourceScale, destinationScale, expected) => {
      expect(
        sourceAmountForDestination({ destinationAmount, rate: parseRate(rate), sourceScale, destinationScale }),
      ).toBe(expected);
    },
  );

  test.each<[string, bigint, string, number, number, bigint]>([
    ['USD 1.15 at 0.8734', 115n, '0.8734', 2, 2, 100n],
    ['USD 1.14 at 0.8734', 114n, '0.8734', 2, 2, 99n],
    ['0.01 at scale 2 → scale 0', 1n, '1', 2, 0, 0n],
  ])(
    'destinationAmountForSource: %s delivers %s',
    (_case, sourceAmount, rate, sourceScale, destinationScale, expected) => {
      expect(destinationAmountForSource({ sourceAmount, rate: parseRate(rate), sourceScale, destinationScale })).toBe(
        expected,
      );
    },
  );

  test('the quoted source amount delivers at least the destination amount, and one unit less does not', () => {
    fc.assert(
      fc.property(
        // Bounded so that no quote exceeds 2^64 - 1: 10^6 × 10^3 × 10^9 < 2^64.
        fc.bigInt({ min: 0n, max: 10n ** 6n }),
        fc.bigInt({ min: 1n, max: 10n ** 3n }),
        fc.bigInt({ min: 1n, max: 10n ** 3n }),
        fc.constantFrom(0, 2, 6, 9),
        fc.constantFrom(0, 2, 6, 9),
        (destinationAmount, numerator, denominator, sourceScale, destinationScale) => {
          const rate = rational(numerator, denominator);
          const sourceAmount = sourceAmountForDestination({ destinationAmount, rate, sourceScale, destinationScale });
          const delivered = destinationAmountForSource({ sourceAmount, rate, sourceScale, destinationScale });
          expect(delivered >= destinationAmount).toBe(true);
          if (sourceAmount > 0n) {
            const short = destinationAmountForSource({
              sourceAmount: sourceAmount - 1n,
              rate,
              sourceScale,
              destinationScale,
            });
            expect(short < destinationAmount).toBe(true);
          }
        },
      ),
    );
  });
});
