/**
 * The network's manifest: a JSON file describing a running network, so that scripts, tests and
 * `interclear pay` can drive it without knowing how it was started.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../platform/config';
import type { ServiceKind } from './topology';

/** One process of the network. */
export interface ManifestService {
  name: string;
  kind: ServiceKind;
  /** The DFSP the service belongs to; null for the hub's central ledger. */
  dfsp: string | null;
  /** host:port of its gRPC server. */
  address: string;
  pid: number | null;
  /** Its database on the network's PostgreSQL server. */
  database: string;
  logFile: string;
}

/** One ledger of the network. */
export interface ManifestLedger {
  name: string;
  dfsp: string | null;
  address: string;
  prefix: string;
  currency: string;
  scale: number;
  accounts: Array<{ name: string; owner: string; ilpAddress: string }>;
}

/** One DFSP of the network. */
export interface ManifestDfsp {
  name: string;
  /** The ledger's name in `ledgers`. */
  ledger: string;
  /** host:port of its SPSP service (SpspService and PaymentService). */
  spsp: string;
  /** host:port of its connector (ConnectorService and QuotingService). */
  connector: string;
  /** The principal of its SPSP service, owner of its customers' accounts. */
  spspPrincipal: string;
  /** Its customers, "name@dfsp". */
  customers: string[];
}

/** The manifest file's content. */
export interface NetworkManifest {
  version: 1;
  startTime: string;
  dataDir: string;
  /** The principal with administrator rights on every service (x-principal in insecure mode). */
  adminPrincipal: string;
  /** Plaintext gRPC with the x-principal header. */
  insecure: boolean;
  /** mTLS files once the network runs with TLS: the CA and an operator's certificate and key. */
  tls: { ca: string; certificate: string; privateKey: string } | null;
  database: { embedded: boolean; url: string };
  services: ManifestService[];
  ledgers: ManifestLedger[];
  dfsps: ManifestDfsp[];
}

/** The manifest's path in a network's data directory. */
export function manifestPath(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'network.json');
}

/** Writes the manifest atomically (a reader never sees half a file). */
export function writeManifest(file: string, manifest: NetworkManifest): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(temporary, file);
}

/** Reads a manifest, with a clear message when there is none. */
export function readManifest(file: string): NetworkManifest {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ConfigError(
      '--manifest',
      `no network manifest at "${file}": start a network with \`interclear network\` (or npm start)`,
    );
  }
  let manifest: NetworkManifest;
  try {
    manifest = JSON.parse(text) as NetworkManifest;
  } catch (error) {
    throw new ConfigError('--manifest', `"${file}" is not valid JSON: ${(error as Error).message}`);
  }
  if (manifest.version !== 1 || !Array.isArray(manifest.services) || !Array.isArray(manifest.ledgers)) {
    throw new ConfigError('--manifest', `"${file}" is not an Interclear network manifest (version 1)`);
  }
  return manifest;
}
