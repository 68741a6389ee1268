/**
 * The outgoing transfer's id, derived from the incoming transfer so that handling the same
 * notification twice (a replay, a restart) prepares the same transfer and the ledger's
 * idempotency returns the stored one instead of creating a second.
 */
import { derivedUuid } from '../platform/ids';

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
  return derivedUuid('interclear.connector.outgoing-transfer-id', [
    connectorName,
    incomingLedgerPrefix,
    incomingTransferId.toLowerCase(),
  ]);
}
