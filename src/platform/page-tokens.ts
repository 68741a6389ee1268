/**
 * Page tokens: where the next page of a list starts, as opaque text (the position, base64url).
 * A token is checked on the way in, so that no forged one reaches the database as something it
 * cannot parse.
 */
import { isUuid } from './ids';

/** The token of a position. */
export function encodePageToken(position: string): string {
  return Buffer.from(position, 'utf8').toString('base64url');
}

/**
 * The position `token` carries, when {@link encodePageToken} made it and `parsePosition` accepts
 * what it holds; undefined otherwise.
 */
export function decodePageToken<Position>(
  token: string,
  parsePosition: (decoded: string) => Position | undefined,
): Position | undefined {
  const decoded = Buffer.from(token, 'base64url').toString('utf8');
  return decoded !== '' && encodePageToken(decoded) === token ? parsePosition(decoded) : undefined;
}

/** A position in a list ordered by time, then id: "<time as toISOString writes it>|<uuid>". */
export function timeAndIdPosition(time: Date, id: string): string {
  return `${time.toISOString()}|${id}`;
}

/** The time and id of a {@link timeAndIdPosition}, or undefined for anything else. */
export function parseTimeAndId(decoded: string): { time: Date; id: string } | undefined {
  const [text, id, ...rest] = decoded.split('|');
  if (rest.length > 0 || !id || !isUuid(id)) return undefined;
  const time = new Date(text);
  if (Number.isNaN(time.getTime()) || time.toISOString() !== text) return undefined;
  return { time, id };
}
