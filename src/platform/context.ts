/**
 * What an RPC's own code and its log lines need to know about the call in progress: the method
 * and, once authenticated, the principal. Kept in AsyncLocalStorage so that every log line of a
 * request carries them without passing them around.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** The call in progress. */
export interface RequestContext {
  /** Full method path, e.g. /interclear.ledger.v1.LedgerService/PrepareTransfer. */
  method: string;
  /** The authenticated principal, once known. */
  principal?: string;
  /** When the caller stops waiting (epoch milliseconds); absent: no deadline. */
  deadlineMs?: number | undefined;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

/**
 * Milliseconds left before the caller of the RPC in progress stops waiting (undefined: no RPC in
 * progress, or no deadline), so that calls made on its behalf can give up in time to answer.
 */
export function remainingCallTimeMs(nowMs = Date.now()): number | undefined {
  const deadlineMs = requestContext.getStore()?.deadlineMs;
  return deadlineMs === undefined ? undefined : deadlineMs - nowMs;
}
