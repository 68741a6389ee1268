/**
 * The whole network for end-to-end tests, started by the same code as `interclear network`
 * (src/network), as real child processes on the test run's PostgreSQL server with one database
 * per service, short hold times, and clients for every service.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type pg from 'pg';
import { createQuotingClient, durationToMs, type QuotingClient } from '../../src/connector/client';
import {
  EventType,
  TransferState,
  type SubscribeResponse,
  type Transfer,
} from '../../src/gen/interclear/ledger/v1/ledger';
import { createLedgerClient, type LedgerClient } from '../../src/ledger/client';
import type { ManifestLedger } from '../../src/network/manifest';
import { startNetwork, type ProcessLayout, type RunningNetwork } from '../../src/network/network';
import { planNetwork, portsFrom } from '../../src/network/topology';
import { createPool, dropDatabase } from '../../src/platform/database';
import { createPaymentClient, createSpspClient, type PaymentClient, type SpspClient } from '../../src/spsp/client';
import { testServerUrl } from '../support/database';
import { conservation } from '../support/ledger';

/** Hold times of the test network: the first transfer is held 3 s (2 s + two 500 ms windows). */
export const testTiming = {
  destinationHoldMs: 2_000,
  messageWindowMs: 500,
  connectorMaxHoldMs: 5_000,
  ledgerMaxHoldMs: 30_000,
};

/** The test network and its clients. */
export interface E2eNetwork {
  network: RunningNetwork;
  dataDir: string;
  /** LedgerService of each ledger as admin, by ledger name (central, dfsp-a, dfsp-b). */
  admin: Record<string, LedgerClient>;
  /** PaymentService of each DFSP as its admin, by DFSP name. */
  payments: Record<string, PaymentClient>;
  /** SpspService of each DFSP as another DFSP would call it. */
  spsp: Record<string, SpspClient>;
  /** QuotingService of each DFSP's connector. */
  quoting: Record<string, QuotingClient>;
  ledger(name: string): ManifestLedger;
  /** The receiver secret of a DFSP's SPSP service (for tests acting as an independent sender). */
  secret(dfsp: string): Buffer;
  /** Every ledger: no money created or lost, and (with `settled`) no hold left. */
  checkConservation(options?: { settled?: boolean }): Promise<void>;
  /** Balances of every planned account, by "ledger/account". */
  balances(): Promise<Record<string, bigint>>;
  stop(): Promise<void>;
}

