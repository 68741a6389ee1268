import { outgoingExpiry, quoteSourceHold } from './expiry';

const now = new Date('2030-01-01T00:00:00.000Z');
const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);

describe('the outgoing expiry: min(incoming − window, now + max hold), at least a window from now', () => {
  test.each<[string, number, number, number, ReturnType<typeof outgoingExpiry>]>([
    // case, incoming expiry (ms from now), message window, max hold, outcome
    ['one window earlier than the incoming', 5000, 1000, 10_000, { kind: 'ok', expiresAt: at(4000) }],
    ['capped by the max hold', 30_000, 1000, 10_000, { kind: 'ok', expiresAt: at(10_000) }],
    ['exactly a window left is enough', 2000, 1000, 10_000, { kind: 'ok', expiresAt: at(1000) }],
    ['less than a window left', 1999, 1000, 10_000, { kind: 'insufficient-timeout', remainingMs: 999 }],
    [
      'less than a window before the incoming expiry',
      500,
      1000,
      10_000,
      { kind: 'insufficient-timeout', remainingMs: 0 },
    ],
    ['the incoming transfer has expired', 0, 1000, 10_000, { kind: 'expired' }],
    ['long expired', -5000, 1000, 10_000, { kind: 'expired' }],
    ['short windows', 1200, 500, 10_000, { kind: 'ok', expiresAt: at(700) }],
  ])('%s', (_case, incomingMs, messageWindowMs, maxHoldMs, expected) => {
    expect(outgoingExpiry({ incomingExpiresAt: at(incomingMs), now, messageWindowMs, maxHoldMs })).toEqual(expected);
  });
});

describe("a quote's source hold: the next hold plus a window, within the max hold", () => {
  test.each<[number, number, number, ReturnType<typeof quoteSourceHold>]>([
    [5000, 1000, 10_000, { kind: 'ok', holdMs: 6000 }],
    [9000, 1000, 10_000, { kind: 'ok', holdMs: 10_000 }],
    [9001, 1000, 10_000, { kind: 'too-long', holdMs: 10_001 }],
  ])('next hold %i ms, window %i ms, max %i ms', (nextHoldMs, messageWindowMs, maxHoldMs, expected) => {
    expect(quoteSourceHold(nextHoldMs, { messageWindowMs, maxHoldMs })).toEqual(expected);
  });
});
