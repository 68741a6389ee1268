import {
  ILP_ADDRESS_LENGTH_MAX,
  ILP_ADDRESS_SCHEMES,
  InvalidIlpAddressError,
  assertIlpAddress,
  isValidIlpAddress,
  isValidIlpPrefix,
  longestPrefixMatch,
} from './address';

// An address of exactly `length` characters: the scheme `g`, then one long segment.
function addressOfLength(length: number): string {
  return `g.${'a'.repeat(length - 2)}`;
}

describe('isValidIlpAddress', () => {
  test.each([
    'g.us.nexus.bob',
    'private.l1p.dfsp-a.alice',
    'example.alice',
    'peer.config',
    'self.route',
    'test.alice',
    'test1.alice',
    'test2.alice',
    'test3.alice',
    'g.AZaz09_~-',
    'g.a.b.c.d.e.f',
    addressOfLength(ILP_ADDRESS_LENGTH_MAX),
  ])('accepts %s', (address) => {
    expect(isValidIlpAddress(address)).toBe(true);
  });

  test.each([
    ['empty', ''],
    ['scheme only', 'g'],
    ['scheme and dot', 'g.'],
    ['trailing dot (a prefix)', 'g.alice.'],
    ['empty segment', 'g..alice'],
    ['leading dot', '.g.alice'],
    ['unknown scheme', 'test4.alice'],
    ['unknown scheme local', 'local.alice'],
    ['scheme in capitals', 'G.alice'],
    ['space', 'g.al ice'],
    ['slash', 'g.al/ice'],
    ['plus', 'g.al+ice'],
    ['non-ASCII letter', 'g.alicé'],
    ['newline at the end', 'g.alice\n'],
    ['one character too long', addressOfLength(ILP_ADDRESS_LENGTH_MAX + 1)],
  ])('refuses %s', (_case, address) => {
    expect(isValidIlpAddress(address)).toBe(false);
  });

  test.each([[42], [null], [undefined], [{}], [['g.alice']]])('refuses the non-string %j', (value) => {
    expect(isValidIlpAddress(value)).toBe(false);
  });

  test.each(ILP_ADDRESS_SCHEMES.map((scheme) => [scheme]))('accepts the scheme %s', (scheme) => {
    expect(isValidIlpAddress(`${scheme}.alice`)).toBe(true);
  });
});

describe('isValidIlpPrefix', () => {
  test.each([
    'g.',
    'g.dfsp-a.',
    'private.l1p.dfsp-a.',
    'test3.x.y.',
    `${addressOfLength(ILP_ADDRESS_LENGTH_MAX - 1)}.`,
  ])('accepts %s', (prefix) => {
    expect(isValidIlpPrefix(prefix)).toBe(true);
  });

  test.each([
    ['an address', 'g.dfsp-a'],
    ['a scheme without dot', 'g'],
    ['a lone dot', '.'],
    ['an empty segment', 'g..'],
    ['a double trailing dot', 'g.dfsp-a..'],
    ['an unknown scheme', 'h.dfsp-a.'],
    ['one character too long', `${addressOfLength(ILP_ADDRESS_LENGTH_MAX)}.`],
    ['a non-string', 7],
  ])('refuses %s', (_case, prefix) => {
    expect(isValidIlpPrefix(prefix)).toBe(false);
  });
});

describe('assertIlpAddress', () => {
  test('passes a valid address', () => {
    expect(() => assertIlpAddress('g.alice')).not.toThrow();
  });

  test('throws a typed error that keeps the rejected value', () => {
    const error = captureError(() => assertIlpAddress('g.'));
    expect(error).toBeInstanceOf(InvalidIlpAddressError);
    expect((error as InvalidIlpAddressError).address).toBe('g.');
    expect((error as Error).message).toBe('invalid ILP address: "g."');
  });

  test('shortens a huge value in the message', () => {
    const error = captureError(() => assertIlpAddress('x'.repeat(5000))) as Error;
    expect(error.message.length).toBeLessThan(120);
  });

  test('names the type of a non-string', () => {
    expect(() => assertIlpAddress(12)).toThrow('invalid ILP address: number');
  });
});

describe('longestPrefixMatch', () => {
  const routes = ['g.', 'g.dfsp-a.', 'g.dfsp-a.eu.', 'private.l1p.'];

  test.each([
    ['g.dfsp-a.eu.alice', 'g.dfsp-a.eu.'],
    ['g.dfsp-a.us.bob', 'g.dfsp-a.'],
    ['g.dfsp-b.carol', 'g.'],
    // A prefix matches whole segments only: dfsp-a. is not a prefix of dfsp-ab.
    ['g.dfsp-ab.dave', 'g.'],
    ['private.l1p.dfsp-a.erin', 'private.l1p.'],
    ['test.frank', undefined],
    ['g', undefined],
  ])('routes %s to %s', (address, expected) => {
    expect(longestPrefixMatch(address, routes)).toBe(expected);
  });

  test('does not depend on the order of the prefixes', () => {
    expect(longestPrefixMatch('g.dfsp-a.eu.alice', [...routes].reverse())).toBe('g.dfsp-a.eu.');
  });

  test('accepts any iterable, such as the keys of a routing table', () => {
    const table = new Map([
      ['g.', 'connector-default'],
      ['g.dfsp-b.', 'connector-b'],
    ]);
    expect(longestPrefixMatch('g.dfsp-b.bob', table.keys())).toBe('g.dfsp-b.');
  });

  test('finds nothing in an empty table', () => {
    expect(longestPrefixMatch('g.alice', [])).toBeUndefined();
  });
});

function captureError(action: () => void): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
