/**
 * A DFSP's three services in one pod (`dfsps[].layout: per-dfsp`): one Deployment whose container
 * runs `interclear host --config`, its host.json giving each service exactly the command line the
 * same values give that service's own pod in the per-service layout, but for its ports and the
 * directory of its TLS Secret. Checked against the per-service render of the same values: the
 * Secrets, files and Services each service had are still its own, the NetworkPolicies admit what
 * they did, the rest of the release does not change, and what one pod cannot run is refused at
 * render time. (helm lint --strict and the Kubernetes schemas check ci/per-dfsp-values.yaml in
 * chart.test.ts, with every ci/ file; the services' parsers check host.json in rendered-config.test.ts.)
 */
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { LIVENESS_HEALTH_SERVICE_NAME } from '../../src/platform/health';
import {
  ciValues,
  instanceName,
  type Manifest,
  named,
  ofKind,
  releaseName,
  render,
  renderFailure,
  type RenderOptions,
  testValues,
} from './helm';
import { validateManifest } from './kubernetes-schemas';

const values = ciValues('per-dfsp-values.yaml');
const components = ['ledger', 'connector', 'spsp'] as const;
type Component = (typeof components)[number];

/** DFSP A's one pod, and its host.json's ConfigMap. */
const hostName = `${releaseName}-interclear-dfsp-a-host`;
/** The Deployments, Services, NetworkPolicies and budgets DFSP A has in the per-service layout. */
const dfspA = components.map((component) => instanceName('dfsp-a', component));

/** Where each service listens inside the one pod (the chart's defaults: ports and host.ports). */
const podPorts: Record<Component, { grpc: number; health: number; metrics: number }> = {
  ledger: { grpc: 7000, health: 7001, metrics: 9464 },
  connector: { grpc: 7010, health: 7011, metrics: 9465 },
  spsp: { grpc: 7020, health: 7021, metrics: 9466 },
};

interface HostJson {
  name: string;
  services: { args: string[]; databaseUrlEnv?: string }[];
}

/** The same values in both layouts: `options` with DFSP A per-dfsp, and with it per-service. */
function renderBoth(options: RenderOptions = {}): { onePod: Manifest[]; perService: Manifest[] } {
  const valuesFiles = options.valuesFiles ?? [values];
  return {
    onePod: render({ ...options, valuesFiles, set: [...(options.set ?? []), 'dfsps[0].layout=per-dfsp'] }),
    perService: render({ ...options, valuesFiles, set: [...(options.set ?? []), 'dfsps[0].layout=per-service'] }),
  };
}

function container(manifests: Manifest[], deployment: string): IContainer {
  const spec = named<IDeployment>(manifests, 'Deployment', deployment).spec?.template.spec;
  if (!spec) throw new Error(`Deployment ${deployment} has no pod spec`);
  return spec.containers[0];
}

function volumes(manifests: Manifest[], deployment: string): IVolume[] {
  return named<IDeployment>(manifests, 'Deployment', deployment).spec?.template.spec?.volumes ?? [];
}

function hostJson(manifests: Manifest[]): HostJson {
  return JSON.parse(named<IConfigMap>(manifests, 'ConfigMap', hostName).data?.['host.json'] ?? 'null') as HostJson;
}

function hostedArgs(manifests: Manifest[], component: Component): string[] {
  const service = hostJson(manifests).services.find((entry) => entry.args[0] === component);
  if (!service) throw new Error(`host.json runs no ${component}`);
  return service.args;
}

/** A service's per-service command line as the one pod gives it: its ports, its TLS directory. */
function inOnePod(args: string[], component: Component): string[] {
  const ports = podPorts[component];
  return args.map((arg) =>
    arg
      .replace(/^--listen=0\.0\.0\.0:7000$/, `--listen=0.0.0.0:${ports.grpc}`)
      .replace(/^--health-listen=0\.0\.0\.0:7001$/, `--health-listen=0.0.0.0:${ports.health}`)
      .replace(/^--metrics-listen=0\.0\.0\.0:9464$/, `--metrics-listen=0.0.0.0:${ports.metrics}`)
      .replace(/^(--tls-(cert|key|ca))=\/etc\/interclear\/tls\//, `$1=/etc/interclear/tls/${component}/`),
  );
}

/** The port a flag such as --listen=0.0.0.0:7010 names. */
function portOf(args: string[], flag: string): number {
  const arg = args.find((candidate) => candidate.startsWith(`${flag}=`));
  if (!arg) throw new Error(`no ${flag} in ${args.join(' ')}`);
  return Number(arg.split(':').pop());
}

/** The container port a Service's targetPort or a NetworkPolicy's port names on a pod (a name or a number). */
function resolvePort(pod: IContainer, port: string | number | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return pod.ports?.find((candidate) => candidate.name === port)?.containerPort;
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector ?? {}).every(([key, value]) => labels?.[key] === value);
}

