/**
 * Starts the whole local network (SPEC.md §8) as child processes of one command, on one
 * PostgreSQL server (embedded in the data directory, or the server of a URL) with one database
 * per service: the three ledgers first, then the accounts and their funding, then the connectors
 * and SPSP services, and finally the manifest that describes it all. Used by `interclear network`
 * and by the end-to-end tests, so that both run exactly the same processes.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { ensureDatabase, startEmbeddedDatabase, withDatabase, type EmbeddedDatabase } from '../platform/database';
import { ensureCertificate, ensureCertificateAuthority } from '../platform/certificates';
import type { ClientIdentity } from '../platform/client';
import { channelCredentials, type TlsFiles } from '../platform/tls';
import { ServiceHost, ServiceProcess } from './launcher';
import { manifestPath, writeManifest, type NetworkManifest } from './manifest';
import { seedLedgers } from './seed';
import {
  defaultBasePort,
  planNetwork,
  portsFrom,
  type NetworkPlan,
  type NetworkPorts,
  type PlannedService,
  type NetworkTiming,
} from './topology';

/** How to start a network. */
export interface NetworkOptions {
  /** Where the configuration, secrets, logs, manifest and (embedded) database live. */
  dataDir: string;
  /** The first port (see portsFrom); 0: any free ports. Default 7100. */
  basePort?: number;
  /** A PostgreSQL server to use instead of the embedded one (any database; others are created). */
  databaseUrl?: string;
  /** Before every database name (default "interclear_"). */
  databasePrefix?: string;
  timing?: Partial<NetworkTiming>;
  /** Extra environment of every service process. */
  environment?: Record<string, string | undefined>;
  /** Write a V8 CPU profile of every service process here (`<service>.cpuprofile`, at exit). */
  profileDirectory?: string;
  /**
   * Plaintext with the x-principal header (development) instead of mTLS with certificates
   * issued by the network's own CA in `<dataDir>/certs`.
   */
  insecure?: boolean;
  /**
   * How the services map to processes: "per-service" (default) runs each in a process of its
   * own, as in a Kubernetes deployment; "per-dfsp" runs a DFSP's ledger, connector and SPSP
   * service in one process (`interclear host`; the central ledger keeps its own), fewer processes
   * for the same calls over the same sockets (docs/PERFORMANCE.md, "One process per DFSP").
   */
  processes?: ProcessLayout;
  /** Progress for people: called with "starting central ledger" and then "ok" or an error. */
  progress?: (step: string, done: Promise<unknown>) => Promise<void> | void;
}

/** How a network's services map to processes (see {@link NetworkOptions.processes}). */
export type ProcessLayout = 'per-service' | 'per-dfsp';
export const processLayouts: readonly ProcessLayout[] = ['per-service', 'per-dfsp'];

/** A running network. */
export interface RunningNetwork {
  plan: NetworkPlan;
  manifest: NetworkManifest;
  manifestFile: string;
  /** The URL of the database server the services use (without a database name). */
  databaseServerUrl: string;
  /** The URL of one service's database. */
  databaseUrl(serviceName: string): string;
  /**
   * How `principal` calls the network's services: a certificate issued by the network's CA
   * (created on first use), or the x-principal header in insecure mode.
   */
  identityFor(principal: string): Promise<ClientIdentity>;
  /** The process of a service, by name (e.g. "dfsp-b-connector"). */
  service(name: string): ServiceProcess;
  /** Restarts a stopped service and waits until it serves. */
  restartService(name: string): Promise<void>;
  /** Stops every service, then the embedded database. */
  stop(): Promise<void>;
}

async function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

async function choosePorts(basePort: number, host: string): Promise<NetworkPorts> {
  if (basePort === 0) {
    // Random ports below Linux's ephemeral range (32768 and up): a port the kernel hands to some
    // other process binding port 0 meanwhile can then never collide with the one chosen here.
    const free = new Set<number>();
    while (free.size < 7) {
      const port = 20_000 + Math.floor(Math.random() * 12_000);
      if (!free.has(port) && (await portIsFree(port, host))) free.add(port);
    }
    const [central, dfspALedger, dfspASpsp, dfspAConnector, dfspBLedger, dfspBSpsp, dfspBConnector] = [...free];
    return { central, dfspALedger, dfspASpsp, dfspAConnector, dfspBLedger, dfspBSpsp, dfspBConnector };
  }
  const ports = portsFrom(basePort);
  for (const port of Object.values(ports)) {
    if (!(await portIsFree(port, host))) {
      throw new Error(
        `port ${port} is in use: is a network already running? Stop it, or choose other ports with --base-port`,
      );
    }
  }
  return ports;
}

/** Creates the SPSP services' secrets once; later runs reuse them (payments set up stay payable). */
function ensureSecret(file: string): void {
  if (existsSync(file)) return;
  writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
}

