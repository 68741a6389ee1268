import {
  ILP_ERROR_NAMES,
  IlpError,
  InvalidAmountError,
  InvalidPacketError,
  ilpErrorClass,
  ilpErrorName,
  isIlpErrorCode,
} from './errors';

describe('ILP error codes (RFC 0003)', () => {
  // The table of SPEC.md §5, written out again so that a typo in errors.ts fails here.
  const rfc0003 = [
    ['F00', 'Bad Request'],
    ['F01', 'Invalid Packet'],
    ['F02', 'Unreachable'],
    ['F03', 'Invalid Amount'],
    ['F04', 'Insufficient Destination Amount'],
    ['F05', 'Wrong Condition'],
    ['F06', 'Unexpected Payment'],
    ['F07', 'Cannot Receive'],
    ['T00', 'Internal Error'],
    ['T01', 'Ledger Unreachable'],
    ['T02', 'Ledger Busy'],
    ['T03', 'Connector Busy'],
    ['T04', 'Insufficient Liquidity'],
    ['T05', 'Rate Limited'],
    ['R00', 'Transfer Timed Out'],
    ['R01', 'Insufficient Source Amount'],
    ['R02', 'Insufficient Timeout'],
  ] as const;

  test.each(rfc0003)('%s is named %s', (code, name) => {
    expect(isIlpErrorCode(code)).toBe(true);
    expect(ilpErrorName(code)).toBe(name);
  });

  test('the table holds exactly the RFC 0003 codes', () => {
    expect(Object.keys(ILP_ERROR_NAMES).sort()).toEqual(rfc0003.map(([code]) => code).sort());
  });

  test.each([
    ['F99', 'Final Error', 'final'],
    ['T42', 'Temporary Error', 'temporary'],
    ['R0A', 'Relative Error', 'relative'],
  ])('an unknown but well-formed code %s is named by its class', (code, name, errorClass) => {
    expect(isIlpErrorCode(code)).toBe(false);
    expect(ilpErrorName(code)).toBe(name);
    expect(ilpErrorClass(code)).toBe(errorClass);
  });

  test.each(['', 'F0', 'F000', 'X00', 'f01', 'F0-', 'toString', 'constructor'])(
    'a malformed code %j is refused',
    (code) => {
      expect(isIlpErrorCode(code)).toBe(false);
      expect(() => ilpErrorName(code)).toThrow(RangeError);
    },
  );

  test.each([
    [new InvalidPacketError('bad'), 'F01', 'Invalid Packet', 'InvalidPacketError'],
    [new InvalidAmountError('bad'), 'F03', 'Invalid Amount', 'InvalidAmountError'],
  ])('%s carries its code', (error, code, name, className) => {
    expect(error).toBeInstanceOf(IlpError);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe(code);
    expect(error.ilpErrorName).toBe(name);
    expect(error.name).toBe(className);
  });

  test('an error keeps its cause for the log', () => {
    const cause = new Error('underlying');
    expect(new InvalidPacketError('bad', { cause }).cause).toBe(cause);
  });
});
