/**
 * The benchmark's CPU accounting: time on a core, per service process and for the PostgreSQL
 * processes serving the benchmark's databases (and not for other databases on the same server).
 */
import { spawn } from 'node:child_process';
import { startCpuWindow } from '../../src/bench/cpu';
import { createPool } from '../../src/platform/database';
import { createTestDatabase } from '../support/database';

/**
 * A process that does a fixed amount of work, reports the CPU it has used since it started
 * (its own count, process.cpuUsage), then stays alive until killed.
 */
function worker(iterations: number): { pid: number; report: Promise<number>; stop(): void } {
  const child = spawn(process.execPath, [
    '-e',
    `let x = 0; for (let i = 0; i < ${iterations}; i++) x += Math.sqrt(i);
     const { user, system } = process.cpuUsage();
     process.stdout.write(String((user + system) / 1000) + '\\n');
     setInterval(() => x, 1000);`,
  ]);
  const report = new Promise<number>((resolve) => child.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk))));
  return { pid: child.pid!, report, stop: () => child.kill() };
}

test('counts the CPU each service process used during the window (as the process itself counts it)', async () => {
  const window = startCpuWindow({}, 'no_such_prefix_');
  if (process.platform !== 'linux') {
    // Nothing to read elsewhere: nothing is claimed.
    expect(window.end()).toEqual({});
    return;
  }
  const busy = worker(300_000_000);
  const idle = worker(0);
  try {
    const measuring = startCpuWindow({ busy: busy.pid, idle: idle.pid, gone: 999_999_999 }, 'no_such_prefix_');
    const [busyOwn, idleOwn] = await Promise.all([busy.report, idle.report]);
    const used = measuring.end();
    expect(busyOwn).toBeGreaterThan(100);
    // Clock ticks are 10 ms; the process may have used a little more since it reported.
    expect(used.busy).toBeGreaterThanOrEqual(busyOwn - 20);
    expect(used.busy).toBeLessThanOrEqual(busyOwn + 60);
    expect(used.idle).toBeLessThanOrEqual(idleOwn + 60);
    expect(used.busy).toBeGreaterThan(used.idle + 50);
    expect(used).not.toHaveProperty('gone');
    expect(used).not.toHaveProperty('postgresql'); // no database of that prefix
  } finally {
    busy.stop();
    idle.stop();
  }
});

test("counts PostgreSQL's work for the benchmark's databases, and not another database's", async () => {
  const ours = await createTestDatabase('cpu_ours');
  const theirs = await createTestDatabase('cpu_theirs');
  const ourPool = createPool(ours.url, { size: 1 });
  const theirPool = createPool(theirs.url, { size: 1 });
  const work = (pool: typeof ourPool, rows: number) =>
    pool.query(`select count(*) from generate_series(1, ${rows}) as n where md5(n::text) like 'a%'`);
  try {
    if (process.platform !== 'linux') return; // nothing to read elsewhere (see above)
    await Promise.all([work(ourPool, 1), work(theirPool, 1)]); // both backends exist
    const prefix = ours.name;
    const quiet = startCpuWindow({}, prefix);
    await work(theirPool, 1_500_000); // another database's work
    const whileOthersWorked = quiet.end().postgresql;
    const busy = startCpuWindow({}, prefix);
    await work(ourPool, 1_500_000);
    const whileWeWorked = busy.end().postgresql;
    expect(whileWeWorked).toBeGreaterThan(100);
    expect(whileOthersWorked).toBeLessThan(whileWeWorked / 4);
  } finally {
    await ourPool.end();
    await theirPool.end();
    await ours.drop().catch(() => undefined);
    await theirs.drop().catch(() => undefined);
  }
});
