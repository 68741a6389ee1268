/**
 * Values the services would refuse at start are refused by `helm template` instead: otherwise helm
 * reports success and the pods exit 2 in CrashLoopBackOff. Each case is checked on both sides:
 * the chart fails with a message naming the value's path and the limit, and the service's own
 * parser refuses the configuration the chart would have rendered, so the chart's limits cannot
 * drift from the code's. Values at the limits render and parse.
 */
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { parseConnectorConfig } from '../../src/connector/config';
import { ConfigError, parseDuration } from '../../src/platform/config';
import { parseSpspConfig } from '../../src/spsp/config';
import { ciValues, instanceName, type Manifest, named, render, renderFailure, type RenderOptions } from './helm';

const hub = ciValues('hub-two-dfsps-values.yaml');
const receiverSecret = 'ab'.repeat(32);

type Json = Record<string, unknown>;

function configOf(manifests: Manifest[], dfsp: string, component: 'connector' | 'spsp'): Json {
  const configMap = named<IConfigMap>(manifests, 'ConfigMap', instanceName(dfsp, component));
  return JSON.parse(configMap.data?.[`${component}.json`] ?? 'null') as Json;
}

/** The SPSP parser, given the receiver secret inline instead of the pod's mounted file. */
function parseSpsp(config: Json) {
  const { secretFile: _mounted, ...rest } = config;
  return parseSpspConfig({ ...rest, secret: receiverSecret });
}

/** The key named by the ConfigError `parse` throws; fails when it accepts. */
function refusedKey(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    if (error instanceof ConfigError) return error.key;
    throw error;
  }
  throw new Error('the service accepted the configuration');
}

let base: Manifest[];
beforeAll(() => {
  base = render({ valuesFiles: [hub] });
});

interface RefusedCase {
  /** What is wrong. */
  label: string;
  /** The overrides of the hub example that helm must refuse. */
  values: RenderOptions;
  /** What helm's error says. */
  message: string;
  /** The key the service's ConfigError names when it refuses the same configuration. */
  serviceKey: string;
  /** The service refusing the same configuration, given the configuration the chart renders without the override. */
  service: (connectorA: Json, spspA: Json, spspB: Json) => unknown;
}

