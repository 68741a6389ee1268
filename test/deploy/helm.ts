/**
 * Runs the Helm chart through scripts/helm.sh (helm from an npm package, offline) and parses what
 * it renders, for the chart tests.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export const repositoryRoot = path.join(__dirname, '..', '..');
export const chartDirectory = path.join(repositoryRoot, 'deploy', 'helm', 'interclear');
/** Values files helm's own conventions (and chart-testing) run: minimal, hub, HA. */
export const ciValuesDirectory = path.join(chartDirectory, 'ci');
/** Values files only the tests use: edge cases and values that must be rejected. */
export const testValuesDirectory = path.join(__dirname, 'values');

export const releaseName = 'clearing';
export const namespace = 'payments';

/** What a helm command printed and how it exited. */
export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs helm with `args`; the first run may fetch the binary (see scripts/helm.sh). */
export function helm(args: string[]): HelmResult {
  const result = spawnSync('bash', [path.join(repositoryRoot, 'scripts', 'helm.sh'), ...args], {
    cwd: repositoryRoot,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 240_000,
  });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** The fields every rendered Kubernetes object has; the rest is read through typed views. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** Values given to one render: files, `--set` pairs and `--set-string` pairs (values kept as strings). */
export interface RenderOptions {
  valuesFiles?: string[];
  set?: string[];
  setString?: string[];
}

/** The arguments of `helm template` for `options`. */
export function templateArguments(options: RenderOptions = {}): string[] {
  const args = ['template', releaseName, chartDirectory, '--namespace', namespace];
  for (const file of options.valuesFiles ?? []) args.push('--values', file);
  for (const pair of options.set ?? []) args.push('--set', pair);
  for (const pair of options.setString ?? []) args.push('--set-string', pair);
  return args;
}

/** Renders the chart and returns its objects; fails with helm's message when helm fails. */
export function render(options: RenderOptions = {}): Manifest[] {
  const result = helm(templateArguments(options));
  if (result.status !== 0) throw new Error(`helm template failed:\n${result.stderr}`);
  return parseManifests(result.stdout);
}

/** Renders the chart expecting helm to refuse; returns helm's error output. */
export function renderFailure(options: RenderOptions): string {
  const result = helm(templateArguments(options));
  if (result.status === 0) throw new Error('helm template succeeded, but it was expected to fail');
  return result.stderr;
}

/**
 * Parses a multi-document YAML stream. YAML 1.1 is how Kubernetes reads manifests (its parser is
 * go-yaml v2), so values are read as the API server would read them.
 */
export function parseManifests(text: string): Manifest[] {
  const manifests: Manifest[] = [];
  for (const document of parseAllDocuments(text, { version: '1.1' })) {
    if (document.errors.length > 0) throw new Error(`invalid YAML rendered: ${document.errors[0].message}`);
    const value = document.toJS() as Manifest | null;
    if (value !== null) manifests.push(value);
  }
  return manifests;
}

/** The objects of `kind`. */
export function ofKind<T = Manifest>(manifests: Manifest[], kind: string): T[] {
  return manifests.filter((manifest) => manifest.kind === kind) as T[];
}

/** The object of `kind` named `name`; fails when there is none. */
export function named<T = Manifest>(manifests: Manifest[], kind: string, name: string): T {
  const found = manifests.find((manifest) => manifest.kind === kind && manifest.metadata.name === name);
  if (!found) {
    const names = ofKind(manifests, kind).map((manifest) => manifest.metadata.name);
    throw new Error(`no ${kind} named ${name}; rendered: ${names.join(', ')}`);
  }
  return found as T;
}

/** Name of an instance's resources in the tests' release. */
export function instanceName(participant: string, component: 'ledger' | 'connector' | 'spsp'): string {
  return `${releaseName}-interclear-${participant}-${component}`;
}

export const ciValues = (name: string) => path.join(ciValuesDirectory, name);
export const testValues = (name: string) => path.join(testValuesDirectory, name);
