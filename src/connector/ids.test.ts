import { outgoingTransferId } from './ids';

const incomingId = '3fa85f64-5717-4562-b3fc-2c963f66afa6';

test('the outgoing id is a version 8 UUID, the same for the same incoming transfer', () => {
  const id = outgoingTransferId('connector-a', 'private.dfsp-a.', incomingId);
  expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(outgoingTransferId('connector-a', 'private.dfsp-a.', incomingId)).toBe(id);
  expect(outgoingTransferId('connector-a', 'private.dfsp-a.', incomingId.toUpperCase())).toBe(id);
});

test.each([
  ['another connector', 'connector-b', 'private.dfsp-a.', incomingId],
  ['another incoming ledger', 'connector-a', 'private.central.', incomingId],
  ['another incoming transfer', 'connector-a', 'private.dfsp-a.', '3fa85f64-5717-4562-b3fc-2c963f66afa7'],
])('%s gives another id', (_case, name, ledger, transfer) => {
  expect(outgoingTransferId(name, ledger, transfer)).not.toBe(
    outgoingTransferId('connector-a', 'private.dfsp-a.', incomingId),
  );
});

test('the id never changes between versions: payments stored before an upgrade are keyed by it', () => {
  expect(outgoingTransferId('connector-a', 'private.dfsp-a.', incomingId)).toBe('0d50b1e8-bad5-8561-9ea4-40c7e62b34a8');
});
