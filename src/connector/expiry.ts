/**
 * Expiry arithmetic. Each hop keeps one message window between its outgoing transfer's expiry
 * and its incoming transfer's expiry: the time a fulfillment needs to travel back a hop. A
 * connector also never holds an outgoing transfer longer than its maximum hold time.
 */

/** How long the outgoing transfer may be held, or why the payment cannot be forwarded. */
export type OutgoingExpiry =
  | { kind: 'ok'; expiresAt: Date }
  /** Less than a message window would remain for the next hop: ILP error R02. */
  | { kind: 'insufficient-timeout'; remainingMs: number }
  /** The incoming transfer has already expired: nothing to do. */
  | { kind: 'expired' };

/**
 * The outgoing transfer's expiry: min(incoming expiry − message window, now + max hold), refused
 * when less than a message window would remain from now.
 */
export function outgoingExpiry(input: {
  incomingExpiresAt: Date;
  now: Date;
  messageWindowMs: number;
  maxHoldMs: number;
}): OutgoingExpiry {
  const now = input.now.getTime();
  const incoming = input.incomingExpiresAt.getTime();
  if (incoming <= now) return { kind: 'expired' };
  const expiresAt = Math.min(incoming - input.messageWindowMs, now + input.maxHoldMs);
  const remainingMs = expiresAt - now;
  if (remainingMs < input.messageWindowMs)
    return { kind: 'insufficient-timeout', remainingMs: Math.max(remainingMs, 0) };
  return { kind: 'ok', expiresAt: new Date(expiresAt) };
}

/**
 * A quote's hold on this hop's source side: the next hold plus a message window, refused (R02)
 * above the maximum hold time.
 */
export function quoteSourceHold(
  nextHoldMs: number,
  settings: { messageWindowMs: number; maxHoldMs: number },
): { kind: 'ok'; holdMs: number } | { kind: 'too-long'; holdMs: number } {
  const holdMs = nextHoldMs + settings.messageWindowMs;
  return holdMs > settings.maxHoldMs ? { kind: 'too-long', holdMs } : { kind: 'ok', holdMs };
}
