/**
 * The connector's liquidity as quotes see it: its available balance on each ledger, read from
 * the ledger and reused for a short time. A quote's liquidity check is advisory — the ledger
 * refuses an outgoing transfer the connector cannot fund (INSUFFICIENT_FUNDS, T04) whatever the
 * quote said — so a balance read at most `maxAgeMs` ago serves, and quotes stop costing a ledger
 * call each: quotes asking while a read is in flight share it, later ones reuse its answer while
 * it is fresh.
 */
import type { Liquidity } from './quoting';

/** Options of {@link createLiquidityReader}. */
export interface LiquidityReaderOptions {
  /** Asks the ledger for the connector's available balance on it. */
  read(ledgerPrefix: string): Promise<Liquidity>;
  /** How long an answer is reused, counted from when its read started (0: never). */
  maxAgeMs: number;
  /** The clock, in milliseconds. */
  nowMs(): number;
}

/**
 * Returns the connector's liquidity on a ledger as of at most `maxAgeMs` ago. An answer that is
 * not `ok` (the ledger did not answer) is never reused: the next quote asks again.
 */
export function createLiquidityReader(options: LiquidityReaderOptions): (ledgerPrefix: string) => Promise<Liquidity> {
  const reads = new Map<string, { startedAtMs: number; answer: Promise<Liquidity> }>();
  return (ledgerPrefix) => {
    const nowMs = options.nowMs();
    const last = reads.get(ledgerPrefix);
    if (last && nowMs - last.startedAtMs < options.maxAgeMs) return last.answer;
    const read = { startedAtMs: nowMs, answer: options.read(ledgerPrefix) };
    reads.set(ledgerPrefix, read);
    const forget = () => {
      if (reads.get(ledgerPrefix) === read) reads.delete(ledgerPrefix);
    };
    read.answer.then((liquidity) => liquidity.kind === 'ok' || forget(), forget);
    return read.answer;
  };
}
