/**
 * A service that fails to start after it started its embedded PostgreSQL (`--data-dir`) stops
 * that server before it exits: no postgres process is left running in the data directory, and
 * the directory is not locked (postmaster.pid is gone), so the next start can use it at once.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { interclearBinary } from '../../src/network/launcher';
import type { TlsFiles } from '../../src/platform/tls';
import { createTestCertificates } from '../cli/support';

/** Processes whose command line names `dataDir` (Linux /proc). */
function processesUsing(dataDir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let commandLine: string;
    try {
      commandLine = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue; // ended meanwhile
    }
    if (commandLine.includes(dataDir)) found.push(`${entry}: ${commandLine}`);
  }
  return found;
}

/** Runs `interclear ARGS` to its exit; its code and what it printed on stderr. */
function runInterclear(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const environment: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info' };
  // The embedded server is the point: no database URL may stand in for it.
  delete environment.DATABASE_URL;
  delete environment.INTERCLEAR_DATABASE_URL;
  const child = spawn(process.execPath, [interclearBinary, ...args], {
    env: environment,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    }),
  );
}

describe('a ledger on an embedded PostgreSQL whose listen address is taken', () => {
  let occupied: Server;
  let directory: string;

  beforeAll(async () => {
    occupied = createServer();
    await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
    directory = mkdtempSync(path.join(tmpdir(), 'interclear-failed-start-'));
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => occupied.close(() => resolve()));
    // Should the test fail, do not leave a server running in the directory about to be removed.
    for (const line of processesUsing(directory)) {
      const pid = Number(line.split(':')[0]);
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') process.kill(pid, 'SIGINT');
    }
    rmSync(directory, { recursive: true, force: true });
  });

  test.each([['initialising its data directory'], ['reusing its data directory']])(
    'fails with the cause, its PostgreSQL stopped and the directory unlocked (%s)',
    async () => {
      const dataDir = path.join(directory, 'data');
      const { port } = occupied.address() as { port: number };
      const outcome = await runInterclear([
        'ledger',
        '--listen',
        `127.0.0.1:${port}`,
        '--ilp-prefix',
        'private.busy.',
        '--currency',
        'USD',
        '--scale',
        '2',
        '--insecure',
        '--data-dir',
        dataDir,
      ]);
      expect(outcome.code).toBe(1);
      expect(outcome.stderr).toMatch(/address already in use/);
      // The embedded server did start (the failure came after it)...
      expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
      // ...and was stopped before the command exited.
      expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
      expect(processesUsing(dataDir)).toEqual([]);
    },
    120_000,
  );
});

describe('a service given certificate files it cannot use', () => {
  let certificates: { server: TlsFiles; admin: TlsFiles };
  let directory: string;

  beforeAll(async () => {
    certificates = await createTestCertificates();
    directory = mkdtempSync(path.join(tmpdir(), 'interclear-tls-start-'));
  });

  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  const ledgerArgs = (files: TlsFiles, dataDir: string) => [
    'ledger',
    '--listen',
    '127.0.0.1:0',
    '--ilp-prefix',
    'private.tls.',
    '--currency',
    'USD',
    '--scale',
    '2',
    '--tls-cert',
    files.certificate,
    '--tls-key',
    files.privateKey,
    '--tls-ca',
    files.authority,
    '--data-dir',
    dataDir,
  ];

  test.each([
    [
      'a certificate file that does not exist',
      () => ({ ...certificates.server, certificate: path.join(directory, 'nope.crt') }),
      /--tls-cert: cannot read ".*nope\.crt": ENOENT/,
    ],
    [
      "another principal's key",
      () => ({ ...certificates.server, privateKey: certificates.admin.privateKey }),
      /--tls-key: ".*admin\.key" is not the key of the certificate ".*server\.crt" \(--tls-cert\)/,
    ],
  ])(
    '%s: refused at once with the flag and the cause, status 2, before any database starts',
    async (_case, files, message) => {
      const dataDir = path.join(directory, `data-${Math.random().toString(36).slice(2)}`);
      const outcome = await runInterclear(ledgerArgs(files(), dataDir));
      expect(outcome.stderr).toMatch(message);
      expect(outcome.code).toBe(2);
      expect(existsSync(dataDir)).toBe(false);
    },
  );
});
