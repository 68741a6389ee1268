/**
 * Every command and flag the chart passes to `interclear` exists in the CLI, so a rendered pod or
 * migration Job never dies on "unknown option": those of the containers, and those of the
 * services a per-dfsp pod's host.json gives `interclear host`. The chart's side of the contract
 * is asserted in chart.test.ts and per-dfsp.test.ts; this is the code's side.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { ciValues, ofKind, render, repositoryRoot, testValues } from './helm';

/** Flags (without values) of every container the chart renders, by command. */
function flagsByCommand(): Map<string, Set<string>> {
  const commands = new Map<string, Set<string>>();
  const add = ([command, ...args]: string[]) => {
    const flags = commands.get(command) ?? new Set<string>();
    for (const arg of args) if (arg.startsWith('--')) flags.add(arg.split('=')[0]);
    commands.set(command, flags);
  };
  for (const [file, set] of [
    [ciValues('hub-two-dfsps-values.yaml'), []],
    [testValues('development.yaml'), []],
    [ciValues('per-dfsp-values.yaml'), []],
    [testValues('development.yaml'), ['dfsps[0].layout=per-dfsp']],
  ] as [string, string[]][]) {
    const manifests = render({ valuesFiles: [file], set });
    const workloads = [...ofKind<IDeployment>(manifests, 'Deployment'), ...ofKind<IJob>(manifests, 'Job')];
    for (const workload of workloads) {
      for (const container of workload.spec?.template.spec?.containers ?? []) add(container.args ?? []);
    }
    for (const configMap of ofKind<IConfigMap>(manifests, 'ConfigMap')) {
      const host = configMap.data?.['host.json'];
      if (host)
        for (const service of (JSON.parse(host) as { services: { args: string[] }[] }).services) add(service.args);
    }
  }
  return commands;
}

function help(command: string): string {
  const result = spawnSync(process.execPath, [path.join(repositoryRoot, 'bin', 'interclear.js'), command, '--help'], {
    cwd: repositoryRoot,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  return result.stdout;
}

test('the chart runs the commands ledger, connector, spsp, migrate and host', () => {
  expect([...flagsByCommand().keys()].sort()).toEqual(['connector', 'host', 'ledger', 'migrate', 'spsp']);
});

test.each([...flagsByCommand()].map(([command, flags]) => [command, [...flags].sort()] as [string, string[]]))(
  '`interclear %s` accepts every flag the chart passes',
  (command, flags) => {
    const text = help(command);
    const missing = flags.filter((flag) => !new RegExp(`(^|[\\s,])${flag}(?=[\\s,<=]|$)`, 'm').test(text));
    expect(missing).toEqual([]);
  },
  60_000,
);
