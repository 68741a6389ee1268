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

test('next waits until the claim is due and ends with the run', async () => {
  const startedAt = Date.now();
  const pacer = new Pacer(startedAt, startedAt + 120, 20);
  expect(await pacer.next()).toBe(true);
  expect(await pacer.next()).toBe(true);
  expect(Date.now() - startedAt).toBeGreaterThanOrEqual(49);
  expect(await pacer.next()).toBe(true);
  expect(Date.now() - startedAt).toBeGreaterThanOrEqual(99);
  expect(await pacer.next()).toBe(false);
});
