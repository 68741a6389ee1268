/** Wake-ups for payment waiters: what they carry, and that nothing outlives them. */
import type { Payment } from './model';
import { PaymentNotifier } from './notifier';

const payment = (state: Payment['state']) => ({ id: 'p-1', state }) as Payment;

test('a wake-up hands over a final payment, and nothing for a state that can still change', async () => {
  const notifier = new PaymentNotifier();
  const first = notifier.wait('p-1', 60_000);
  notifier.notify('p-1', payment('prepared'));
  expect(await first).toBeUndefined();
  const second = notifier.wait('p-1', 60_000);
  const alsoWaiting = notifier.wait('p-1', 60_000);
  notifier.notify('p-1', payment('executed'));
  expect(await second).toEqual(payment('executed'));
  expect(await alsoWaiting).toEqual(payment('executed'));
  expect(notifier.size).toBe(0);
});

test('a failed payment is never handed over: a repeated Pay may retry it', async () => {
  const notifier = new PaymentNotifier();
  const waiting = notifier.wait('p-1', 60_000);
  notifier.notify('p-1', payment('failed'));
  expect(await waiting).toBeUndefined();
  for (const state of ['rejected', 'expired'] as const) {
    const settled = notifier.wait('p-1', 60_000);
    notifier.notify('p-1', payment(state));
    expect(await settled).toEqual(payment(state));
  }
});

test('a timeout or an abort wakes with nothing and leaves no waiter behind', async () => {
  const notifier = new PaymentNotifier();
  expect(await notifier.wait('p-1', 1)).toBeUndefined();
  const controller = new AbortController();
  const aborted = notifier.wait('p-1', 60_000, controller.signal);
  controller.abort();
  expect(await aborted).toBeUndefined();
  expect(notifier.size).toBe(0);
  // A wake-up for another payment reaches nobody here.
  const other = notifier.wait('p-2', 1);
  notifier.notify('p-1', payment('executed'));
  expect(await other).toBeUndefined();
});