const cases: RefusedCase[] = [
  {
    label: 'a connector message window above 1m',
    values: { set: ['dfsps[0].connector.messageWindow=2m', 'dfsps[0].connector.maxHoldTime=10m'] },
    message: 'dfsps[0].connector.messageWindow: must be at most 1m, got "2m"',
    serviceKey: 'messageWindow',
    service: (connector) => parseConnectorConfig({ ...connector, messageWindow: '2m', maxHoldTime: '10m' }),
  },
  {
    label: 'a connector message window of zero',
    values: { set: ['dfsps[0].connector.messageWindow=0s'] },
    message: 'dfsps[0].connector.messageWindow: must be longer than zero',
    serviceKey: 'messageWindow',
    service: (connector) => parseConnectorConfig({ ...connector, messageWindow: '0s' }),
  },
  {
    label: 'a connector maximum hold time above 1h',
    values: { set: ['dfsps[0].connector.maxHoldTime=2h'] },
    message: 'dfsps[0].connector.maxHoldTime: must be at most 1h, got "2h"',
    serviceKey: 'maxHoldTime',
    service: (connector) => parseConnectorConfig({ ...connector, maxHoldTime: '2h' }),
  },
  {
    label: 'a connector maximum hold time too long to count in milliseconds',
    values: { set: ['dfsps[0].connector.maxHoldTime=99999999999999999999h'] },
    message: 'dfsps[0].connector.maxHoldTime: must be at most 1h',
    serviceKey: 'maxHoldTime',
    service: (connector) => parseConnectorConfig({ ...connector, maxHoldTime: '99999999999999999999h' }),
  },
  {
    label: 'a connector maximum hold time of two message windows (the default window, 1s)',
    values: { set: ['dfsps[0].connector.maxHoldTime=2s'] },
    message: 'dfsps[0].connector.maxHoldTime: must be longer than two message windows (2000 ms), got "2s"',
    serviceKey: 'maxHoldTime',
    service: (connector) => parseConnectorConfig({ ...connector, maxHoldTime: '2s' }),
  },
  {
    label: 'a connector destination hold time above 1h',
    values: { set: ['dfsps[0].connector.destinationHoldTime=2h'] },
    message: 'dfsps[0].connector.destinationHoldTime: must be at most 1h',
    serviceKey: 'destinationHoldTime',
    service: (connector) => parseConnectorConfig({ ...connector, destinationHoldTime: '2h' }),
  },
  {
    label: 'a connector destination hold time above the maximum hold time minus the message window',
    values: { set: ['dfsps[0].connector.destinationHoldTime=9500ms'] },
    message:
      'dfsps[0].connector.destinationHoldTime: must be at least the message window (1000 ms) and at most maxHoldTime minus the message window (9000 ms), got "9500ms"',
    serviceKey: 'destinationHoldTime',
    service: (connector) => parseConnectorConfig({ ...connector, destinationHoldTime: '9500ms' }),
  },
  {
    label: 'a connector destination hold time below the message window',
    values: { set: ['dfsps[0].connector.destinationHoldTime=500ms'] },
    message: 'dfsps[0].connector.destinationHoldTime: must be at least the message window (1000 ms)',
    serviceKey: 'destinationHoldTime',
    service: (connector) => parseConnectorConfig({ ...connector, destinationHoldTime: '500ms' }),
  },
  {
    label: "a message window longer than the connector's default destination hold time (5s), which is unset",
    values: { set: ['dfsps[0].connector.messageWindow=10s', 'dfsps[0].connector.maxHoldTime=30s'] },
    message:
      "dfsps[0].connector.destinationHoldTime: must be at least the message window (10000 ms) and at most maxHoldTime minus the message window (20000 ms), got 5000ms (the connector's default)",
    serviceKey: 'destinationHoldTime',
    service: (connector) => parseConnectorConfig({ ...connector, messageWindow: '10s', maxHoldTime: '30s' }),
  },
  {
    label: 'an exchange rate of zero',
    values: {
      setString: [
        'dfsps[0].connector.rates[0].source=USD',
        'dfsps[0].connector.rates[0].destination=EUR',
        'dfsps[0].connector.rates[0].rate=0',
      ],
    },
    message: "at '/dfsps/0/connector/rates/0/rate'",
    serviceKey: 'rates[0].rate',
    service: (connector) =>
      parseConnectorConfig({ ...connector, rates: [{ source: 'USD', destination: 'EUR', rate: '0' }] }),
  },
  {
    label: 'an exchange rate of zero written with decimals',
    values: {
      setString: [
        'dfsps[0].connector.rates[0].source=USD',
        'dfsps[0].connector.rates[0].destination=EUR',
        'dfsps[0].connector.rates[0].rate=0.000',
      ],
    },
    message: "at '/dfsps/0/connector/rates/0/rate'",
    serviceKey: 'rates[0].rate',
    service: (connector) =>
      parseConnectorConfig({ ...connector, rates: [{ source: 'USD', destination: 'EUR', rate: '0.000' }] }),
  },
  {
    label: 'an exchange rate from a currency to itself',
    values: { set: ['dfsps[1].connector.rates[0].destination=USD'] },
    message: 'dfsps[1].connector.rates[0].destination: must differ from source (USD)',
    serviceKey: 'rates[0].destination',
    service: (connector) =>
      parseConnectorConfig({ ...connector, rates: [{ source: 'USD', destination: 'USD', rate: '1' }] }),
  },
  {
    label: 'no exchange rate between the central ledger and a DFSP ledger in another currency',
    values: { set: ['dfsps[0].ledger.currency=GBP'] },
    message: "dfsps[0].connector.rates: no rate between USD (the central ledger) and GBP (the DFSP's ledger)",
    serviceKey: 'rates',
    service: (connector) =>
      parseConnectorConfig({
        ...connector,
        ledgers: [(connector.ledgers as Json[])[0], { ...(connector.ledgers as Json[])[1], currency: 'GBP' }],
      }),
  },
  {
    label: 'an SPSP payment request expiry above 24h',
    values: { set: ['dfsps[0].spsp.paymentRequestExpiry=25h', 'dfsps[0].spsp.maxPaymentRequestExpiry=24h'] },
    message: 'dfsps[0].spsp.paymentRequestExpiry: must be at most 24h, got "25h"',
    serviceKey: 'paymentRequestExpiry',
    service: (_connector, spsp) => parseSpsp({ ...spsp, paymentRequestExpiry: '25h', maxPaymentRequestExpiry: '24h' }),
  },
  {
    label: 'an SPSP payment request expiry below 1s',
    values: { set: ['dfsps[0].spsp.paymentRequestExpiry=500ms'] },
    message: 'dfsps[0].spsp.paymentRequestExpiry: must be at least 1s, got "500ms"',
    serviceKey: 'paymentRequestExpiry',
    service: (_connector, spsp) => parseSpsp({ ...spsp, paymentRequestExpiry: '500ms' }),
  },
  {
    label: "an SPSP payment request expiry above the service's default maximum (5m)",
    values: { set: ['dfsps[0].spsp.paymentRequestExpiry=10m'] },
    message: 'dfsps[0].spsp.maxPaymentRequestExpiry: must be at least paymentRequestExpiry ("10m"), got 5m',
    serviceKey: 'maxPaymentRequestExpiry',
    service: (_connector, spsp) => parseSpsp({ ...spsp, paymentRequestExpiry: '10m' }),
  },
  {
    label: 'an SPSP maximum payment request expiry above 24h',
    values: { set: ['dfsps[0].spsp.maxPaymentRequestExpiry=25h'] },
    message: 'dfsps[0].spsp.maxPaymentRequestExpiry: must be at most 24h, got "25h"',
    serviceKey: 'maxPaymentRequestExpiry',
    service: (_connector, spsp) => parseSpsp({ ...spsp, maxPaymentRequestExpiry: '25h' }),
  },
  {
    label: 'an SPSP maximum payment request expiry below the payment request expiry',
    values: { set: ['dfsps[0].spsp.paymentRequestExpiry=1m', 'dfsps[0].spsp.maxPaymentRequestExpiry=30s'] },
    message: 'dfsps[0].spsp.maxPaymentRequestExpiry: must be at least paymentRequestExpiry ("1m"), got "30s"',
    serviceKey: 'maxPaymentRequestExpiry',
    service: (_connector, spsp) => parseSpsp({ ...spsp, paymentRequestExpiry: '1m', maxPaymentRequestExpiry: '30s' }),
  },
  {
    label: 'an SPSP destination hold time below 100ms',
    values: { set: ['dfsps[0].spsp.destinationHoldTime=50ms'] },
    message: 'dfsps[0].spsp.destinationHoldTime: must be at least 100ms, got "50ms"',
    serviceKey: 'destinationHoldTime',
    service: (_connector, spsp) => parseSpsp({ ...spsp, destinationHoldTime: '50ms' }),
  },
  {
    label: 'an SPSP destination hold time above 1h',
    values: { set: ['dfsps[0].spsp.destinationHoldTime=61m'] },
    message: 'dfsps[0].spsp.destinationHoldTime: must be at most 1h, got "61m"',
    serviceKey: 'destinationHoldTime',
    service: (_connector, spsp) => parseSpsp({ ...spsp, destinationHoldTime: '61m' }),
  },
  {
    label: 'an SPSP payment abandonment time below 1s',
    values: { set: ['dfsps[0].spsp.paymentAbandonmentTime=999ms'] },
    message: 'dfsps[0].spsp.paymentAbandonmentTime: must be at least 1s, got "999ms"',
    serviceKey: 'paymentAbandonmentTime',
    service: (_connector, spsp) => parseSpsp({ ...spsp, paymentAbandonmentTime: '999ms' }),
  },
  {
    label: 'an SPSP payment abandonment time above 24h',
    values: { set: ['dfsps[0].spsp.paymentAbandonmentTime=25h'] },
    message: 'dfsps[0].spsp.paymentAbandonmentTime: must be at most 24h, got "25h"',
    serviceKey: 'paymentAbandonmentTime',
    service: (_connector, spsp) => parseSpsp({ ...spsp, paymentAbandonmentTime: '25h' }),
  },
  {
    label: 'a receiver named with "." and no account',
    values: { set: ['dfsps[1].spsp.receivers[0].name=bob.smith'] },
    message: 'dfsps[1].spsp.receivers[0].account: is required when the name ("bob.smith") is not an account name',
    serviceKey: 'receivers[0].account',
    service: (_connector, _spspA, spsp) => parseSpsp({ ...spsp, receivers: [{ name: 'bob.smith' }] }),
  },
  {
    label: 'a receiver minimum amount of 0',
    values: { setString: ['dfsps[1].spsp.receivers[0].minimumAmount=0'] },
    message: "at '/dfsps/1/spsp/receivers/0/minimumAmount'",
    serviceKey: 'receivers[0].minimumAmount',
    service: (_connector, _spspA, spsp) => parseSpsp({ ...spsp, receivers: [{ name: 'bob', minimumAmount: '0' }] }),
  },
  {
    label: 'a receiver maximum amount below its minimum amount',
    values: { setString: ['dfsps[1].spsp.receivers[0].minimumAmount=2000000'] },
    message: 'dfsps[1].spsp.receivers[0].maximumAmount: must be at least minimumAmount (2000000), got "1000000"',
    serviceKey: 'receivers[0].maximumAmount',
    service: (_connector, _spspA, spsp) =>
      parseSpsp({ ...spsp, receivers: [{ name: 'bob', minimumAmount: '2000000', maximumAmount: '1000000' }] }),
  },
  {
    label: "a receiver maximum amount above the ledger's largest amount",
    values: { setString: ['dfsps[1].spsp.receivers[0].maximumAmount=9223372036854775808'] },
    message: 'dfsps[1].spsp.receivers[0].maximumAmount: must be at most 9223372036854775807 minor units',
    serviceKey: 'receivers[0].maximumAmount',
    service: (_connector, _spspA, spsp) =>
      parseSpsp({ ...spsp, receivers: [{ name: 'bob', maximumAmount: '9223372036854775808' }] }),
  },
  {
    label: 'two receivers with the same account',
    values: { set: ['dfsps[0].spsp.receivers[1].name=alice-2', 'dfsps[0].spsp.receivers[1].account=alice'] },
    message: 'dfsps[0].spsp.receivers[1].account: "alice" is also another receiver\'s account',
    serviceKey: 'receivers[1].account',
    service: (_connector, spsp) =>
      parseSpsp({ ...spsp, receivers: [{ name: 'alice' }, { name: 'alice-2', account: 'alice' }] }),
  },
  {
    label: 'a ledger maximum hold time above 2147483647 ms',
    values: { set: ['ledger.maxHoldTime=600h'] },
    message: 'ledger.maxHoldTime: must be at most 2147483647ms',
    serviceKey: '--max-hold-time',
    service: () => parseDuration('--max-hold-time', '600h'),
  },
  {
    label: "the central ledger's own maximum hold time above 2147483647 ms",
    values: { set: ['centralLedger.maxHoldTime=597h'] },
    message: 'centralLedger.maxHoldTime: must be at most 2147483647ms',
    serviceKey: '--max-hold-time',
    service: () => parseDuration('--max-hold-time', '597h'),
  },
  {
    label: "a DFSP ledger's maximum hold time above 2147483647 ms",
    values: { set: ['dfsps[1].ledger.maxHoldTime=2147484s'] },
    message: 'dfsps[1].ledger.maxHoldTime: must be at most 2147483647ms',
    serviceKey: '--max-hold-time',
    service: () => parseDuration('--max-hold-time', '2147484s'),
  },
];