export async function startE2eNetwork(
  options: { environment?: Record<string, string | undefined>; processes?: ProcessLayout } = {},
): Promise<E2eNetwork> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'interclear-e2e-'));
  const databasePrefix = `test_e2e_${randomBytes(3).toString('hex')}_`;
  const serverUrl = testServerUrl();
  let network: RunningNetwork;
  try {
    network = await startNetwork({
      dataDir,
      basePort: 0,
      databaseUrl: serverUrl,
      databasePrefix,
      timing: testTiming,
      environment: options.environment,
      processes: options.processes,
    });
  } catch (error) {
    // startNetwork stopped what it started; the databases and files are left to clear.
    for (const service of planNetwork({ ports: portsFrom(0), databasePrefix }).services) {
      await dropDatabase(serverUrl, service.database).catch(() => undefined);
    }
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const { manifest } = network;
  const identity = await network.identityFor(manifest.adminPrincipal);
  const anotherDfsp = await network.identityFor('another-dfsp');
  const admin: Record<string, LedgerClient> = {};
  const pools: Record<string, pg.Pool> = {};
  for (const ledger of manifest.ledgers) {
    admin[ledger.name] = createLedgerClient(ledger.address, identity);
    pools[ledger.name] = createPool(network.databaseUrl(`${ledger.name}-ledger`), { size: 2 });
  }
  const payments: Record<string, PaymentClient> = {};
  const spsp: Record<string, SpspClient> = {};
  const quoting: Record<string, QuotingClient> = {};
  for (const dfsp of manifest.dfsps) {
    payments[dfsp.name] = createPaymentClient(dfsp.spsp, identity);
    spsp[dfsp.name] = createSpspClient(dfsp.spsp, anotherDfsp);
    quoting[dfsp.name] = createQuotingClient(dfsp.connector, await network.identityFor(dfsp.spspPrincipal));
  }
  return {
    network,
    dataDir,
    admin,
    payments,
    spsp,
    quoting,
    ledger: (name) => manifest.ledgers.find((ledger) => ledger.name === name)!,
    secret: (dfsp) => {
      const file = network.plan.dfsps.find((entry) => entry.name === dfsp)!.secretFile;
      return Buffer.from(readFileSync(path.join(dataDir, 'secrets', file), 'utf8').trim(), 'hex');
    },
    async checkConservation(options = {}) {
      for (const [name, pool] of Object.entries(pools)) {
        const totals = await conservation({ pool });
        expect({ ledger: name, total: totals.total }).toEqual({ ledger: name, total: totals.netDeposits });
        if (options.settled) expect({ ledger: name, held: totals.held }).toEqual({ ledger: name, held: 0n });
      }
    },
    async balances() {
      const result: Record<string, bigint> = {};
      for (const ledger of manifest.ledgers) {
        for (const account of ledger.accounts) {
          const response = await admin[ledger.name].getAccount({ name: account.name });
          result[`${ledger.name}/${account.name}`] = response.account!.balance;
        }
      }
      return result;
    },
    async stop() {
      for (const client of [
        ...Object.values(admin),
        ...Object.values(payments),
        ...Object.values(spsp),
        ...Object.values(quoting),
      ]) {
        client.close();
      }
      for (const pool of Object.values(pools)) await pool.end();
      await network.stop();
      for (const service of network.plan.services)
        await dropDatabase(serverUrl, service.database).catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The receiver's fulfillment of a packet, computed independently of src/ilp (IPR/PSK, RFC 0016). */
export function pskFulfillment(secret: Buffer, packet: Buffer): Buffer {
  const conditionKey = createHmac('sha256', secret).update('ilp_psk_condition').digest();
  return createHmac('sha256', conditionKey).update(packet).digest();
}

/**
 * Follows every transfer of a ledger (as admin) so that a test can wait for a transfer to become
 * final on the notification stream rather than by polling.
 */
export async function followLedger(client: LedgerClient): Promise<{
  final(transferId: string, timeoutMs?: number): Promise<Transfer>;
  prepared(predicate: (transfer: Transfer) => boolean, timeoutMs?: number): Promise<Transfer>;
  close(): void;
}> {
  const finals = new Map<string, Transfer>();
  const prepares: Transfer[] = [];
  let wake: (() => void) | undefined;
  const stream: grpc.ClientReadableStream<SubscribeResponse> = client.subscribe({ accounts: [] });
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (response: SubscribeResponse) => {
      if (response.kind?.$case === 'subscribed') resolve();
      if (response.kind?.$case !== 'event') return;
      const { type, transfer } = response.kind.value;
      if (!transfer) return;
      if (type === EventType.EVENT_TYPE_TRANSFER_PREPARED) prepares.push(transfer);
      if (type === EventType.EVENT_TYPE_TRANSFER_EXECUTED || type === EventType.EVENT_TYPE_TRANSFER_REJECTED) {
        finals.set(transfer.id, transfer);
      }
      wake?.();
    });
    stream.on('error', reject);
  });
  const waitFor = async <T>(find: () => T | undefined, what: string, timeoutMs: number): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  return {
    final: (transferId, timeoutMs = 15_000) =>
      waitFor(() => finals.get(transferId), `transfer ${transferId} to be final`, timeoutMs),
    prepared: (predicate, timeoutMs = 15_000) =>
      waitFor(() => prepares.find(predicate), 'a prepared transfer', timeoutMs),
    close: () => stream.cancel(),
  };
}

/** A quote's source hold in milliseconds. */
export function sourceHoldMs(quote: { sourceHoldDuration?: { seconds: bigint; nanos: number } }): number {
  return quote.sourceHoldDuration ? durationToMs(quote.sourceHoldDuration) : 0;
}

export { TransferState };
