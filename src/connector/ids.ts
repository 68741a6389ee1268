/**
 * The outgoing transfer's id, derived from the incoming transfer so that handling the same
 * notification twice (a replay, a restart) prepares the same transfer and the ledger's
 * idempotency returns the stored one instead of creating a second.
 */
import { createHash } from 'node:crypto';

/**
 * A UUID (RFC 9562 version 8, "custom") from SHA-256 of the connector's name, the incoming
 * ledger's prefix and the incoming transfer's id. Different connectors forwarding the same
 * payment, or one connector seeing equal ids on two ledgers, get different ids.
 */
export function outgoingTransferId(
  connectorName: string,
  incomingLedgerPrefix: string,
  incomingTransferId: string,
): string {
  const digest = createHash('sha256')
    .update('interclear.connector.outgoing-transfer-id\u0000')
    .update(`${connectorName}\u0000${incomingLedgerPrefix}\u0000${incomingTransferId.toLowerCase()}`)
    .digest();
  const bytes = Buffer.from(digest.subarray(0, 16));
  bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
