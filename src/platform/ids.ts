/**
 * Ids derived from what they identify, so that doing the same thing twice (a replayed
 * notification, a repeated command) names the same ledger operation, and the ledger's
 * idempotency returns the stored one instead of making a second.
 */
import { createHash } from 'node:crypto';

/**
 * A UUID (RFC 9562 version 8, "custom") from SHA-256 of `domain` and `parts`, separated by NUL
 * bytes. Different domains give different ids for the same parts.
 */
export function derivedUuid(domain: string, parts: string[]): string {
  const digest = createHash('sha256').update(`${domain}\u0000`).update(parts.join('\u0000')).digest();
  const bytes = Buffer.from(digest.subarray(0, 16));
  bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `text` is a UUID in its usual form (any version, either case). */
export function isUuid(text: string): boolean {
  return uuidPattern.test(text);
}
