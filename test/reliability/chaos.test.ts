/**
 * The chaos runs of CI: `interclear chaos` itself, a short run with a fixed seed — the whole
 * network as separate processes under a stream of payments, one fault of each kind, then an
 * audit of every ledger, connector and payment that must find nothing wrong. Twice: with a
 * process per service, and with a process per DFSP (`--processes per-dfsp`), where every kill
 * and pause takes down a DFSP's ledger, connector and SPSP service together.
 *
 * The command runs in its own process on a PostgreSQL server of its own (embedded, in its data
 * directory), not the test run's shared one: its database restart really stops the server,
 * which would break the test files running beside it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { interclearBinary } from '../../src/network/launcher';
import type { ChaosReport } from '../../src/chaos/run';
import { faultKinds } from '../../src/chaos/schedule';

/**
 * A seed whose 25 s schedule has one fault of each kind and starts with an SPSP service's kill:
 * a payment that kill interrupts before its transfer was sent is failed by the service 60 s
 * after it started (its abandonment rule), which then still falls within the test's time.
 */
const seed = 453;

interface ChaosRun {
  dataDir: string;
  exitCode: number;
  report: ChaosReport;
  progress: string;
}

/** Runs `interclear chaos` with the test's seed and `extraArguments`. */
function runChaos(extraArguments: string[]): Promise<ChaosRun> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'interclear-chaos-test-'));
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [
        interclearBinary,
        'chaos',
        '--duration',
        '25s',
        '--seed',
        String(seed),
        '--rate',
        '4',
        '--data-dir',
        dataDir,
        '--json',
        ...extraArguments,
      ],
      // Bounded like everything else: the run's own deadlines end it well before this.
      { timeout: 160_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        try {
          resolve({
            dataDir,
            exitCode: error ? ((error as { code?: number }).code ?? -1) : 0,
            report: JSON.parse(stdout) as ChaosReport,
            progress: stderr,
          });
        } catch {
          reject(new Error(`interclear chaos printed no report (${error?.message ?? 'no error'}):\n${stderr}`));
        }
      },
    );
  });
}

describe.each([
  { layout: 'per-service', processesPerDfsp: 3 },
  { layout: 'per-dfsp', processesPerDfsp: 1 },
] as const)('interclear chaos --processes $layout', ({ layout, processesPerDfsp }) => {
  let run: ChaosRun;

  beforeAll(async () => {
    run = await runChaos(layout === 'per-dfsp' ? ['--processes', 'per-dfsp'] : []);
  }, 170_000);

  afterAll(() => {
    // A failing run keeps its logs for the post-mortem; the failure messages say where.
    if (run?.exitCode === 0) rmSync(run.dataDir, { recursive: true, force: true });
  });

  test('one fault of each kind was injected and healed, the first an SPSP service killed', () => {
    const { report } = run;
    expect(report.processes).toBe(layout);
    expect(report.planned[0]).toMatchObject({ kind: 'kill-spsp' });
    expect(new Set(report.faults.map((record) => record.fault.kind))).toEqual(new Set(faultKinds));
    expect(report.faults.map((record) => record.error ?? 'healed')).toEqual(report.planned.map(() => 'healed'));
  });

  test('each kill, pause and cut stream hit the process the layout gives the service, and said so', () => {
    const checked = new Set<string>();
    for (const record of run.report.faults) {
      const { fault } = record;
      const target = fault.kind === 'drop-stream' ? fault.follower : 'service' in fault ? fault.service : undefined;
      const dfsp = target === undefined ? undefined : /^(dfsp-[a-z])-/.exec(target)?.[1];
      if (dfsp === undefined) continue;
      // Where the kernel refuses to cut sockets (ss -K), the ledger is restarted instead: that
      // fallback names the ledger's process, not the follower's.
      if (fault.kind === 'drop-stream' && !/TCP connection\(s\) cut/.test(record.detail)) continue;
      checked.add(fault.kind);
      const shared = `the process of ${dfsp}-ledger, ${dfsp}-connector and ${dfsp}-spsp`;
      if (processesPerDfsp === 1) expect(record.detail).toContain(shared);
      else expect(record.detail).not.toContain('the process of');
    }
    // The seed's schedule aims each of these at a DFSP's service.
    expect([...checked].filter((kind) => kind !== 'drop-stream').sort()).toEqual([
      'kill-connector',
      'kill-ledger',
      'kill-spsp',
      'pause',
    ]);
  });

  test('payments went through the faults, and every one ended final', () => {
    const { payments } = run.report;
    expect(payments.sent).toBeGreaterThan(50);
    expect(payments.executed).toBeGreaterThan(0);
    expect(payments.executed + payments.rejected + payments.expired + payments.failed + payments.notRecorded).toBe(
      payments.sent,
    );
  });

  test('the audit finds no invariant violated, and the command says so with its exit status', () => {
    const { dataDir } = run;
    expect({ violations: run.report.violations, logs: dataDir }).toEqual({ violations: [], logs: dataDir });
    // Every connector loss the audit accepted was reported by the connector and tied to a fault.
    for (const loss of run.report.losses) expect(loss.fault).toMatch(/^#\d+ /);
    expect({ exitCode: run.exitCode, progress: run.exitCode === 0 ? '' : run.progress }).toEqual({
      exitCode: 0,
      progress: '',
    });
  });
});
