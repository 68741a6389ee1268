/**
 * The connector.json and spsp.json the chart renders are accepted by the services' own
 * configuration parsers, so the chart and the code cannot drift apart unnoticed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { parseConnectorConfig } from '../../src/connector/config';
import { parseSpspConfig } from '../../src/spsp/config';
import { ciValues, ofKind, render, testValues } from './helm';

const valuesFiles = [ciValues('hub-two-dfsps-values.yaml'), testValues('external-hub.yaml')];
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