/** Every object, by "Kind/name". */
function byKey(manifests: Manifest[]): Map<string, Manifest> {
  return new Map(manifests.map((manifest) => [`${manifest.kind}/${manifest.metadata.name}`, manifest]));
}

let onePod: Manifest[];
let perService: Manifest[];
beforeAll(() => {
  ({ onePod, perService } = renderBoth());
}, 240_000);

describe('layout per-dfsp: one pod for DFSP A', () => {
  test('one Deployment runs `interclear host --config` from its ConfigMap, instead of three', () => {
    const deployments = (manifests: Manifest[]) =>
      ofKind(manifests, 'Deployment')
        .map((manifest) => manifest.metadata.name)
        .sort();
    expect(deployments(onePod)).toEqual(
      [...deployments(perService).filter((name) => !dfspA.includes(name)), hostName].sort(),
    );
    const deployment = named<IDeployment>(onePod, 'Deployment', hostName);
    // The connector and the SPSP service are single writers: one replica, never two pods at once.
    expect(deployment.spec?.replicas).toBe(1);
    expect(deployment.spec?.strategy).toEqual({ type: 'Recreate' });
    const host = container(onePod, hostName);
    expect(host.args).toEqual(['host', '--config=/etc/interclear/host/host.json']);
    expect(host.volumeMounts).toContainEqual({
      name: 'host-config',
      mountPath: '/etc/interclear/host',
      readOnly: true,
    });
    expect(volumes(onePod, hostName)).toContainEqual({ name: 'host-config', configMap: { name: hostName } });
  });

  test("host.json runs the ledger, the connector and the SPSP service, in that order, each with its own pod's command line but for its ports and TLS directory", () => {
    const config = hostJson(onePod);
    expect(config.name).toBe('dfsp-a');
    expect(config.services.map((service) => service.args[0])).toEqual(['ledger', 'connector', 'spsp']);
    for (const component of components) {
      const own = container(perService, instanceName('dfsp-a', component)).args ?? [];
      expect(hostedArgs(onePod, component)).toEqual(inOnePod(own, component));
      // Not vacuous: the command line is the full one (its flags, its configuration file, its admins).
      expect(own.length).toBeGreaterThan(8);
    }
    expect(hostedArgs(onePod, 'connector')).toContain('--listen=0.0.0.0:7010');
    expect(hostedArgs(onePod, 'spsp')).toContain('--tls-cert=/etc/interclear/tls/spsp/tls.crt');
  });

  test("each component's extraArgs reach its service's command line in host.json", () => {
    const both = renderBoth({ set: ['spsp.extraArgs={--admin=treasury}', 'ledger.extraArgs={--precision=12}'] });
    for (const component of components) {
      const own = container(both.perService, instanceName('dfsp-a', component)).args ?? [];
      expect(hostedArgs(both.onePod, component)).toEqual(inOnePod(own, component));
    }
    expect(hostedArgs(both.onePod, 'spsp').slice(-1)).toEqual(['--admin=treasury']);
    expect(hostedArgs(both.onePod, 'connector')).not.toContain('--admin=treasury');
  });

  test('each service reads its own database Secret, through the variable host.json names; no DATABASE_URL', () => {
    const host = container(onePod, hostName);
    const config = hostJson(onePod);
    for (const [index, component] of components.entries()) {
      const variable = `${component.toUpperCase()}_DATABASE_URL`;
      expect(config.services[index].databaseUrlEnv).toBe(variable);
      const own = container(perService, instanceName('dfsp-a', component)).env?.find(
        (entry) => entry.name === 'DATABASE_URL',
      );
      expect(own?.valueFrom?.secretKeyRef?.name).toBe(`dfsp-a-${component}-database`);
      expect(host.env?.find((entry) => entry.name === variable)?.valueFrom).toEqual(own?.valueFrom);
    }
    expect(host.env?.map((entry) => entry.name)).not.toContain('DATABASE_URL');
  });

  test('each service finds the same Secrets and configuration files, its TLS Secret in a directory of its own', () => {
    const host = container(onePod, hostName);
    const hostVolumes = volumes(onePod, hostName);
    for (const component of components) {
      const name = instanceName('dfsp-a', component);
      const ownVolumes = volumes(perService, name);
      for (const mount of container(perService, name).volumeMounts ?? []) {
        if (mount.name === 'tmp') continue;
        const path = mount.name === 'tls' ? `/etc/interclear/tls/${component}` : mount.mountPath;
        const there = host.volumeMounts?.find((candidate) => candidate.mountPath === path);
        expect(there && { ...there, name: mount.name }).toEqual({ ...mount, mountPath: path });
        const { name: _own, ...source } = ownVolumes.find((volume) => volume.name === mount.name) ?? {};
        const { name: _there, ...hostSource } = hostVolumes.find((volume) => volume.name === there?.name) ?? {};
        expect(hostSource).toEqual(source);
      }
      // Every file a command line names is in a mounted directory or is a mounted file.
      for (const file of hostedArgs(onePod, component).flatMap(
        (arg) => arg.match(/=(\/etc\/interclear\/.*)$/)?.[1] ?? [],
      )) {
        const mounted = (host.volumeMounts ?? []).some((mount) =>
          mount.subPath ? file === mount.mountPath : file.startsWith(`${mount.mountPath}/`),
        );
        expect([file, mounted]).toEqual([file, true]);
      }
    }
    // The SPSP service's configuration names its receiver secret file, mounted as before.
    const spsp = JSON.parse(
      named<IConfigMap>(onePod, 'ConfigMap', instanceName('dfsp-a', 'spsp')).data?.['spsp.json'] ?? '{}',
    );
    expect(spsp.secretFile).toBe('/etc/interclear/receiver/secret');
    expect(host.volumeMounts).toContainEqual({
      name: 'receiver',
      mountPath: '/etc/interclear/receiver',
      readOnly: true,
    });
  });

  test('the Services keep their names, types and ports, select the one pod and forward to each service’s own ports', () => {
    const deployments = ofKind<IDeployment>(onePod, 'Deployment');
    const host = container(onePod, hostName);
    for (const component of components) {
      const name = instanceName('dfsp-a', component);
      const service = named<IService>(onePod, 'Service', name);
      const before = named<IService>(perService, 'Service', name);
      expect(service.spec?.type).toBe(before.spec?.type);
      const ports = (candidate: IService) =>
        candidate.spec?.ports?.map((port) => [port.name, port.port, port.protocol]);
      expect(ports(service)).toEqual(ports(before));
      const selected = deployments.filter((deployment) =>
        selects(service.spec?.selector, deployment.spec?.template.metadata?.labels),
      );
      expect(selected.map((deployment) => deployment.metadata?.name)).toEqual([hostName]);
      const target = (portName: string) =>
        resolvePort(host, service.spec?.ports?.find((port) => port.name === portName)?.targetPort);
      const args = hostedArgs(onePod, component);
      expect(target('grpc')).toBe(portOf(args, '--listen'));
      expect(target('metrics')).toBe(portOf(args, '--metrics-listen'));
    }
  });

  test('the rest of the release does not change: the hub, DFSP B, the migration Jobs, the Certificates', () => {
    const after = byKey(onePod);
    const changed = new Set([
      ...dfspA.flatMap((name) =>
        ['Deployment', 'Service', 'NetworkPolicy', 'PodDisruptionBudget'].map((kind) => `${kind}/${name}`),
      ),
      ...['connector', 'spsp'].map((component) => `ConfigMap/${instanceName('dfsp-a', component as Component)}`),
    ]);
    const compared: string[] = [];
    for (const [key, manifest] of byKey(perService)) {
      // Every NetworkPolicy's egress now also admits the one pod's connector and SPSP ports (below).
      if (changed.has(key) || manifest.kind === 'NetworkPolicy') continue;
      expect([key, after.get(key)]).toEqual([key, manifest]);
      compared.push(key);
    }
    expect(compared).toEqual(
      expect.arrayContaining([
        ...dfspA.map((name) => `Job/${name}-migrate`),
        ...dfspA.map((name) => `Certificate/${name}`),
        `Deployment/${instanceName('dfsp-b', 'connector')}`,
        `Deployment/${instanceName('hub', 'ledger')}`,
      ]),
    );
    // The connector's and SPSP service's configuration files differ only in where they listen.
    for (const component of ['connector', 'spsp'] as const) {
      const read = (manifests: Manifest[]) =>
        JSON.parse(
          named<IConfigMap>(manifests, 'ConfigMap', instanceName('dfsp-a', component)).data?.[`${component}.json`] ??
            '{}',
        );
      expect(read(onePod)).toEqual({ ...read(perService), listen: `0.0.0.0:${podPorts[component].grpc}` });
    }
  });

  test('one NetworkPolicy admits to each service what its own admitted, on its own ports', () => {
    const policies = ofKind<INetworkPolicy>(onePod, 'NetworkPolicy');
    const host = container(onePod, hostName);
    const policy = named<INetworkPolicy>(onePod, 'NetworkPolicy', hostName);
    for (const name of dfspA) expect(policies.map((candidate) => candidate.metadata?.name)).not.toContain(name);
    expect(policy.spec?.podSelector.matchLabels).toEqual(
      named<IDeployment>(onePod, 'Deployment', hostName).spec?.selector.matchLabels,
    );
    const [grpc, metrics] = policy.spec?.ingress ?? [];
    for (const component of components) {
      const own = named<INetworkPolicy>(perService, 'NetworkPolicy', instanceName('dfsp-a', component));
      const [ownGrpc, ownMetrics] = own.spec?.ingress ?? [];
      // The same peers, on this service's ports of the one pod.
      expect(grpc.from).toEqual(ownGrpc.from);
      expect(metrics.from).toEqual(ownMetrics.from);
      const args = hostedArgs(onePod, component);
      expect(grpc.ports?.map((port) => resolvePort(host, port.port))).toContain(portOf(args, '--listen'));
      expect(metrics.ports?.map((port) => resolvePort(host, port.port))).toContain(portOf(args, '--metrics-listen'));
      expect(policy.spec?.policyTypes).toEqual(own.spec?.policyTypes);
    }
    // Nothing else is admitted: the health ports are for the kubelet, which policies do not govern.
    expect(grpc.ports?.map((port) => resolvePort(host, port.port))).toEqual([7000, 7010, 7020]);
    expect(metrics.ports?.map((port) => resolvePort(host, port.port))).toEqual([9464, 9465, 9466]);
  });

  test("every pod's egress reaches every Service's gRPC port, the one pod's connector and SPSP ports included", () => {
    const deployments = ofKind<IDeployment>(onePod, 'Deployment');
    const targets = ofKind<IService>(onePod, 'Service').map((service) => {
      const [deployment] = deployments.filter((candidate) =>
        selects(service.spec?.selector, candidate.spec?.template.metadata?.labels),
      );
      const pod = deployment.spec?.template.spec?.containers[0] as IContainer;
      return resolvePort(pod, service.spec?.ports?.find((port) => port.name === 'grpc')?.targetPort);
    });
    expect(new Set(targets)).toEqual(new Set([7000, 7010, 7020]));
    const policies = ofKind<INetworkPolicy>(onePod, 'NetworkPolicy');
    expect(policies.length).toBe(ofKind(onePod, 'Deployment').length);
    for (const policy of policies) {
      const toRelease = policy.spec?.egress?.find((rule) =>
        rule.to?.some((peer) => peer.podSelector?.matchLabels?.['app.kubernetes.io/instance'] === releaseName),
      );
      expect([policy.metadata?.name, toRelease?.ports?.map((port) => port.port)]).toEqual([
        policy.metadata?.name,
        [7000, 7010, 7020],
      ]);
    }
    // And the one pod's egress is what its three services' was, with those ports.
    const own = named<INetworkPolicy>(perService, 'NetworkPolicy', instanceName('dfsp-a', 'connector')).spec?.egress;
    const withPorts = own?.map((rule) =>
      rule.to?.some((peer) => peer.podSelector)
        ? { ...rule, ports: [7000, 7010, 7020].map((port) => ({ port, protocol: 'TCP' })) }
        : rule,
    );
    expect(named<INetworkPolicy>(onePod, 'NetworkPolicy', hostName).spec?.egress).toEqual(withPorts);
  });

  test('one PodDisruptionBudget for the one pod, none for its services', () => {
    const budgets = ofKind<IPodDisruptionBudget>(onePod, 'PodDisruptionBudget');
    const budgetNames = budgets.map((budget) => budget.metadata?.name);
    expect(budgetNames).toContain(hostName);
    for (const name of dfspA) expect(budgetNames).not.toContain(name);
    const budget = named<IPodDisruptionBudget>(onePod, 'PodDisruptionBudget', hostName);
    expect(budget.spec?.selector?.matchLabels).toEqual(
      named<IDeployment>(onePod, 'Deployment', hostName).spec?.selector.matchLabels,
    );
    // One replica: maxUnavailable 1 lets its node drain.
    expect(budget.spec?.maxUnavailable).toBe(1);
    expect(budget.spec?.minAvailable).toBeUndefined();
    expect(
      ofKind(render({ valuesFiles: [values], set: ['host.podDisruptionBudget.enabled=false'] }), 'PodDisruptionBudget')
        .map((manifest) => manifest.metadata.name)
        .sort(),
    ).toEqual(budgetNames.filter((name) => name !== hostName).sort());
  });

  test("probes: the ledger's health port, liveness for startup and liveness, the ledger's overall status for readiness", () => {
    const host = container(onePod, hostName);
    const ledgerHealth = portOf(hostedArgs(onePod, 'ledger'), '--health-listen');
    expect(ledgerHealth).toBe(7001);
    expect(host.ports?.find((port) => port.name === 'ledger-health')?.containerPort).toBe(ledgerHealth);
    expect(host.startupProbe?.grpc).toEqual({ port: ledgerHealth, service: LIVENESS_HEALTH_SERVICE_NAME });
    expect(host.livenessProbe?.grpc).toEqual({ port: ledgerHealth, service: LIVENESS_HEALTH_SERVICE_NAME });
    // Not the connector's or the SPSP service's: they reach their ledger through its Service, that
    // is through this pod once it is ready.
    expect(host.readinessProbe?.grpc).toEqual({ port: ledgerHealth });
    const own = container(perService, instanceName('dfsp-a', 'ledger'));
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
      expect(host[probe]).toEqual(own[probe]);
    }
    // The connector and the SPSP service serve health on ports of their own, for operators.
    expect(portOf(hostedArgs(onePod, 'connector'), '--health-listen')).toBe(7011);
    expect(portOf(hostedArgs(onePod, 'spsp'), '--health-listen')).toBe(7021);
  });

  test('resources: the sum of the three by default, else host.resources, else the DFSP’s own', () => {
    // values.yaml: ledger 250m/256Mi (limit 512Mi), connector 250m/256Mi (512Mi), spsp 100m/192Mi (384Mi).
    expect(container(onePod, hostName).resources).toEqual({
      requests: { cpu: '600m', memory: '704Mi' },
      limits: { memory: '1408Mi' },
    });
    const shared = render({
      valuesFiles: [values],
      set: ['host.resources.requests.cpu=1', 'host.resources.requests.memory=1Gi', 'host.resources.limits.memory=2Gi'],
    });
    expect(container(shared, hostName).resources).toEqual({
      requests: { cpu: 1, memory: '1Gi' },
      limits: { memory: '2Gi' },
    });
    const own = render({
      valuesFiles: [values],
      set: ['host.resources.requests.cpu=1', 'dfsps[0].host.resources.requests.cpu=450m'],
    });
    expect(container(own, hostName).resources).toEqual({ requests: { cpu: '450m' } });
    // A service with only a limit counts it as its request; a limit only when all three have one.
    const limits = render({
      valuesFiles: [values],
      set: [
        'dfsps[0].ledger.resources.limits.cpu=2',
        'dfsps[0].connector.resources.limits.cpu=500m',
        'dfsps[0].spsp.resources.limits.cpu=1.5',
        'dfsps[0].spsp.resources.limits.memory=1Gi',
      ],
    });
    expect(container(limits, hostName).resources).toEqual({
      requests: { cpu: '4', memory: '1Gi' },
      limits: { cpu: '4' },
    });
  });

  test('metrics: three ports, each announced on its Service, none on the pod', () => {
    const deployment = named<IDeployment>(onePod, 'Deployment', hostName);
    const annotations = deployment.spec?.template.metadata?.annotations ?? {};
    expect(Object.keys(annotations).filter((key) => key.startsWith('prometheus.io/'))).toEqual([]);
    for (const component of components) {
      const service = named<IService>(onePod, 'Service', instanceName('dfsp-a', component));
      expect(service.metadata?.annotations).toEqual({
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': String(portOf(hostedArgs(onePod, component), '--metrics-listen')),
        'prometheus.io/path': '/metrics',
      });
    }
    // Pods of their own keep their annotations, their Services none.
    const dfspB = instanceName('dfsp-b', 'connector');
    expect(named<IDeployment>(onePod, 'Deployment', dfspB).spec?.template.metadata?.annotations).toEqual(
      expect.objectContaining({ 'prometheus.io/port': '9464' }),
    );
    expect(named<IService>(onePod, 'Service', dfspB).metadata?.annotations).toBeUndefined();
  });

  test('a change of host.json or of a service’s configuration file rolls the pod', () => {
    const checksum = (manifests: Manifest[]) =>
      named<IDeployment>(manifests, 'Deployment', hostName).spec?.template.metadata?.annotations?.['checksum/config'];
    expect(checksum(onePod)).toMatch(/^[0-9a-f]{64}$/);
    for (const change of ['dfsps[0].connector.spread=0.003', 'dfsps[0].ledger.admins={treasury}']) {
      expect(checksum(render({ valuesFiles: [values], set: [change] }))).not.toBe(checksum(onePod));
    }
  });

  test('one process, one environment: extraEnv of the three, host.extraEnv deciding a variable they disagree on', () => {
    const manifests = render({
      valuesFiles: [values],
      set: [
        'ledger.extraEnv[0].name=NODE_OPTIONS',
        'ledger.extraEnv[0].value=--max-old-space-size=512',
        'spsp.extraEnv[0].name=NODE_OPTIONS',
        'spsp.extraEnv[0].value=--max-old-space-size=256',
        'connector.extraEnv[0].name=TZ',
        'connector.extraEnv[0].value=UTC',
        'spsp.extraEnv[1].name=TZ',
        'spsp.extraEnv[1].value=UTC',
        'host.extraEnv[0].name=NODE_OPTIONS',
        'host.extraEnv[0].value=--max-old-space-size=1024',
      ],
    });
    const environment = container(manifests, hostName).env ?? [];
    expect(environment.filter((entry) => ['NODE_OPTIONS', 'TZ'].includes(entry.name))).toEqual([
      { name: 'TZ', value: 'UTC' },
      { name: 'NODE_OPTIONS', value: '--max-old-space-size=1024' },
    ]);
  });

  test('development: plaintext, no TLS volumes or metrics ports, and a DFSP without SPSP service runs two services', () => {
    const manifests = render({ valuesFiles: [testValues('development.yaml')], set: ['dfsps[0].layout=per-dfsp'] });
    expect(manifests.flatMap(validateManifest)).toEqual([]);
    const host = container(manifests, hostName);
    expect(hostJson(manifests).services.map((service) => service.args[0])).toEqual(['ledger', 'connector']);
    for (const component of ['ledger', 'connector'] as const) {
      expect(hostedArgs(manifests, component)).toContain('--insecure');
      expect(hostedArgs(manifests, component).filter((arg) => /^--(tls-|metrics-listen|no-migrate)/.test(arg))).toEqual(
        [],
      );
    }
    expect(host.ports?.map((port) => port.name)).toEqual(['ledger-grpc', 'ledger-health', 'conn-grpc', 'conn-health']);
    expect(volumes(manifests, hostName).map((volume) => volume.name)).toEqual([
      'tmp',
      'host-config',
      'connector-config',
    ]);
    expect(ofKind(manifests, 'Job')).toEqual([]);
  });

  test('with high availability values, once its ledger asks for one replica', () => {
    const manifests = render({
      valuesFiles: [ciValues('ha-values.yaml')],
      set: ['dfsps[0].layout=per-dfsp', 'dfsps[0].ledger.replicas=1'],
    });
    expect(manifests.flatMap(validateManifest)).toEqual([]);
    expect(named<IDeployment>(manifests, 'Deployment', hostName).spec?.replicas).toBe(1);
    // DFSP B's ledger keeps its three replicas.
    expect(named<IDeployment>(manifests, 'Deployment', instanceName('dfsp-b', 'ledger')).spec?.replicas).toBe(3);
    expect(container(manifests, hostName).resources?.requests).toEqual({ cpu: '1350m', memory: '960Mi' });
  });
});

