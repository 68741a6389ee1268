/** Printing protobuf objects for people and scripts: bigint as digits, bytes as hex, times as ISO. */

/** JSON text of `value` with bigint as strings, Buffers as hex and Dates as ISO strings. */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(
    value,
    function replacer(this: unknown, key: string, item: unknown) {
      const original = (this as Record<string, unknown>)[key];
      if (typeof original === 'bigint') return original.toString();
      if (Buffer.isBuffer(original) || original instanceof Uint8Array) return Buffer.from(original).toString('hex');
      if (original instanceof Date) return original.toISOString();
      return item;
    },
    indent,
  );
}

/** Prints `value` as JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${toJson(value)}\n`);
}
