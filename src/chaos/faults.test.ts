import type { RunningNetwork } from '../network/network';
import { servicesByProcess } from './faults';

/** A network whose services run under `pids` (undefined: not running). */
function networkOf(pids: Record<string, number | undefined>): Pick<RunningNetwork, 'plan' | 'service'> {
  return {
    plan: { services: Object.keys(pids).map((name) => ({ name })) } as unknown as RunningNetwork['plan'],
    service: ((name: string) => ({ pid: pids[name] })) as unknown as RunningNetwork['service'],
  };
}

test('services sharing a process are one group, in plan order; each process of its own is a group', () => {
  expect(
    servicesByProcess(
      networkOf({
        'central-ledger': 10,
        'dfsp-a-ledger': 11,
        'dfsp-a-connector': 11,
        'dfsp-a-spsp': 11,
        'dfsp-b-ledger': 12,
        'dfsp-b-connector': 13,
        'dfsp-b-spsp': 14,
      }),
    ),
  ).toEqual([
    ['central-ledger'],
    ['dfsp-a-ledger', 'dfsp-a-connector', 'dfsp-a-spsp'],
    ['dfsp-b-ledger'],
    ['dfsp-b-connector'],
    ['dfsp-b-spsp'],
  ]);
});

test('services not running are each a group of their own, never merged with one another', () => {
  expect(servicesByProcess(networkOf({ a: undefined, b: undefined, c: 7 }))).toEqual([['a'], ['b'], ['c']]);
});
