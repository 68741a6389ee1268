import { createRandom } from './random';
import { describeFault, estimatedFaultMs, faultKinds, planFaults, type FaultTargets } from './schedule';

const targets: FaultTargets = {
  ledgers: ['central-ledger', 'dfsp-a-ledger', 'dfsp-b-ledger'],
  connectors: ['dfsp-a-connector', 'dfsp-b-connector'],
  spspServices: ['dfsp-a-spsp', 'dfsp-b-spsp'],
  streams: [
    { follower: 'dfsp-a-connector', ledger: 'central-ledger' },
    { follower: 'dfsp-b-spsp', ledger: 'dfsp-b-ledger' },
  ],
};

describe('the seeded generator', () => {
  test('the same seed draws the same sequence; another seed another one', () => {
    const draw = (seed: number) => {
      const random = createRandom(seed);
      return Array.from({ length: 8 }, () => random.next());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });

  test('integers stay in their range and reach both ends', () => {
    const random = createRandom(7);
    const seen = new Set<number>();
    for (let draw = 0; draw < 1_000; draw += 1) seen.add(random.integer(3, 6));
    expect([...seen].sort()).toEqual([3, 4, 5, 6]);
  });

  test('a shuffle is a permutation', () => {
    const items = ['a', 'b', 'c', 'd', 'e'];
    expect(createRandom(1).shuffle(items).sort()).toEqual(items);
  });

  test.each([-1, 1.5, 2 ** 32])('seed %p is refused', (seed) => {
    expect(() => createRandom(seed)).toThrow(RangeError);
  });
});

describe('the fault schedule', () => {
  const options = { seed: 1234, durationMs: 60_000, targets, longestHoldMs: 3_000 };

  test('a seed reproduces its schedule exactly; another seed gives another', () => {
    expect(planFaults(options)).toEqual(planFaults(options));
    expect(planFaults({ ...options, seed: 1235 })).not.toEqual(planFaults(options));
  });

  test('a run long enough for one of each injects every kind, and every fault fits in the run', () => {
    const faults = planFaults(options);
    expect(new Set(faults.map((fault) => fault.kind))).toEqual(new Set(faultKinds));
    for (const fault of faults) expect(fault.atMs + estimatedFaultMs(fault)).toBeLessThanOrEqual(options.durationMs);
  });

  test('faults do not overlap: each starts after the previous one is planned to be healed', () => {
    const faults = planFaults(options);
    for (let index = 1; index < faults.length; index += 1) {
      expect(faults[index].atMs).toBeGreaterThanOrEqual(faults[index - 1].atMs + estimatedFaultMs(faults[index - 1]));
    }
  });

  test('a pause outlasts the longest hold, so held transfers expire during it', () => {
    const pauses = planFaults(options).filter((fault) => fault.kind === 'pause');
    expect(pauses.length).toBeGreaterThan(0);
    for (const pause of pauses) expect(pause.kind === 'pause' && pause.pauseMs).toBeGreaterThan(3_000);
  });

  test('targets are drawn from the network; only the chosen kinds are planned', () => {
    const faults = planFaults({ ...options, kinds: ['kill-connector', 'drop-stream'] });
    expect(faults.length).toBeGreaterThan(2);
    for (const fault of faults) {
      if (fault.kind === 'kill-connector') expect(targets.connectors).toContain(fault.service);
      else if (fault.kind === 'drop-stream')
        expect(targets.streams).toContainEqual({ follower: fault.follower, ledger: fault.ledger });
      else throw new Error(`unexpected ${fault.kind}`);
    }
  });

  test('a run too short for any fault plans none', () => {
    expect(planFaults({ ...options, durationMs: 1_000 })).toEqual([]);
  });

  test('each fault has a description for the report', () => {
    for (const fault of planFaults(options)) expect(describeFault(fault)).toMatch(new RegExp(`^${fault.kind}`));
  });
});
