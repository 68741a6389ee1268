/**
 * `interclear host` (internal): several services of a local network in one Node.js process, e.g.
 * a DFSP's ledger, connector and SPSP service (`interclear network --processes per-dfsp`).
 *
 * The process is a child of `interclear network`, which sends it each service to start over the
 * IPC channel as the command line an operator would type (`ledger --listen …`), so each service
 * parses, validates and starts exactly as it does in a process of its own; they start one at a
 * time, in the order sent. The services stop together on SIGINT/SIGTERM (the last started
 * first), and when the parent goes away (the IPC channel closes) as if it had sent SIGTERM.
 * A service that fails to start ends the process with its error, as its own process would.
 *
 * What the services share is the process: its event loop, its OpenTelemetry tracer provider
 * (spans carry the host's name, e.g. "dfsp-a", as service.name) and its log output. Each keeps
 * its own port, database, certificate, metrics registry and health service.
 */
import type { Command } from 'commander';
import { ConfigError } from '../platform/config';
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
    .command('host', { hidden: true })
    .description('run several services in one process (internal: started by `interclear network --processes per-dfsp`)')
    .requiredOption('--name <name>', 'the process as tracing and logs name it, e.g. dfsp-a')
    .action(async (options: { name: string }) => {
      const send = process.send?.bind(process);
      if (!send) {
        throw new ConfigError(
          'host',
          'runs only as a child of `interclear network`, which sends it the services to run',
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
