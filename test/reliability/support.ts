/**
 * Tools of the reliability tests: calls with raw request bytes (whatever a hostile or broken
 * client may send), a protobuf wire writer to build them, every RPC of the network in one table,
 * and a snapshot of the whole network's state to show that a refused request changed nothing.
 */
import * as grpc from '@grpc/grpc-js';
import type pg from 'pg';
import type { RunningNetwork } from '../../src/network/network';
import type { ClientIdentity } from '../../src/platform/client';
import { channelOptions, identityMetadata } from '../../src/platform/client';
import { createPool } from '../../src/platform/database';
import { decodeGrpcError } from '../../src/platform/errors';

/** What a call came back with. */
export interface CallOutcome {
  code: grpc.status;
  /** ErrorInfo reason and domain, when the service sent them. */
  reason?: string;
  domain?: string;
  message: string;
}

const passThrough = (value: Buffer) => value;

/** Calls `path` with `request` as its raw protobuf bytes. */
export function rawUnary(
  address: string,
  identity: ClientIdentity,
  path: string,
  request: Buffer,
  timeoutMs = 10_000,
): Promise<CallOutcome> {
  const client = new grpc.Client(address, identity.credentials ?? grpc.credentials.createInsecure(), {
    ...channelOptions,
    // Big enough to send what the server must refuse.
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
  return new Promise<CallOutcome>((resolve) => {
    client.makeUnaryRequest(
      path,
      passThrough,
      passThrough,
      request,
      identityMetadata(identity),
      { deadline: Date.now() + timeoutMs },
      (error) => resolve(error ? outcomeOf(error) : { code: grpc.status.OK, message: 'OK' }),
    );
  }).finally(() => client.close());
}

/**
 * Opens the server stream `path` with `request`; resolves with OK at its first message (then
 * cancels it), or with the status it ends with.
 */
export function rawServerStream(
  address: string,
  identity: ClientIdentity,
  path: string,
  request: Buffer,
  timeoutMs = 10_000,
): Promise<CallOutcome> {
  const client = new grpc.Client(address, identity.credentials ?? grpc.credentials.createInsecure(), channelOptions);
  return new Promise<CallOutcome>((resolve) => {
    const stream = client.makeServerStreamRequest(path, passThrough, passThrough, request, identityMetadata(identity), {
      deadline: Date.now() + timeoutMs,
    });
    stream.on('data', () => {
      resolve({ code: grpc.status.OK, message: 'OK' });
      stream.cancel();
    });
    stream.on('error', (error: grpc.ServiceError) => resolve(outcomeOf(error)));
    stream.on('status', (status: grpc.StatusObject) => resolve({ code: status.code, message: status.details }));
  }).finally(() => client.close());
}

export function outcomeOf(error: grpc.ServiceError): CallOutcome {
  const decoded = decodeGrpcError(error);
  return { code: decoded.code, reason: decoded.reason, domain: decoded.domain, message: decoded.message };
}

/** Protobuf wire format, enough to write any message, valid or not. */
export const wire = {
  varint(value: bigint): Buffer {
    const bytes: number[] = [];
    let rest = BigInt.asUintN(64, value);
    do {
      const low = Number(rest & 0x7fn);
      rest >>= 7n;
      bytes.push(rest > 0n ? low | 0x80 : low);
    } while (rest > 0n);
    return Buffer.from(bytes);
  },
  tag(field: number, wireType: number): Buffer {
    return wire.varint(BigInt((field << 3) | wireType));
  },
  /** A varint field (wire type 0): integers, booleans, enums. */
  integer(field: number, value: bigint): Buffer {
    return Buffer.concat([wire.tag(field, 0), wire.varint(value)]);
  },
  /** A length-delimited field (wire type 2): strings, bytes, messages. */
  bytes(field: number, value: Buffer | string): Buffer {
    const payload = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    return Buffer.concat([wire.tag(field, 2), wire.varint(BigInt(payload.length)), payload]);
  },
  /** A google.protobuf.Timestamp or Duration field: seconds and nanos as given, however absurd. */
  time(field: number, seconds: bigint, nanos: number): Buffer {
    return wire.bytes(field, Buffer.concat([wire.integer(1, seconds), wire.integer(2, BigInt(nanos))]));
  },
};

/** One RPC of the network: where it is served and who calls it. */
export interface Rpc {
  path: string;
  /** The service that serves it, by kind. */
  served: 'ledger' | 'connector' | 'spsp';
  streaming: boolean;
  /** Who calls it: the one who gets furthest past authorization into the request's checks. */
  caller: 'admin' | 'dfsp';
}

const ledgerMethods = [
  'GetLedgerInfo',
  'CreateAccount',
  'GetAccount',
  'ListAccounts',
  'UpdateAccount',
  'PrepareTransfer',
  'FulfillTransfer',
  'RejectTransfer',
  'PrepareTransfers',
  'FulfillTransfers',
  'RejectTransfers',
  'GetTransfer',
  'GetFulfillment',
  'ListTransfers',
  'SendMessage',
  'Deposit',
  'Withdraw',
];

/** Every RPC of LedgerService, QuotingService, ConnectorService, SpspService and PaymentService. */
export const everyRpc: Rpc[] = [
  ...ledgerMethods.map((method): Rpc => ({
    path: `/interclear.ledger.v1.LedgerService/${method}`,
    served: 'ledger',
    streaming: false,
    caller: 'admin',
  })),
  { path: '/interclear.ledger.v1.LedgerService/Subscribe', served: 'ledger', streaming: true, caller: 'admin' },
  ...['QuoteBySourceAmount', 'QuoteByDestinationAmount'].map((method): Rpc => ({
    path: `/interclear.quoting.v1.QuotingService/${method}`,
    served: 'connector',
    streaming: false,
    caller: 'dfsp',
  })),
  ...['GetStatus', 'ListRoutes', 'ListRates'].map((method): Rpc => ({
    path: `/interclear.connector.v1.ConnectorService/${method}`,
    served: 'connector',
    streaming: false,
    caller: 'admin',
  })),
  ...['Query', 'SetupPayment'].map((method): Rpc => ({
    path: `/interclear.spsp.v1.SpspService/${method}`,
    served: 'spsp',
    streaming: false,
    caller: 'dfsp',
  })),
  ...['Quote', 'Pay', 'GetPayment'].map((method): Rpc => ({
    path: `/interclear.spsp.v1.PaymentService/${method}`,
    served: 'spsp',
    streaming: false,
    caller: 'admin',
  })),
  { path: '/interclear.spsp.v1.PaymentService/WatchPayment', served: 'spsp', streaming: true, caller: 'admin' },
];

/** Counts and sums over every database of the network: equal snapshots, nothing changed. */
export class NetworkSnapshot {
  private readonly pools = new Map<string, pg.Pool>();

  constructor(private readonly network: RunningNetwork) {}

  async take(): Promise<Record<string, unknown>> {
    const snapshot: Record<string, unknown> = {};
    for (const service of this.network.plan.services) {
      let pool = this.pools.get(service.name);
      if (!pool) {
        pool = createPool(this.network.databaseUrl(service.name), { size: 1 });
        this.pools.set(service.name, pool);
      }
      const sql =
        service.kind === 'ledger'
          ? `select (select count(*) from transfers) as transfers, (select count(*) from events) as events,
                    (select count(*) from movements) as movements, (select count(*) from messages) as messages,
                    (select count(*) from accounts) as accounts,
                    (select coalesce(sum(balance), 0) from accounts) as balances,
                    (select coalesce(sum(held_amount), 0) from accounts) as held,
                    (select string_agg(name || ':' || owner || ':' || disabled || ':' || coalesce(minimum_balance::text, '-'), ',' order by name) from accounts) as settings`
          : service.kind === 'connector'
            ? 'select (select count(*) from connector_payments) as payments'
            : `select (select count(*) from spsp_payments) as payments,
                      (select count(*) from spsp_incoming_payments) as incoming`;
      snapshot[service.name] = (await pool.query(sql)).rows[0];
    }
    return snapshot;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.end()));
  }
}
