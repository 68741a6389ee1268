/**
 * The connector.json, spsp.json and host.json the chart renders are accepted by the services' own
 * configuration parsers (host.json by the one `interclear host --config` uses), so the chart and
 * the code cannot drift apart unnoticed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { parseHostConfig } from '../../src/cli/host';
import { parseConnectorConfig } from '../../src/connector/config';
import { parseSpspConfig } from '../../src/spsp/config';
import { ciValues, ofKind, render, testValues } from './helm';

const valuesFiles = [
  ciValues('hub-two-dfsps-values.yaml'),
  testValues('external-hub.yaml'),
  ciValues('per-dfsp-values.yaml'),
];
let secretDirectory: string;
let secretFile: string;

beforeAll(() => {
  secretDirectory = mkdtempSync(path.join(tmpdir(), 'interclear-receiver-'));
  secretFile = path.join(secretDirectory, 'secret');
  writeFileSync(secretFile, 'ab'.repeat(32));
});

afterAll(() => rmSync(secretDirectory, { recursive: true, force: true }));

/** Every file of every ConfigMap the chart renders with `file`, by "ConfigMap/key". */
function renderedFiles(file: string): [string, string, unknown][] {
  return ofKind<IConfigMap>(render({ valuesFiles: [file] }), 'ConfigMap').flatMap((configMap) =>
    Object.entries(configMap.data ?? {}).map(
      ([key, text]) => [`${configMap.metadata?.name}/${key}`, key, JSON.parse(text)] as [string, string, unknown],
    ),
  );
}

describe.each(valuesFiles)('%s', (file) => {
  test('every connector.json parses as a connector configuration', () => {
    const configs = renderedFiles(file).filter(([, key]) => key === 'connector.json');
    expect(configs.length).toBeGreaterThan(0);
    for (const [, , config] of configs) {
      const settings = parseConnectorConfig(config);
      expect(settings.ledgers).toHaveLength(2);
    }
  });

  test('every spsp.json parses as an SPSP configuration', () => {
    const configs = renderedFiles(file).filter(([, key]) => key === 'spsp.json');
    expect(configs.length).toBeGreaterThan(0);
    for (const [, , config] of configs) {
      // The pod reads the secret from its mounted Secret; here from a file with a test secret.
      const settings = parseSpspConfig({ ...(config as object), secretFile });
      expect(settings.dfsp).toBeTruthy();
    }
  });
});

describe('host.json (layout per-dfsp)', () => {
  /** The database URLs the pod's Secrets would give, by the variables host.json names. */
  const environment = {
    LEDGER_DATABASE_URL: 'postgres://ledger@db/ledger',
    CONNECTOR_DATABASE_URL: 'postgres://connector@db/connector',
    SPSP_DATABASE_URL: 'postgres://spsp@db/spsp',
  };

  test.each([
    ['ci/per-dfsp-values.yaml', [ciValues('per-dfsp-values.yaml')], []],
    ['development.yaml, per-dfsp', [testValues('development.yaml')], ['dfsps[0].layout=per-dfsp']],
  ] as [string, string[], string[]][])(
    '%s: `interclear host` accepts it, each service with its database URL',
    (_label, files, set) => {
      const configs = ofKind<IConfigMap>(render({ valuesFiles: files, set }), 'ConfigMap').filter(
        (configMap) => configMap.data?.['host.json'],
      );
      expect(configs).toHaveLength(1);
      const text = configs[0].data?.['host.json'] ?? '';
      const config = parseHostConfig('/etc/interclear/host/host.json', JSON.parse(text), environment);
      expect(config.name).toBe('dfsp-a');
      const { services } = JSON.parse(text) as { services: { args: string[]; databaseUrlEnv: string }[] };
      expect(config.services).toEqual(
        services.map((service) => [
          ...service.args,
          '--database-url',
          environment[service.databaseUrlEnv as keyof typeof environment],
        ]),
      );
      // Without the variables the pod's Secrets set, it refuses to start.
      expect(() => parseHostConfig('host.json', JSON.parse(text), {})).toThrow(
        'names environment variable LEDGER_DATABASE_URL, which is not set',
      );
    },
  );
});
