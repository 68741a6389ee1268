import { createHash, randomBytes } from 'node:crypto';
import { TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import { conservation, newId, startTestLedger, type TestLedger } from '../support/ledger';

let ledger: TestLedger;
beforeAll(async () => {
  ledger = await startTestLedger();
});
afterAll(() => ledger.stop());

test('prepare, fulfil: money moves from alice to bob', async () => {
  const admin = ledger.client('admin');
  await admin.createAccount({ name: 'alice', owner: 'alice', minimumBalanceUnlimited: false, disabled: false });
  await admin.createAccount({ name: 'bob', owner: 'bob', minimumBalanceUnlimited: false, disabled: false });
  await admin.deposit({ depositId: newId(), account: 'alice', amount: 1000n, externalReference: 'wire-1' });
  const preimage = randomBytes(32);
  const condition = createHash('sha256').update(preimage).digest();
  const id = newId();
  const prepared = await ledger.client('alice').prepareTransfer({
    transferId: id,
    debitAccount: 'alice',
    creditAccount: 'bob',
    amount: 300n,
    executionCondition: condition,
    expiryTime: new Date(Date.now() + 10_000),
    ilpPacket: Buffer.alloc(0),
    memo: Buffer.alloc(0),
    traceParent: '',
  });
  expect(prepared.transfer?.state).toBe(TransferState.TRANSFER_STATE_PREPARED);
  const alice = await admin.getAccount({ name: 'alice' });
  expect(alice.account?.balance).toBe(700n);
  expect(alice.account?.heldAmount).toBe(300n);
  const executed = await ledger.client('bob').fulfillTransfer({ transferId: id, fulfillment: preimage });
  expect(executed.transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
  expect((await admin.getAccount({ name: 'bob' })).account?.balance).toBe(300n);
  const totals = await conservation(ledger.ledger);
  expect(totals.total).toBe(totals.netDeposits);
});
