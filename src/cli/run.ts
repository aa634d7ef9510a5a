import { InvalidIdentifierError, PostgresCacheError } from '../errors.js';
import { HELP, parseCommand, UsageError } from './args.js';
import { packageVersion } from './version.js';
import { runWatch } from './watch-command.js';

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

/** Runs the command line; resolves with the exit code (0 done, 1 failed, 2 called wrongly). Never throws. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  try {
    const command = parseCommand(argv, io.env);
    if (command.name === 'help') {
      io.stdout(HELP);
      return 0;
    }
    if (command.name === 'version') {
      io.stdout(`${packageVersion()}\n`);
      return 0;
    }
    await runWatch(command.args, { out: io.stdout });
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`postgres-cache: ${error.message}\n\n${HELP}`);
      return 2;
    }
    // A name given on the command line that cannot be one (a table, a column, --channel, --prefix, …).
    if (error instanceof InvalidIdentifierError) {
      io.stderr(`postgres-cache: ${error.code}: ${error.message}\n\n${HELP}`);
      return 2;
    }
    if (error instanceof PostgresCacheError) {
      io.stderr(`postgres-cache: ${error.code}: ${error.message}\n`);
      return 1;
    }
    io.stderr(`postgres-cache: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
