/**
 * A seeded pseudo-random generator, so that a chaos run's fault schedule is a function of its
 * seed alone: a failing seed, run again, injects the same faults in the same order at the same
 * planned times. Not for anything secret (Math.random is no better, crypto is not reproducible).
 */

/** Draws from one seeded sequence. */
export interface Random {
  /** A number in [0, 1). */
  next(): number;
  /** An integer in [minimum, maximum], both included. */
  integer(minimum: number, maximum: number): number;
  /** One element of a non-empty list. */
  pick<Item>(items: readonly Item[]): Item;
  /** A shuffled copy of `items` (Fisher–Yates). */
  shuffle<Item>(items: readonly Item[]): Item[];
}

/** The largest seed accepted: seeds are unsigned 32-bit integers. */
export const maximumSeed = 0xffff_ffff;

/**
 * A generator for `seed` (an integer from 0 to 2^32 − 1). The algorithm is mulberry32: 32 bits
 * of state, full period, good enough statistics for picking faults, and short enough to read.
 */
export function createRandom(seed: number): Random {
  if (!Number.isInteger(seed) || seed < 0 || seed > maximumSeed) {
    throw new RangeError(`seed must be an integer from 0 to ${maximumSeed}, got ${seed}`);
  }
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 2 ** 32;
  };
  const integer = (minimum: number, maximum: number): number => {
    if (!Number.isInteger(minimum) || !Number.isInteger(maximum) || maximum < minimum) {
      throw new RangeError(`invalid integer range [${minimum}, ${maximum}]`);
    }
    return minimum + Math.floor(next() * (maximum - minimum + 1));
  };
  return {
    next,
    integer,
    pick<Item>(items: readonly Item[]): Item {
      if (items.length === 0) throw new RangeError('cannot pick from an empty list');
      return items[integer(0, items.length - 1)];
    },
    shuffle<Item>(items: readonly Item[]): Item[] {
      const shuffled = [...items];
      for (let index = shuffled.length - 1; index > 0; index -= 1) {
        const other = integer(0, index);
        [shuffled[index], shuffled[other]] = [shuffled[other], shuffled[index]];
      }
      return shuffled;
    },
  };
}