describe('values one pod cannot run are refused at render time', () => {
  test.each([
    [
      'several ledger replicas (the shared ledger.replicas)',
      { valuesFiles: [ciValues('ha-values.yaml')], set: ['dfsps[0].layout=per-dfsp'] },
      "dfsps[0].layout: per-dfsp runs the DFSP's ledger, connector and SPSP service in one pod with one replica (the connector and the SPSP service are single writers), but its ledger has 3 replicas (ledger.replicas): set dfsps[0].ledger.replicas to 1, or keep layout per-service",
    ],
    [
      "several replicas of the DFSP's own connector",
      { valuesFiles: [values], set: ['dfsps[0].connector.replicas=2'] },
      'but its connector has 2 replicas (dfsps[0].connector.replicas): set dfsps[0].connector.replicas to 1',
    ],
    [
      'replicas that disagree',
      { valuesFiles: [values], set: ['spsp.replicas=0'] },
      "dfsps[0].layout: per-dfsp runs the DFSP's services in one pod, so their replicas must agree (1, or 0 for all three to stop the DFSP), got ledger 1, connector 1, spsp 0",
    ],
    [
      'a port two services would share',
      { valuesFiles: [values], set: ['host.ports.spsp.metrics=9465'] },
      "host.ports.spsp.metrics: 9465 is also host.ports.connector.metrics, but a per-dfsp pod's ledger, connector and SPSP service share its network: give each its own port",
    ],
    [
      "a connector port that is the ledger's health port",
      { valuesFiles: [values], set: ['host.ports.connector.grpc=7001'] },
      'host.ports.connector.grpc: 7001 is also ports.health',
    ],
    [
      'an environment variable two services set differently',
      {
        valuesFiles: [values],
        set: [
          'ledger.extraEnv[0].name=NODE_OPTIONS',
          'ledger.extraEnv[0].value=--max-old-space-size=512',
          'spsp.extraEnv[0].name=NODE_OPTIONS',
          'spsp.extraEnv[0].value=--max-old-space-size=256',
        ],
      },
      "dfsps[0].layout: per-dfsp runs the DFSP's services in one process, with one environment, but ledger.extraEnv and spsp.extraEnv set NODE_OPTIONS differently: set it in host.extraEnv",
    ],
    [
      'a quantity the chart cannot add up, without host.resources',
      { valuesFiles: [values], set: ['dfsps[0].spsp.resources.requests.cpu=1e3'] },
      'the cpu request of dfsps[0]\'s spsp: the chart cannot add up the quantity "1e3" for its per-dfsp pod: set dfsps[0].host.resources',
    ],
    [
      'an unknown layout (schema)',
      { valuesFiles: [values], set: ['dfsps[0].layout=per-pod'] },
      "at '/dfsps/0/layout': value must be one of 'per-service', 'per-dfsp'",
    ],
    [
      "an unknown key in a DFSP's host (schema)",
      { valuesFiles: [values], set: ['dfsps[0].host.replicas=2'] },
      "additional properties 'replicas' not allowed",
    ],
  ] as [string, RenderOptions, string][])('%s', (_label, options, message) => {
    expect(renderFailure(options)).toContain(message);
  });

  test('the same values render in the per-service layout', () => {
    expect(ofKind(render({ valuesFiles: [ciValues('ha-values.yaml')] }), 'Deployment').length).toBe(7);
    const rendered = render({
      valuesFiles: [values],
      set: ['dfsps[0].connector.replicas=2', 'dfsps[0].layout=per-service'],
    });
    expect(named<IDeployment>(rendered, 'Deployment', instanceName('dfsp-a', 'connector')).spec?.replicas).toBe(2);
  });
});
