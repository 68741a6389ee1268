/**
 * The chart's `gateway` values: the per-principal concurrency limit reaches every server
 * (ledger, connector, SPSP) as --max-calls-per-principal, and the schema refuses a limit that
 * is not a positive integer.
 */
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import { ciValues, ofKind, render, renderFailure } from './helm';

const hub = ciValues('hub-two-dfsps-values.yaml');

function argsOf(workload: IDeployment | IJob): string[] {
  return workload.spec?.template.spec?.containers[0].args ?? [];
}

test('every server gets the default limit of 1024, the migration Jobs none', () => {
  const manifests = render({ valuesFiles: [hub] });
  const deployments = ofKind<IDeployment>(manifests, 'Deployment');
  expect(deployments.map((deployment) => argsOf(deployment)[0]).sort()).toEqual([
    'connector',
    'connector',
    'ledger',
    'ledger',
    'ledger',
    'spsp',
    'spsp',
  ]);
  for (const deployment of deployments) {
    expect(argsOf(deployment).filter((arg) => arg.startsWith('--max-calls-per-principal'))).toEqual([
      '--max-calls-per-principal=1024',
    ]);
  }
  for (const job of ofKind<IJob>(manifests, 'Job')) {
    expect(argsOf(job).some((arg) => arg.startsWith('--max-calls-per-principal'))).toBe(false);
  }
});

test('gateway.maxCallsPerPrincipal sets the limit of every server', () => {
  const manifests = render({ valuesFiles: [hub], set: ['gateway.maxCallsPerPrincipal=4096'] });
  for (const deployment of ofKind<IDeployment>(manifests, 'Deployment')) {
    expect(argsOf(deployment)).toContain('--max-calls-per-principal=4096');
  }
});

test.each([['0'], ['-1'], ['many']])('the schema refuses gateway.maxCallsPerPrincipal=%s', (value) => {
  expect(renderFailure({ valuesFiles: [hub], set: [`gateway.maxCallsPerPrincipal=${value}`] })).toMatch(
    /maxCallsPerPrincipal/,
  );
});
