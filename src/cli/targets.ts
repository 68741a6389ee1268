/**
 * Where an operator command calls: `--ledger`, `--connector` or `--spsp` take a host:port, or the
 * name of a ledger or DFSP of the local network (`interclear network`, npm start), read from its
 * manifest — `--ledger dfsp-a`, `--connector dfsp-b`. Named so, the call also uses the network's
 * operator identity (its admin certificate, or its principal in insecure mode) unless TLS files
 * are given.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { manifestPath, readManifest, type NetworkManifest } from '../network/manifest';
import { adminIdentity } from '../network/payment';
import type { ClientIdentity } from '../platform/client';
import { ConfigError, environment } from '../platform/config';
import { clientIdentity, tlsFilesFrom } from './security';

/** The service a command calls. */
export type ServiceKind = 'ledger' | 'connector' | 'spsp';

/** The manifest a name is looked up in: INTERCLEAR_MANIFEST, else the one of `interclear network`. */
function defaultManifestFile(): string {
  return environment('MANIFEST') ?? manifestPath(path.join('.interclear', 'network'));
}

/** `--manifest`, for the commands that take a service's name. */
export function withManifestOption(command: Command): Command {
  return command.option(
    '--manifest <file>',
    "the local network's manifest, where names are looked up (default: INTERCLEAR_MANIFEST, else " +
      '.interclear/network/network.json; `interclear network --data-dir D` writes D/network.json)',
  );
}

/** The address of service `kind` named `name` in `manifest`, or undefined. */
export function addressIn(manifest: NetworkManifest, kind: ServiceKind, name: string): string | undefined {
  if (kind === 'ledger') {
    const byName = manifest.ledgers.find((ledger) => ledger.name === name || ledger.dfsp === name);
    return byName?.address;
  }
  const dfsp = manifest.dfsps.find((candidate) => candidate.name === name);
  return dfsp ? dfsp[kind] : undefined;
}

/**
 * The address and identity for a call to the `kind` named by `value` (`--ledger` etc.): a
 * host:port as given, with the TLS flags or principal; a name from the local network's manifest.
 */
export function resolveTarget(
  kind: ServiceKind,
  value: string,
  options: { principal?: string; tlsCert?: string; tlsKey?: string; tlsCa?: string; manifest?: string },
  manifestFile = options.manifest ?? defaultManifestFile(),
): { address: string; identity: ClientIdentity } {
  if (value.includes(':')) return { address: value, identity: clientIdentity(options) };
  const manifest = readManifest(manifestFile);
  const address = addressIn(manifest, kind, value);
  if (address === undefined) {
    const names =
      kind === 'ledger'
        ? manifest.ledgers.map((ledger) => ledger.dfsp ?? ledger.name)
        : manifest.dfsps.map((dfsp) => dfsp.name);
    throw new ConfigError(
      `--${kind}`,
      `must be HOST:PORT or the name of a ${kind === 'ledger' ? 'ledger' : 'DFSP'} of the network in ` +
        `"${manifestFile}" (${names.join(', ')}), got "${value}"`,
    );
  }
  return { address, identity: tlsFilesFrom(options) ? clientIdentity(options) : adminIdentity(manifest) };
}
