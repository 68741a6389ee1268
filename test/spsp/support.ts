/**
 * Two SPSP services (DFSP A sending, DFSP B receiving) on one real ledger, with a stand-in for
 * the sender's connector: a QuotingService whose answers each test chooses. With the quote's
 * connector account set to the receiver's own account, the first transfer is also the last, so
 * the whole SPSP flow runs over real gRPC, PostgreSQL and notification streams without
 * connectors; with an account nobody fulfils, the payment expires.
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { decodeGrpcError, ServiceError, toGrpcError, type DecodedError } from '../../src/platform/errors';
import { durationFromMs } from '../../src/connector/client';
import {
  QuotingServiceService,
  type Quote,
  type QuotingServiceServer,
} from '../../src/gen/interclear/quoting/v1/quoting';
import { silentLogger } from '../../src/platform/logger';
import { startServer, type RunningServer } from '../../src/platform/server';
import { createPaymentClient, createSpspClient, type PaymentClient, type SpspClient } from '../../src/spsp/client';
import type { SpspSettings } from '../../src/spsp/config';
import { startSpsp, type RunningSpsp } from '../../src/spsp/server';
import { createPool } from '../../src/platform/database';
import { migrateSpspDatabase, openSpspOrm } from '../../src/spsp/persistence';
import { SpspStore } from '../../src/spsp/store';
import { createTestDatabase } from '../support/database';
import { newId, startTestLedger, type TestLedger } from '../support/ledger';

/** The status details of the call `promise` makes, which must fail. */
export async function failure(promise: Promise<unknown>): Promise<DecodedError> {
  try {
    await promise;
  } catch (error) {
    return decodeGrpcError(error as grpc.ServiceError);
  }
  throw new Error('expected the call to fail');
}

/** What the stand-in connector answers. */
export type QuoteBehaviour = (request: {
  fixed: 'source' | 'destination';
  amount: bigint;
  destinationAddress: string;
}) => Quote | { ilpCode: string; message: string };

/** A quote paying `account` directly, at par, held `holdMs`. */
export function directQuote(account: string, holdMs = 5_000): QuoteBehaviour {
  return ({ amount, destinationAddress }) => ({
    sourceLedgerPrefix: 'private.local.',
    connectorAccount: account,
    sourceAmount: amount,
    destinationAddress,
    destinationAmount: amount,
    sourceHoldDuration: durationFromMs(holdMs),
    destinationHoldDuration: durationFromMs(holdMs),
    connectors: [],
  });
}

async function startFakeQuoting(behaviour: () => QuoteBehaviour): Promise<RunningServer> {
  const answer = (fixed: 'source' | 'destination', amount: bigint, destinationAddress: string) => {
    const result = behaviour()({ fixed, amount, destinationAddress });
    if ('ilpCode' in result) {
      throw toGrpcError(
        new ServiceError(grpc.status.NOT_FOUND, 'DESTINATION_UNREACHABLE', result.message, {
          metadata: { ilp_code: result.ilpCode },
        }),
        'interclear.quoting.v1.QuotingService',
      );
    }
    return { quote: result };
  };
  const implementation: QuotingServiceServer = {
    quoteBySourceAmount: (call, callback) => {
      try {
        callback(null, answer('source', call.request.sourceAmount, call.request.destinationAddress));
      } catch (error) {
        callback(error as grpc.ServiceError);
      }
    },
    quoteByDestinationAmount: (call, callback) => {
      try {
        callback(null, answer('destination', call.request.destinationAmount, call.request.destinationAddress));
      } catch (error) {
        callback(error as grpc.ServiceError);
      }
    },
  };
  return startServer({ address: '127.0.0.1:0', services: [{ definition: QuotingServiceService, implementation }] });
}

