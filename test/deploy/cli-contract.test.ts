/**
 * Every command and flag the chart passes to `interclear` exists in the CLI, so a rendered pod or
 * migration Job never dies on "unknown option". The chart's side of the contract is asserted in
 * chart.test.ts; this is the code's side.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import { ciValues, ofKind, render, repositoryRoot, testValues } from './helm';

/** Flags (without values) of every container the chart renders, by command. */
function flagsByCommand(): Map<string, Set<string>> {
  const commands = new Map<string, Set<string>>();
  for (const file of [ciValues('hub-two-dfsps-values.yaml'), testValues('development.yaml')]) {
    const manifests = render({ valuesFiles: [file] });
    const workloads = [...ofKind<IDeployment>(manifests, 'Deployment'), ...ofKind<IJob>(manifests, 'Job')];
    for (const workload of workloads) {
      for (const container of workload.spec?.template.spec?.containers ?? []) {
        const [command, ...args] = container.args ?? [];
        const flags = commands.get(command) ?? new Set<string>();
        for (const arg of args) if (arg.startsWith('--')) flags.add(arg.split('=')[0]);
        commands.set(command, flags);
      }
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

test('the chart runs the commands ledger, connector, spsp and migrate', () => {
  expect([...flagsByCommand().keys()].sort()).toEqual(['connector', 'ledger', 'migrate', 'spsp']);
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
