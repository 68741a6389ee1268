/**
 * `interclear host`: several services in one Node.js process, e.g. a DFSP's ledger, connector and
 * SPSP service — fewer processes for the same work (docs/PERFORMANCE.md, "One process per DFSP").
 *
 * Two ways to give it its services, each as the command line an operator would type for a
 * process of its own (`ledger --listen …`), so that each parses, validates and starts exactly as
 * it would alone:
 * - `--config host.json` (an operator's deployment): `{"name": "dfsp-a", "services": [{"args":
 *   ["ledger", …], "databaseUrlEnv": "LEDGER_DATABASE_URL"}, …]}`, started in the order listed,
 *   each serving before the next starts; a service's database URL comes from the environment
 *   variable named, never from a command line `ps` shows.
 * - over the IPC channel, as `interclear network --processes per-dfsp` starts it: each message
 *   one service, started in the order sent.
 * The services stop together on SIGINT/SIGTERM (the last started first), and in IPC mode also
 * when the parent goes away (the channel closes) as if it had sent SIGTERM. A service that fails
 * to start ends the process with its error, as its own process would.
 *
 * What the services share is the process: its event loop, its OpenTelemetry tracer provider
 * (spans carry the host's name, e.g. "dfsp-a", as service.name) and its log output. Each keeps
 * its own port, database, certificate, metrics registry and health service.
 */
import type { Command } from 'commander';
import { arrayAt, ConfigError, environment, objectAt, readJsonFile, stringAt } from '../platform/config';
import { initTracing, shareTracingProvider } from '../platform/tracing';
import { servicesStopping, waitBeforeStopping } from './runtime';

/** What `interclear network` sends: one service to start. */
export interface HostedServiceMessage {
  /** The service's command line without the program, e.g. ["ledger", "--listen", "127.0.0.1:7101", …]. */
  args: string[];
}

/** What `interclear host` sends once it listens for services (messages sent before could be lost). */
export interface HostReadyMessage {
  ready: true;
}

/** The services `interclear host` may run (never itself, a network, or an operator command). */
const hostableCommands = new Set(['ledger', 'connector', 'spsp']);

export function registerHostCommand(program: Command, run: (argv: string[]) => Promise<void>): void {
  program
    .command('host')
    .description(
      "run several services in one process (e.g. a DFSP's ledger, connector and SPSP service) from a configuration file",
    )
    .option(
      '--config <file>',
      'the services: {"name", "services": [{"args": [...], "databaseUrlEnv"}]}',
      environment('HOST_CONFIG'),
    )
    .option('--name <name>', "the process as tracing names it (default: the configuration's name)")
    .action(async (options: { config?: string; name?: string }) => {
      if (options.config) {
        const config = parseHostConfig(options.config, readJsonFile('--config', options.config), process.env);
        await initTracing({ serviceName: options.name ?? config.name });
        shareTracingProvider();
        const starting = (async () => {
          for (const service of config.services) {
            if (servicesStopping()) return;
            await startHosted({ args: service }, run);
          }
        })();
        waitBeforeStopping(() => starting);
        await starting;
        return;
      }
      const send = process.send?.bind(process);
      if (!send || !options.name) {
        throw new ConfigError(
          '--config',
          'is required (the services to run), unless `interclear network` starts the host and sends them',
        );
      }
      // Before any service: theirs then find the provider set (the first call wins).
      await initTracing({ serviceName: options.name });
      shareTracingProvider();
      let starting = Promise.resolve();
      process.on('message', (message: unknown) => {
        // Once stopping, no service starts any more; a stop first lets the starts under way
        // finish, so that each started service is stopped in turn (the last started first).
        if (servicesStopping()) return;
        starting = starting.then(() => startHosted(message, run));
      });
      waitBeforeStopping(() => starting);
      process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
      const ready: HostReadyMessage = { ready: true };
      send(ready);
    });
}

/** A host configuration file, checked. */
export interface HostConfig {
  name: string;
  /** Each service's command line (without the program), its database URL appended when named. */
  services: string[][];
}

/** Checks a host configuration (`file` names it in messages) and resolves its database URLs from `env`. */
export function parseHostConfig(file: string, value: unknown, env: NodeJS.ProcessEnv): HostConfig {
  const top = objectAt('', value, ['name', 'services']);
  const name = stringAt('name', top.name);
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) {
    throw new ConfigError(
      'name',
      `must be lower-case letters, digits and -, like "dfsp-a", got ${JSON.stringify(name)}`,
    );
  }
  const entries = arrayAt('services', top.services);
  if (entries.length === 0) throw new ConfigError('services', `lists no service (in "${file}")`);
  const services = entries.map((entry, index) => {
    const key = `services[${index}]`;
    const service = objectAt(key, entry, ['args', 'databaseUrlEnv']);
    const args = arrayAt(`${key}.args`, service.args).map((argument, position) =>
      stringAt(`${key}.args[${position}]`, argument),
    );
    if (!hostableCommands.has(args[0])) {
      throw new ConfigError(
        `${key}.args[0]`,
        `must be one of ${[...hostableCommands].join(', ')}, got ${JSON.stringify(args[0] ?? null)}`,
      );
    }
    if (service.databaseUrlEnv === undefined) return args;
    const variable = stringAt(`${key}.databaseUrlEnv`, service.databaseUrlEnv);
    const url = env[variable];
    if (url === undefined || url === '') {
      throw new ConfigError(`${key}.databaseUrlEnv`, `names environment variable ${variable}, which is not set`);
    }
    return [...args, '--database-url', url];
  });
  return { name, services };
}

async function startHosted(message: unknown, run: (argv: string[]) => Promise<void>): Promise<void> {
  if (servicesStopping()) return;
  const args = (message as Partial<HostedServiceMessage> | null)?.args;
  if (!Array.isArray(args) || !args.every((argument) => typeof argument === 'string')) {
    fail(`interclear host: a message that is not a service to start: ${JSON.stringify(message)}`);
    return;
  }
  if (!hostableCommands.has(args[0])) {
    fail(`interclear host: "${args[0]}" is not a service it can run (${[...hostableCommands].join(', ')})`);
    return;
  }
  try {
    await run(['node', 'interclear', ...args]);
  } catch (error) {
    fail(`interclear: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  // An invalid configuration was reported and left an exit code; the service is not running.
  if (process.exitCode !== undefined && process.exitCode !== 0) process.exit(process.exitCode);
}

function fail(message: string): void {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
