/**
 * The shared configuration parsers: every number a flag or a file gives is bounded, so a value
 * too large for the ledger, a date or a timer is refused with its key instead of failing later
 * (as an internal error, a serialization failure, or every request that uses it).
 */
import { parseConnectorConfig } from '../../src/connector/config';
import { exampleConnectorConfigs } from '../../src/connector/example';
import { ConfigError, durationMaxMs, parseDuration, parseMinorUnits, parseSequence } from '../../src/platform/config';

/** The message of the ConfigError `parse` throws. */
function refusal(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('minor units', () => {
  test.each([
    ['0', 0n],
    ['250', 250n],
    ['9223372036854775807', 2n ** 63n - 1n],
  ])('%s is read exactly', (text, amount) => {
    expect(parseMinorUnits('amount', text)).toBe(amount);
  });

  test.each([
    ['one more than the ledger’s largest amount', '9223372036854775808'],
    ['2^64', '18446744073709551616'],
  ])('%s is refused with the maximum', (_case, text) => {
    expect(refusal(() => parseMinorUnits('amount', text))).toBe(
      `amount: must be a whole number of minor units of at most 9223372036854775807, got "${text}"`,
    );
  });

  test.each(['abc', '-5', '1.5', ''])('"%s" is not a number of minor units', (text) => {
    expect(refusal(() => parseMinorUnits('amount', text))).toBe(
      `amount: must be a whole number of minor units, got "${text}"`,
    );
  });

  test('a caller may set a lower maximum', () => {
    expect(refusal(() => parseMinorUnits('amount', '101', 100n))).toMatch(/at most 100, got "101"/);
  });
});

describe('sequence numbers', () => {
  test('are read exactly, up to the ledger’s largest', () => {
    expect(parseSequence('--after', '0')).toBe(0n);
    expect(parseSequence('--after', '9223372036854775807')).toBe(2n ** 63n - 1n);
  });

  test.each([
    ['abc', '--after: must be a sequence number (a whole number), got "abc"'],
    [
      '9223372036854775808',
      '--after: must be a sequence number (a whole number) of at most 9223372036854775807, got "9223372036854775808"',
    ],
  ])('%s is refused as a sequence number, not an amount', (text, message) => {
    expect(refusal(() => parseSequence('--after', text))).toBe(message);
  });
});

describe('durations', () => {
  test.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['2m', 120_000],
    ['24h', 86_400_000],
    [1500, 1500],
  ])('%s is read in milliseconds', (value, durationMs) => {
    expect(parseDuration('timeout', value)).toBe(durationMs);
  });

  test('a duration written as text without a unit is refused: "10" could be seconds as well as milliseconds', () => {
    expect(refusal(() => parseDuration('--max-hold-time', '10'))).toBe(
      '--max-hold-time: needs a unit: 10ms, 10s or 10m, got "10"',
    );
    expect(parseDuration('timeout', '0')).toBe(0);
  });

  test('without a maximum of its own, a duration is at most what a timer can wait', () => {
    expect(parseDuration('timeout', durationMaxMs)).toBe(durationMaxMs);
    expect(refusal(() => parseDuration('timeout', '99999999999h'))).toBe(
      'timeout: must be at most 2147483647ms, got "99999999999h"',
    );
    expect(refusal(() => parseDuration('timeout', durationMaxMs + 1))).toBe(
      'timeout: must be at most 2147483647ms, got 2147483648',
    );
  });

  test('a caller’s maximum is named in the unit it divides', () => {
    expect(parseDuration('hold', '1h', 3_600_000)).toBe(3_600_000);
    expect(refusal(() => parseDuration('hold', '3601s', 3_600_000))).toBe('hold: must be at most 1h, got "3601s"');
    expect(refusal(() => parseDuration('window', 60_001, 60_000))).toBe('window: must be at most 1m, got 60001');
  });
});

describe('the connector’s durations', () => {
  const endpoints = {
    dfspALedger: '127.0.0.1:7101',
    centralLedger: '127.0.0.1:7100',
    dfspBLedger: '127.0.0.1:7201',
    connectorA: '127.0.0.1:7103',
    connectorB: '127.0.0.1:7203',
  };
  const valid = () => exampleConnectorConfigs(endpoints).a as Record<string, unknown>;

  test.each([
    ['messageWindow', '2m', 'messageWindow: must be at most 1m, got "2m"'],
    ['maxHoldTime', '99999999999h', 'maxHoldTime: must be at most 1h, got "99999999999h"'],
    ['destinationHoldTime', '2h', 'destinationHoldTime: must be at most 1h, got "2h"'],
  ])('%s of %s is refused with its maximum', (key, value, message) => {
    expect(refusal(() => parseConnectorConfig({ ...valid(), [key]: value }))).toBe(message);
  });

  test('an hour of hold is accepted', () => {
    const settings = parseConnectorConfig({ ...valid(), maxHoldTime: '1h', destinationHoldTime: '59m' });
    expect(settings).toMatchObject({ maxHoldMs: 3_600_000, destinationHoldMs: 3_540_000 });
  });
});
