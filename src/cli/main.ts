/** The `interclear` command line: one binary, a subcommand per service and operator task. */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../platform/config';
import { registerBenchCommand } from './bench';
import { registerCertificateCommands } from './certs';
import { registerChaosCommand } from './chaos';
import { registerConnectorCommands } from './connector';
import { registerHostCommand } from './host';
import { registerLedgerCommands } from './ledger';
import { registerNetworkCommand } from './network';
import { registerOperatorCommands } from './operate';
import { registerPayCommand } from './pay';
import { registerSpspCommands } from './spsp';
import { registerTraceCommand } from './trace';

/** Builds the command tree (exported for tests of the CLI). */
export function buildProgram(): Command {
  const program = new Command('interclear')
    .description('Interclear: Interledger-style clearing between DFSPs (ledgers, connectors, SPSP) over gRPC')
    .version('0.1.0')
    .showHelpAfterError();
  registerLedgerCommands(program);
  registerConnectorCommands(program);
  registerSpspCommands(program);
  registerNetworkCommand(program);
  registerCertificateCommands(program);
  registerOperatorCommands(program);
  registerPayCommand(program);
  registerTraceCommand(program);
  registerBenchCommand(program);
  registerChaosCommand(program);
  registerHostCommand(program, main);
  return program;
}

/** Runs the command line; failures print their cause and set a non-zero exit code. */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed the problem (an unknown option, a missing argument): a usage
      // error, status 2 like every invalid flag; help and version end with 0.
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`interclear: invalid configuration: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
}
