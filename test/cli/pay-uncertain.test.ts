/**
 * `interclear pay` when its Pay call was cut (the SPSP service restarted after sending the
 * transfer): the payment may have been made, and the same command again would make a second one
 * under a new id — so the failure says how to see it and to repeat with its id. And a repeat of
 * a FAILED payment, which Pay runs again, says so instead of "nothing was sent again".
 */
import * as grpc from '@grpc/grpc-js';
import { ServiceError, toGrpcError } from '../../src/platform/errors';
import {
  Payment,
  PaymentServiceService,
  PaymentState,
  type PaymentServiceServer,
} from '../../src/gen/interclear/spsp/v1/spsp';
import { runInterclear, startStandInServer, type StandInServer } from './support';

const unimplemented = () => {
  throw new Error('not used');
};

let server: StandInServer;
const paid: string[] = [];
let mode: 'cut' | 'refused' | 'retry-of-failed' = 'cut';

beforeAll(async () => {
  const payments: PaymentServiceServer = {
    quote: unimplemented,
    getIncomingPayment: unimplemented,
    listIncomingPayments: unimplemented,
    getPayment: (call, callback) =>
      callback(null, {
        payment: Payment.fromPartial({
          id: call.request.paymentId,
          state: PaymentState.PAYMENT_STATE_FAILED,
          createTime: new Date(Date.now() - 3_600_000),
        }),
      }),
    pay: (call, callback) => {
      // The payment is recorded and its transfer sent (money held, soon executed)…
      paid.push(call.request.paymentId);
      if (mode === 'refused') {
        callback(
          toGrpcError(
            new ServiceError(grpc.status.FAILED_PRECONDITION, 'INSUFFICIENT_FUNDS', 'alice cannot pay 5.01 USD'),
            'interclear.spsp.v1.PaymentService',
          ),
        );
        return;
      }
      if (mode === 'cut') {
        // …then the service restarts before it answers: the call fails UNAVAILABLE.
        const error = Object.assign(new Error('Connection dropped'), {
          code: grpc.status.UNAVAILABLE,
          details: 'Connection dropped',
          metadata: new grpc.Metadata(),
        });
        callback(error as grpc.ServiceError);
        return;
      }
      // A new attempt of the earlier FAILED payment, which executes: money moved now.
      callback(null, {
        payment: Payment.fromPartial({ id: call.request.paymentId, state: PaymentState.PAYMENT_STATE_EXECUTED }),
      });
    },
    watchPayment: (call) => call.end(),
  };
  server = await startStandInServer([{ definition: PaymentServiceService, implementation: payments }]);
});

afterAll(() => server.stop());

const args = () => [
  'pay',
  '--spsp',
  server.address,
  '--sender-account',
  'alice',
  '--to',
  'bob@dfsp-b',
  '--destination-amount',
  '500',
];

test('a cut Pay says the payment may have been made, how to see it, and to repeat with its id', async () => {
  mode = 'cut';
  paid.length = 0;
  const first = await runInterclear(args());
  expect(first.code).toBe(1);
  expect(paid).toHaveLength(1);
  const [id] = paid;
  expect(first.stderr).toContain(`cannot reach the SPSP service at ${server.address}`);
  expect(first.stderr).toContain(
    `payment ${id} may have been made: see it with \`npx interclear spsp payment ${id} --spsp ${server.address}\`, ` +
      `or run this command again with --id ${id}`,
  );
});

test('a definite refusal does not say the payment may have been made', async () => {
  mode = 'refused';
  const refused = await runInterclear(args());
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain('INSUFFICIENT_FUNDS');
  expect(refused.stderr).not.toContain('may have been made');
});

test('a repeat of a FAILED payment, which Pay runs again, says it was a new attempt', async () => {
  mode = 'retry-of-failed';
  const { stdout, code } = await runInterclear([...args(), '--id', '3fa85f64-5717-4562-b3fc-2c963f66afa6']);
  expect(code).toBe(0);
  expect(stdout).toContain('had failed earlier');
  expect(stdout).toContain('this was a new attempt');
  expect(stdout).not.toContain('nothing was sent again');
});
