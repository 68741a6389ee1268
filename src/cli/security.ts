/**
 * Flags shared by every command about transport security: mTLS files for servers and clients,
 * or the explicit insecure development mode.
 */
import type { Command } from 'commander';
import { ConfigError, environment, parseInteger, parseListenAddress } from '../platform/config';
import type { ClientIdentity } from '../platform/client';
import { defaultMaxCallsPerPrincipal } from '../platform/gateway';
import type { Logger } from '../platform/logger';
import { channelCredentials, checkTlsFiles, type TlsFiles } from '../platform/tls';

/** Adds --tls-cert/--tls-key/--tls-ca (with INTERCLEAR_TLS_* defaults) to `command`. */
export function withTlsOptions(command: Command): Command {
  return command
    .option('--tls-cert <file>', "this principal's certificate (PEM)", environment('TLS_CERT'))
    .option('--tls-key <file>', "this principal's private key (PEM)", environment('TLS_KEY'))
    .option('--tls-ca <file>', "the network's CA certificate (PEM)", environment('TLS_CA'));
}

/** The TLS files named by the options, or undefined when none is given; all three or none. */
export function tlsFilesFrom(options: { tlsCert?: string; tlsKey?: string; tlsCa?: string }): TlsFiles | undefined {
  const given = [options.tlsCert, options.tlsKey, options.tlsCa].filter((value) => value !== undefined && value !== '');
  if (given.length === 0) return undefined;
  if (given.length !== 3) throw new ConfigError('--tls-cert/--tls-key/--tls-ca', 'give all three files, or none');
  return { certificate: options.tlsCert!, privateKey: options.tlsKey!, authority: options.tlsCa! };
}

/**
 * For a server: its TLS files, or nothing in insecure mode. Refuses to start without either, so
 * plaintext is always a deliberate choice.
 */
export function serverSecurity(options: {
  insecure?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}): TlsFiles | undefined {
  const files = tlsFilesFrom(options);
  if (files && options.insecure)
    throw new ConfigError('--insecure', 'cannot be combined with --tls-cert/--tls-key/--tls-ca');
  if (!files && !options.insecure) {
    throw new ConfigError(
      '--tls-cert',
      'mTLS is required: give --tls-cert, --tls-key and --tls-ca (see `interclear certs`), or --insecure for development',
    );
  }
  // Before anything starts (an embedded PostgreSQL, a database connection): a wrong file fails here.
  if (files) checkTlsFiles(files);
  return files;
}

/** For a client: mTLS with the given files, else plaintext acting as `principal`. */
export function clientIdentity(options: {
  principal?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}): ClientIdentity {
  const files = tlsFilesFrom(options);
  return files ? { credentials: channelCredentials(files) } : { principal: options.principal };
}

/** The most unary calls a principal may have in flight on the server (--max-calls-per-principal). */
export function maxCallsPerPrincipalFrom(options: { maxCallsPerPrincipal: string }): number {
  return parseInteger('--max-calls-per-principal', options.maxCallsPerPrincipal, 1, 1_000_000);
}

/**
 * The flags every server command shares: mTLS files (or --insecure), its database (a URL or an
 * embedded PostgreSQL's data directory), migrations, the metrics and probe listeners, and the
 * gateway's per-principal concurrency limit.
 */
export function withServerOptions(command: Command, databaseLabel: string): Command {
  return withTlsOptions(command)
    .option('--database-url <url>', `PostgreSQL URL of the ${databaseLabel} database (or DATABASE_URL)`)
    .option(
      '--data-dir <dir>',
      'run an embedded PostgreSQL with its data here (when no URL is given)',
      environment('DATA_DIR'),
    )
    .option('--no-migrate', 'do not apply database migrations at start')
    .option(
      '--insecure',
      'plaintext gRPC; callers named by the x-principal header (development only)',
      environment('INSECURE') === 'true',
    )
    .option('--metrics-listen <host:port>', 'serve Prometheus /metrics here', environment('METRICS_LISTEN'))
    .option(
      '--health-listen <host:port>',
      'plaintext grpc.health.v1-only listener for probes',
      environment('HEALTH_LISTEN'),
    )
    .option(
      '--max-calls-per-principal <n>',
      'unary calls one principal may have in flight on this process; more are refused with RESOURCE_EXHAUSTED',
      environment('MAX_CALLS_PER_PRINCIPAL') ?? String(defaultMaxCallsPerPrincipal),
    );
}

/** What the flags of {@link withServerOptions} and `--admin` configure in a server, checked. */
export interface ServerSettings {
  insecure: boolean;
  tls: TlsFiles | undefined;
  admins: string[];
  migrate: boolean;
  metricsListen: string | undefined;
  healthListen: string | undefined;
  maxCallsPerPrincipal: number;
}

/**
 * Parses the server flags, before anything starts (a bad value fails the command at once), and
 * warns on `logger` when the server is to run without TLS.
 */
export function serverSettingsFrom(
  options: {
    insecure?: boolean;
    tlsCert?: string;
    tlsKey?: string;
    tlsCa?: string;
    admin?: string[];
    migrate: boolean;
    metricsListen?: string;
    healthListen?: string;
    maxCallsPerPrincipal: string;
  },
  logger: Logger,
): ServerSettings {
  const maxCallsPerPrincipal = maxCallsPerPrincipalFrom(options);
  const tls = serverSecurity(options);
  if (!tls) {
    logger.warn('insecure mode: plaintext gRPC, callers identified by the x-principal header; never use in production');
  }
  return {
    insecure: !tls,
    tls,
    admins: options.admin && options.admin.length > 0 ? options.admin : ['admin'],
    migrate: options.migrate,
    metricsListen: options.metricsListen ? parseListenAddress('--metrics-listen', options.metricsListen) : undefined,
    healthListen: options.healthListen ? parseListenAddress('--health-listen', options.healthListen) : undefined,
    maxCallsPerPrincipal,
  };
}
