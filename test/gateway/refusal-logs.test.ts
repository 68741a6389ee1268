/**
 * Calls refused for want of a client certificate (or, in insecure mode, of a principal) can be
 * made by anyone who reaches the port: they are logged one by one only up to a number per
 * window, then counted, and the count is logged once — the log cannot be flooded through them.
 */
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { LedgerServiceService, type LedgerServiceServer } from '../../src/gen/interclear/ledger/v1/ledger';
import { createGatewayInterceptor, unauthenticatedLinesPerWindow } from '../../src/platform/gateway';
import { createPrincipalResolver } from '../../src/platform/principal';
import { startServer, type RunningServer } from '../../src/platform/server';

const windowMs = 400;
const lines: Array<Record<string, unknown>> = [];
let server: RunningServer;
let client: grpc.Client;

beforeAll(async () => {
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    }),
  );
  server = await startServer({
    address: '127.0.0.1:0',
    services: [{ definition: LedgerServiceService, implementation: {} as LedgerServiceServer }],
    interceptors: [
      createGatewayInterceptor({
        resolvePrincipal: createPrincipalResolver({ insecure: true, admins: [] }),
        logger,
        unauthenticatedLogWindowMs: windowMs,
      }),
    ],
  });
  client = new grpc.Client(server.address, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client.close();
  await server.stop(0);
});

/** A GetLedgerInfo without a principal: refused UNAUTHENTICATED. */
function anonymousCall(): Promise<grpc.status | undefined> {
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      '/interclear.ledger.v1.LedgerService/GetLedgerInfo',
      (value: Buffer) => value,
      (value: Buffer) => value,
      Buffer.alloc(0),
      new grpc.Metadata(),
      (error) => resolve(error?.code),
    ),
  );
}

const refusedLines = () => lines.filter((line) => line.msg === 'rpc refused').length;

test('a flood of unauthenticated calls writes a bounded number of lines, then one line with their count', async () => {
  const codes = await Promise.all(Array.from({ length: 50 }, anonymousCall));
  expect(new Set(codes)).toEqual(new Set([grpc.status.UNAUTHENTICATED]));
  expect(refusedLines()).toBe(unauthenticatedLinesPerWindow);
  await new Promise((resolve) => setTimeout(resolve, windowMs + 50));
  expect(await anonymousCall()).toBe(grpc.status.UNAUTHENTICATED);
  const summary = lines.find((line) => line.suppressed !== undefined);
  expect(summary).toMatchObject({
    suppressed: 50 - unauthenticatedLinesPerWindow,
    window_ms: windowMs,
    msg: `${50 - unauthenticatedLinesPerWindow} more calls were refused UNAUTHENTICATED without a line each`,
  });
  expect(refusedLines()).toBe(unauthenticatedLinesPerWindow + 1);
});
