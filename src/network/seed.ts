/**
 * Seeds the network's ledgers: creates the planned accounts and funds them once. Idempotent, so
 * a network restarted on the same data finds its accounts and balances as it left them: account
 * creation is idempotent by name, and each seed deposit has an id derived from the ledger and
 * account, so running it again returns the recorded deposit instead of adding money.
 */
import { createHash } from 'node:crypto';
import { createLedgerClient, type LedgerClient } from '../ledger/client';
import type { ClientIdentity } from '../platform/client';
import type { PlannedLedger } from './topology';

/** A UUID determined by `text` (SHA-256 based, shaped as a version 5 UUID). */
export function stableUuid(text: string): string {
  const bytes = createHash('sha256').update(text).digest().subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x50;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function seedLedger(client: LedgerClient, ledger: PlannedLedger): Promise<void> {
  for (const account of ledger.accounts) {
    await client.createAccount({
      name: account.name,
      owner: account.owner,
      minimumBalanceUnlimited: false,
      disabled: false,
    });
    if (account.deposit > 0n) {
      await client.deposit({
        depositId: stableUuid(`interclear network seed ${ledger.prefix}${account.name}`),
        account: account.name,
        amount: account.deposit,
        externalReference: 'network seed: initial funding',
      });
    }
  }
}

/** Creates and funds every planned account, as `identity` (an administrator). */
export async function seedLedgers(ledgers: PlannedLedger[], identity: ClientIdentity): Promise<void> {
  await Promise.all(
    ledgers.map(async (ledger) => {
      const client = createLedgerClient(ledger.address, identity);
      try {
        await seedLedger(client, ledger);
      } finally {
        client.close();
      }
    }),
  );
}
