import { Pacer } from './pacing';

test('claims are due at n / rate, and none at or after the deadline', () => {
  const pacer = new Pacer(1_000, 2_000, 4);
  const dues: Array<number | null> = [];
  for (let claim = 0; claim < 6; claim += 1) dues.push(pacer.claim());
  expect(dues).toEqual([1_000, 1_250, 1_500, 1_750, null, null]);
});

test('a claim of several items moves the schedule by all of them', () => {
  const pacer = new Pacer(0, 1_000, 200);
  expect([pacer.claim(50), pacer.claim(50), pacer.claim(50), pacer.claim(50), pacer.claim(50)]).toEqual([
    0,
    250,
    500,
    750,
    null,
  ]);
});

test('next waits until the claim is due, and says how late it starts', async () => {
  const startedAt = Date.now();
  const pacer = new Pacer(startedAt, startedAt + 60_000, 20);
  expect(await pacer.next()).toEqual(expect.any(Number));
  expect(await pacer.next()).toEqual(expect.any(Number));
  expect(Date.now() - startedAt).toBeGreaterThanOrEqual(49);
  // Claimed 30 ms after it fell due: it starts at once, 30 ms or more late.
  await new Promise((resolve) => setTimeout(resolve, 80));
  const late = await pacer.next();
  expect(late).toBeGreaterThanOrEqual(29);
});

test('next ends with the run', async () => {
  const now = Date.now();
  expect(await new Pacer(now - 10, now - 5, 20).next()).toBeNull();
  expect(await new Pacer(now, now, 20).next()).toBeNull();
});

test('a latency start moved back by the lateness', () => {
  const before = process.hrtime.bigint();
  const begun = Pacer.startedAt(30);
  expect(before - begun).toBeGreaterThanOrEqual(29_000_000n);
  expect(before - begun).toBeLessThan(1_000_000_000n);
});