const noProgress = async (_step: string, done: Promise<unknown>) => {
  await done;
};

/** Starts the network; on failure, stops whatever it had started. */
export async function startNetwork(options: NetworkOptions): Promise<RunningNetwork> {
  const host = '127.0.0.1';
  const dataDir = path.resolve(options.dataDir);
  const directories = {
    config: path.join(dataDir, 'config'),
    secrets: path.join(dataDir, 'secrets'),
    logs: path.join(dataDir, 'logs'),
    certificates: path.join(dataDir, 'certs'),
  };
  for (const directory of Object.values(directories)) mkdirSync(directory, { recursive: true });
  const progress = options.progress ?? noProgress;
  const step = async <T>(description: string, action: () => Promise<T>): Promise<T> => {
    const done = action();
    await progress(description, done);
    return done;
  };

  const processes = new Map<string, ServiceProcess>();
  let embedded: EmbeddedDatabase | undefined;
  // Should this process exit without stopping the network (a signal handler of the embedded
  // database exits it as soon as PostgreSQL is down), its children stop too rather than linger.
  const stopChildrenOnExit = () => {
    for (const child of processes.values()) child.signal('SIGTERM');
  };
  process.once('exit', stopChildrenOnExit);
  const stopAll = async () => {
    await Promise.all([...processes.values()].map((child) => child.stop()));
    process.off('exit', stopChildrenOnExit);
    await embedded?.stop().catch(() => undefined);
  };

  try {
    const ports = await choosePorts(options.basePort ?? defaultBasePort, host);
    let serverUrl: string;
    if (options.databaseUrl) {
      serverUrl = options.databaseUrl;
    } else {
      embedded = await step(`starting PostgreSQL (data in ${path.join(dataDir, 'postgres')})`, () =>
        startEmbeddedDatabase({ dataDir: path.join(dataDir, 'postgres') }),
      );
      serverUrl = embedded.url;
    }
    const plan = planNetwork({ host, ports, databasePrefix: options.databasePrefix, timing: options.timing });
    const insecure = options.insecure ?? false;
    // mTLS: one certificate per principal (each service, and the operator), from the network's CA.
    const certificates = insecure
      ? undefined
      : await step(`issuing certificates (in ${directories.certificates})`, () =>
          issueNetworkCertificates(directories.certificates, [...plan.services.map(principalOf), plan.adminPrincipal]),
        );
    const adminIdentity: ClientIdentity = certificates
      ? { credentials: channelCredentials(certificates.get(plan.adminPrincipal)!) }
      : { principal: plan.adminPrincipal };
    const argumentsOf = (service: PlannedService) => {
      if (!certificates) return service.args;
      const files = certificates.get(principalOf(service))!;
      return service.args.flatMap((argument) =>
        argument === '--insecure'
          ? ['--tls-cert', files.certificate, '--tls-key', files.privateKey, '--tls-ca', files.authority]
          : [argument],
      );
    };
    await step('creating the databases', () =>
      Promise.all(plan.services.map((service) => ensureDatabase(serverUrl, service.database))),
    );

    // Per DFSP: one host process for each DFSP with several services (the central ledger, alone
    // in its group, runs as a process of its own either way).
    const hosts = new Map<string, ServiceHost>();
    if (options.processes === 'per-dfsp') {
      for (const dfsp of plan.dfsps) {
        if (plan.services.filter((service) => service.dfsp === dfsp.name).length < 2) continue;
        hosts.set(
          dfsp.name,
          new ServiceHost(dfsp.name, {
            cwd: directories.config,
            logFile: path.join(directories.logs, `${dfsp.name}.log`),
            environment: options.environment,
            profileDirectory: options.profileDirectory,
          }),
        );
      }
    }
    for (const service of plan.services) {
      if (service.config) {
        writeFileSync(
          path.join(directories.config, service.config.file),
          `${JSON.stringify(service.config.content, null, 2)}\n`,
        );
      }
      processes.set(
        service.name,
        new ServiceProcess(
          { ...service, args: argumentsOf(service) },
          {
            cwd: directories.config,
            logFile: path.join(directories.logs, `${service.name}.log`),
            databaseUrl: withDatabase(serverUrl, service.database),
            identity: adminIdentity,
            environment: options.environment,
            profileDirectory: options.profileDirectory,
            host: service.dfsp ? hosts.get(service.dfsp) : undefined,
          },
        ),
      );
    }
    for (const dfsp of plan.dfsps) ensureSecret(path.join(directories.secrets, dfsp.secretFile));

    // Every service of a kind boots at once; their readiness is awaited (and reported) in turn.
    const launch = async (kinds: Array<'ledger' | 'connector' | 'spsp'>) => {
      const services = plan.services.filter((service) => kinds.includes(service.kind));
      for (const service of services) processes.get(service.name)!.start();
      for (const service of services) {
        await step(`starting ${describeService(service.name)} on ${service.address}`, () =>
          processes.get(service.name)!.waitUntilServing(),
        );
      }
    };
    await launch(['ledger']);
    // Connectors and SPSP services follow accounts that must exist when they subscribe.
    await step('creating and funding the accounts', () => seedLedgers(plan.ledgers, adminIdentity));
    await launch(['connector', 'spsp']);

    const file = manifestPath(dataDir);
    const manifest: NetworkManifest = {
      version: 1,
      startTime: new Date().toISOString(),
      dataDir,
      adminPrincipal: plan.adminPrincipal,
      insecure,
      tls: certificates
        ? {
            ca: certificates.get(plan.adminPrincipal)!.authority,
            certificate: certificates.get(plan.adminPrincipal)!.certificate,
            privateKey: certificates.get(plan.adminPrincipal)!.privateKey,
          }
        : null,
      database: {
        embedded: embedded !== undefined,
        // The embedded server's password is a fixed local one; a given server's is not repeated.
        url: embedded ? serverUrl : redactPassword(serverUrl),
      },
      services: plan.services.map((service) => ({
        name: service.name,
        kind: service.kind,
        dfsp: service.dfsp,
        address: service.address,
        pid: processes.get(service.name)!.pid ?? null,
        database: service.database,
        logFile: processes.get(service.name)!.logFile,
      })),
      ledgers: plan.ledgers.map((ledger) => ({
        name: ledger.name,
        dfsp: ledger.dfsp,
        address: ledger.address,
        prefix: ledger.prefix,
        currency: ledger.currency,
        scale: ledger.scale,
        accounts: ledger.accounts.map((account) => ({
          name: account.name,
          owner: account.owner,
          ilpAddress: `${ledger.prefix}${account.name}`,
        })),
      })),
      dfsps: plan.dfsps.map((dfsp) => ({
        name: dfsp.name,
        ledger: dfsp.ledger,
        spsp: plan.services.find((service) => service.kind === 'spsp' && service.dfsp === dfsp.name)!.address,
        connector: plan.services.find((service) => service.kind === 'connector' && service.dfsp === dfsp.name)!.address,
        spspPrincipal: dfsp.spspPrincipal,
        customers: dfsp.customers,
      })),
    };
    writeManifest(file, manifest);

    let stopping: Promise<void> | undefined;
    return {
      plan,
      manifest,
      manifestFile: file,
      databaseServerUrl: serverUrl,
      databaseUrl: (serviceName) => {
        const service = plan.services.find((candidate) => candidate.name === serviceName);
        if (!service) throw new Error(`no service "${serviceName}"`);
        return withDatabase(serverUrl, service.database);
      },
      identityFor: async (principal) => {
        if (!certificates) return { principal };
        const files = (await issueNetworkCertificates(directories.certificates, [principal])).get(principal)!;
        return { credentials: channelCredentials(files) };
      },
      service: (name) => {
        const child = processes.get(name);
        if (!child) throw new Error(`no service "${name}" (there are ${[...processes.keys()].join(', ')})`);
        return child;
      },
      restartService: async (name) => {
        const child = processes.get(name);
        if (!child) throw new Error(`no service "${name}"`);
        child.start();
        await child.waitUntilServing();
      },
      stop: () => (stopping ??= stopAll()),
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/**
 * The principal a service acts as: the `principal` of a connector's or SPSP service's
 * configuration, or the service's name for a ledger (which calls no one).
 */
function principalOf(service: PlannedService): string {
  const configured = (service.config?.content as { principal?: unknown } | undefined)?.principal;
  return typeof configured === 'string' ? configured : service.name;
}

/** Creates the network's CA (once) and a certificate for each principal, valid on 127.0.0.1 and localhost. */
async function issueNetworkCertificates(directory: string, principals: string[]): Promise<Map<string, TlsFiles>> {
  const authority = await ensureCertificateAuthority(directory, 'Interclear local network CA');
  const files = new Map<string, TlsFiles>();
  for (const principal of new Set(principals)) {
    const paths = await ensureCertificate(directory, authority, {
      commonName: principal,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    files.set(principal, { certificate: paths.certificate, privateKey: paths.privateKey, authority: paths.authority });
  }
  return files;
}

/** "dfsp-a-spsp" → "DFSP A SPSP service", "central-ledger" → "central ledger". */
export function describeService(name: string): string {
  return name
    .replace(/^dfsp-([a-z0-9]+)-/, (_match, letter: string) => `DFSP ${letter.toUpperCase()} `)
    .replace(/spsp$/, 'SPSP service')
    .replace(/-/g, ' ');
}

function redactPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}
