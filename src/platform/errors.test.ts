import * as grpc from '@grpc/grpc-js';
import { decodeGrpcError, invalidArgument, toGrpcError } from './errors';

test('a validation error reads "field: why; field: why", and a violation of the whole request its reason alone', () => {
  const fields = invalidArgument([
    { field: 'amount', description: 'must be greater than 0' },
    { field: 'transfers[2].memo', description: 'must be at most 8192 bytes' },
  ]);
  expect(fields.message).toBe('amount: must be greater than 0; transfers[2].memo: must be at most 8192 bytes');
  const whole = toGrpcError(
    invalidArgument([{ field: '', description: 'not a valid request message: premature EOF' }]),
    'interclear.ledger.v1.LedgerService',
  );
  expect(whole.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(decodeGrpcError(whole)).toMatchObject({
    message: 'not a valid request message: premature EOF',
    reason: 'INVALID_ARGUMENT',
    fieldViolations: [{ field: '', description: 'not a valid request message: premature EOF' }],
  });
});
