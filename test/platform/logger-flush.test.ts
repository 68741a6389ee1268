/**
 * An alarm flushed with flushLogsNow reaches the log file even when the process is killed right
 * after (SIGKILL runs no handler): lines are otherwise written asynchronously, and the last ones
 * are lost — as a connector's "lost money" line once was in a chaos run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const repositoryRoot = path.join(__dirname, '..', '..');

/** Runs a process that logs one line to `file`, flushes it or not, and SIGKILLs itself. */
function logThenDie(file: string, flush: boolean): void {
  const script = `
    require('tsx/cjs');
    const { createLogger, flushLogsNow } = require(${JSON.stringify(path.join(repositoryRoot, 'src/platform/logger.ts'))});
    const logger = createLogger('test', { destination: ${JSON.stringify(file)} });
    // Once the file is open, as in a service that has been running.
    setTimeout(() => {
      // A busy moment: earlier lines are being written while the alarm is logged behind them.
      for (let index = 0; index < 2000; index += 1) logger.info({ index }, 'payment moved on');
      logger.error({ alarm: 1 }, 'connector lost money: test');
      ${flush ? 'flushLogsNow(logger);' : ''}
      process.kill(process.pid, 'SIGKILL');
    }, 200);
  `;
  const result = spawnSync(process.execPath, ['-e', script], { cwd: repositoryRoot, encoding: 'utf8' });
  expect(result.signal).toBe('SIGKILL');
}

let directory: string;
beforeAll(() => {
  directory = mkdtempSync(path.join(tmpdir(), 'interclear-log-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

test('a flushed line survives SIGKILL right after it; an unflushed one does not', () => {
  const flushed = path.join(directory, 'flushed.log');
  logThenDie(flushed, true);
  expect(readFileSync(flushed, 'utf8')).toContain('connector lost money: test');
  const unflushed = path.join(directory, 'unflushed.log');
  logThenDie(unflushed, false);
  expect(readFileSync(unflushed, 'utf8')).not.toContain('connector lost money: test');
});