describe('values the services would refuse at start', () => {
  test.each(cases.map((refused) => [refused.label, refused] as [string, RefusedCase]))(
    '%s: helm template fails naming the value, and the service refuses it too',
    (_label, refused) => {
      const error = renderFailure({ valuesFiles: [hub], ...refused.values });
      expect(error).toContain(refused.message);
      expect(
        refusedKey(() =>
          refused.service(
            configOf(base, 'dfsp-a', 'connector'),
            configOf(base, 'dfsp-a', 'spsp'),
            configOf(base, 'dfsp-b', 'spsp'),
          ),
        ),
      ).toBe(refused.serviceKey);
    },
  );
});

describe('values at the limits render, and the services accept what the chart renders', () => {
  test('connector durations at their limits', () => {
    const manifests = render({
      valuesFiles: [hub],
      set: [
        'dfsps[0].connector.messageWindow=1m',
        'dfsps[0].connector.maxHoldTime=1h',
        'dfsps[0].connector.destinationHoldTime=59m',
        'dfsps[1].connector.messageWindow=1ms',
        'dfsps[1].connector.maxHoldTime=3ms',
        'dfsps[1].connector.destinationHoldTime=2ms',
      ],
    });
    expect(parseConnectorConfig(configOf(manifests, 'dfsp-a', 'connector'))).toEqual(
      expect.objectContaining({ messageWindowMs: 60_000, maxHoldMs: 3_600_000, destinationHoldMs: 3_540_000 }),
    );
    expect(parseConnectorConfig(configOf(manifests, 'dfsp-b', 'connector'))).toEqual(
      expect.objectContaining({ messageWindowMs: 1, maxHoldMs: 3, destinationHoldMs: 2 }),
    );
  });

  test('SPSP durations at their limits', () => {
    const manifests = render({
      valuesFiles: [hub],
      set: [
        'dfsps[0].spsp.paymentRequestExpiry=24h',
        'dfsps[0].spsp.maxPaymentRequestExpiry=24h',
        'dfsps[0].spsp.destinationHoldTime=1h',
        'dfsps[0].spsp.paymentAbandonmentTime=24h',
        'dfsps[1].spsp.paymentRequestExpiry=1s',
        'dfsps[1].spsp.maxPaymentRequestExpiry=1000ms',
        'dfsps[1].spsp.destinationHoldTime=100ms',
        'dfsps[1].spsp.paymentAbandonmentTime=1s',
      ],
    });
    expect(parseSpsp(configOf(manifests, 'dfsp-a', 'spsp'))).toEqual(
      expect.objectContaining({
        paymentRequestExpiryMs: 86_400_000,
        maxPaymentRequestExpiryMs: 86_400_000,
        destinationHoldMs: 3_600_000,
        paymentAbandonmentMs: 86_400_000,
      }),
    );
    expect(parseSpsp(configOf(manifests, 'dfsp-b', 'spsp'))).toEqual(
      expect.objectContaining({
        paymentRequestExpiryMs: 1000,
        maxPaymentRequestExpiryMs: 1000,
        destinationHoldMs: 100,
        paymentAbandonmentMs: 1000,
      }),
    );
  });

  test('receivers: a dotted name with an account, amounts at their limits, an empty account or display name left to the defaults', () => {
    const manifests = render({
      valuesFiles: [hub],
      setString: [
        'dfsps[0].spsp.receivers[0].name=alice.smith',
        'dfsps[1].spsp.receivers[0].minimumAmount=1',
        'dfsps[1].spsp.receivers[0].maximumAmount=9223372036854775807',
        'dfsps[1].spsp.receivers[1].name=carol',
        'dfsps[1].spsp.receivers[1].account=',
        'dfsps[1].spsp.receivers[1].displayName=',
      ],
    });
    expect(parseSpsp(configOf(manifests, 'dfsp-a', 'spsp')).receivers).toEqual([
      expect.objectContaining({ name: 'alice.smith', account: 'alice' }),
    ]);
    const spspB = configOf(manifests, 'dfsp-b', 'spsp');
    expect(spspB.receivers).toEqual([
      { name: 'bob', minimumAmount: '1', maximumAmount: '9223372036854775807' },
      { name: 'carol' },
    ]);
    expect(parseSpsp(spspB).receivers).toEqual([
      expect.objectContaining({ name: 'bob', minimumAmount: 1n, maximumAmount: 2n ** 63n - 1n }),
      expect.objectContaining({ name: 'carol', account: 'carol', displayName: 'carol' }),
    ]);
  });

  test('ledger maximum hold time at 2147483647 ms', () => {
    const manifests = render({ valuesFiles: [hub], set: ['ledger.maxHoldTime=2147483647ms'] });
    const ledger = named<Manifest & { spec: { template: { spec: { containers: { args: string[] }[] } } } }>(
      manifests,
      'Deployment',
      instanceName('dfsp-a', 'ledger'),
    );
    expect(ledger.spec.template.spec.containers[0].args).toContain('--max-hold-time=2147483647ms');
    expect(parseDuration('--max-hold-time', '2147483647ms')).toBe(2147483647);
  });
});