/** The test network of two SPSP services. */
export interface SpspPair {
  ledger: TestLedger;
  spspA: RunningSpsp;
  spspB: RunningSpsp;
  secretB: Buffer;
  /** PaymentService of DFSP A, as its admin. */
  payments: PaymentClient;
  /** SpspService of DFSP B, as another DFSP. */
  receiverServer: SpspClient;
  /** What the stand-in connector answers from now on. */
  setQuote(behaviour: QuoteBehaviour): void;
  /** Restarts DFSP B's SPSP service on its database (after `whileDown` ran). */
  restartB(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export async function startSpspPair(): Promise<SpspPair> {
  const ledger = await startTestLedger({
    ilpPrefix: 'private.local.',
    currencyCode: 'USD',
    scale: 2,
    maxHoldMs: 20_000,
  });
  const admin = ledger.client('admin');
  const accounts: Array<[string, string]> = [
    ['alice', 'spsp-a'],
    ['bob', 'spsp-b'],
    ['carol', 'spsp-b'],
    ['dora', 'spsp-b'],
    ['erin', 'spsp-b'],
    ['frank', 'spsp-a'],
    ['connector', 'connector'],
  ];
  for (const [name, owner] of accounts) {
    await admin.createAccount({ name, owner, minimumBalanceUnlimited: false, disabled: false });
  }
  await admin.updateAccount({ name: 'dora', disabled: true });
  await admin.updateAccount({ name: 'frank', disabled: true });
  await admin.deposit({ depositId: newId(), account: 'alice', amount: 100_000n, externalReference: 'seed' });

  let behaviour: QuoteBehaviour = directQuote('bob');
  const quoting = await startFakeQuoting(() => behaviour);
  const databaseA = await createTestDatabase('spsp_a');
  const databaseB = await createTestDatabase('spsp_b');
  const secretA = randomBytes(32);
  const secretB = randomBytes(32);
  const common = {
    listen: '127.0.0.1:0',
    ledgerEndpoint: ledger.ledger.address,
    quotingEndpoint: quoting.address,
    paymentRequestExpiryMs: 30_000,
    maxPaymentRequestExpiryMs: 60_000,
    destinationHoldMs: 3_000,
  };
  const settingsB: SpspSettings = {
    ...common,
    name: 'spsp-b',
    dfsp: 'dfsp-b',
    principal: 'spsp-b',
    secret: secretB,
    receivers: [
      { name: 'bob', account: 'bob', displayName: 'Bob', minimumAmount: 1n, maximumAmount: null, disabled: false },
      { name: 'carol', account: 'carol', displayName: 'Carol', minimumAmount: 1n, maximumAmount: null, disabled: true },
      { name: 'dora', account: 'dora', displayName: 'Dora', minimumAmount: 1n, maximumAmount: null, disabled: false },
      { name: 'erin', account: 'erin', displayName: 'Erin', minimumAmount: 100n, maximumAmount: 500n, disabled: false },
    ],
    directory: [],
  };
  const timing = { overdueGraceMs: 500, pollIntervalMs: 200 };
  const startB = () =>
    startSpsp({
      settings: settingsB,
      databaseUrl: databaseB.url,
      insecure: true,
      logger: silentLogger,
      reconcileIntervalMs: 300,
      timing,
    });
  let spspB = await startB();
  // DFSP A's directory points at B's actual port, known once B listens.
  settingsB.listen = spspB.address;
  const spspA = await startSpsp({
    settings: {
      ...common,
      name: 'spsp-a',
      dfsp: 'dfsp-a',
      principal: 'spsp-a',
      secret: secretA,
      receivers: [],
      directory: [{ dfsp: 'dfsp-b', spspEndpoint: spspB.address, prefix: 'private.local.' }],
    },
    databaseUrl: databaseA.url,
    insecure: true,
    logger: silentLogger,
    reconcileIntervalMs: 300,
    timing,
  });
  const payments = createPaymentClient(spspA.address, { principal: 'admin' });
  const receiverServer = createSpspClient(spspB.address, { principal: 'spsp-a' });
  return {
    ledger,
    spspA,
    get spspB() {
      return spspB;
    },
    secretB,
    payments,
    receiverServer,
    setQuote(next) {
      behaviour = next;
    },
    async restartB(whileDown) {
      await spspB.stop();
      await whileDown?.();
      spspB = await startB();
    },
    async stop() {
      payments.close();
      receiverServer.close();
      await spspA.stop();
      await spspB.stop();
      await quoting.stop(100);
      await ledger.stop();
      await databaseA.drop().catch(() => undefined);
      await databaseB.drop().catch(() => undefined);
    },
  };
}

/** An SPSP store on a migrated database of its own; `close` ends it and drops the database. */
export async function openTestSpspStore(
  name: string,
  poolSize = 2,
): Promise<{ store: SpspStore; close(): Promise<void> }> {
  const database = await createTestDatabase(name);
  const orm = await openSpspOrm(database.url);
  await migrateSpspDatabase(orm);
  const pool = createPool(database.url, { size: poolSize });
  return {
    store: new SpspStore(orm, pool),
    async close() {
      await pool.end();
      await orm.close(true);
      await database.drop();
    },
  };
}
