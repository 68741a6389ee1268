/**
 * The network's per-DFSP process layout (`interclear network --processes per-dfsp`): a DFSP's
 * ledger, connector and SPSP service in one process (`interclear host`), the central ledger in
 * its own; the same payment as in the per-service layout, the same stop, and no process left
 * behind when the network's own process goes away.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PaymentState } from '../../src/gen/interclear/spsp/v1/spsp';
import { interclearBinary } from '../../src/network/launcher';
import { createTestDatabase } from '../support/database';
import { waitUntil } from '../support/processes';
import { startE2eNetwork, type E2eNetwork } from './support';

jest.setTimeout(120_000);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a network with a process per DFSP', () => {
  let net: E2eNetwork | undefined;

  afterAll(async () => {
    await net?.stop();
  });

  it('runs each DFSP in one process, pays across all three ledgers, and stops every process', async () => {
    net = await startE2eNetwork({ processes: 'per-dfsp' });
    const pidOf = (name: string) => net!.network.service(name).pid!;
    const dfspA = pidOf('dfsp-a-ledger');
    const dfspB = pidOf('dfsp-b-ledger');
    expect([pidOf('dfsp-a-connector'), pidOf('dfsp-a-spsp')]).toEqual([dfspA, dfspA]);
    expect([pidOf('dfsp-b-connector'), pidOf('dfsp-b-spsp')]).toEqual([dfspB, dfspB]);
    expect(new Set([pidOf('central-ledger'), dfspA, dfspB]).size).toBe(3);
    // The manifest tells scripts the same.
    const manifestPids = Object.fromEntries(
      net.network.manifest.services.map((service) => [service.name, service.pid]),
    );
    expect(manifestPids['dfsp-a-spsp']).toBe(dfspA);

    const before = await net.balances();
    const { payment } = await net.payments['dfsp-a'].pay({
      paymentId: randomUUID(),
      senderAccount: 'alice',
      receiver: 'bob@dfsp-b',
      amount: { $case: 'destinationAmount', value: 10_000n },
      data: Buffer.alloc(0),
    });
    expect(payment?.state).toBe(PaymentState.PAYMENT_STATE_EXECUTED);
    const after = await net.balances();
    expect(after['dfsp-b/bob'] - before['dfsp-b/bob']).toBe(10_000n);
    expect(after['dfsp-a/alice']).toBeLessThan(before['dfsp-a/alice']);
    await net.checkConservation({ settled: true });

    // One log for the DFSP's process, with each of its services' lines in it.
    const log = readFileSync(net.network.service('dfsp-a-connector').logFile, 'utf8');
    for (const service of ['ledger', 'connector', 'spsp']) expect(log).toContain(`"service":"${service}"`);

    await net.stop();
    net = undefined;
    await waitUntil('every process of the network to exit', async () =>
      [dfspA, dfspB].some(alive) ? undefined : true,
    );
  });
});

describe('interclear host', () => {
  it('refuses to run with neither a configuration nor a network to send it services', () => {
    const result = spawnSync(process.execPath, [interclearBinary, 'host', '--name', 'alone'], { encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('--config: is required (the services to run)');
  });

  it('refuses a command that is not a service, and exits', async () => {
    const child = spawn(process.execPath, [interclearBinary, 'host', '--name', 'wrong'], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.once('message', () => child.send({ args: ['network', '--exit'] }));
    expect(await exited).toBe(1);
    expect(stderr).toContain('"network" is not a service it can run');
  });

  it('stops its services and exits when the process that started it goes away', async () => {
    const database = await createTestDatabase('host_orphan');
    try {
      const child = spawn(process.execPath, [interclearBinary, 'host', '--name', 'orphan'], {
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        env: { ...process.env, LOG_LEVEL: 'info' },
      });
      let output = '';
      for (const stream of [child.stdout!, child.stderr!])
        stream.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.once('message', () =>
        child.send({
          args: [
            'ledger',
            '--listen',
            '127.0.0.1:0',
            '--ilp-prefix',
            'private.orphan.',
            '--currency',
            'USD',
            '--scale',
            '2',
            '--insecure',
            '--database-url',
            database.url,
          ],
        }),
      );
      await waitUntil('the hosted ledger to serve', async () => (/serving on/.test(output) ? true : undefined));
      // What a parent's crash does to the channel: it closes.
      child.disconnect();
      expect(await exited).toBe(0);
      expect(output).toMatch(/"msg":"stopping"/);
    } finally {
      await database.drop();
    }
  });
});
