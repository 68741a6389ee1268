/**
 * Printing protobuf objects for people and scripts: bigint as digits, bytes as hex, times as ISO,
 * and enum values by name (`"state": "PAYMENT_STATE_EXECUTED"`, not `3`) when the message's type
 * is given.
 */

/** A generated message type: its proto3 JSON form names enum values. */
export interface MessageType<T> {
  toJSON(message: T): unknown;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !(value instanceof Date) &&
    !Buffer.isBuffer(value) &&
    !(value instanceof Uint8Array)
  );
}

/**
 * `original` with each enum field (a number there, a name in `json`, the message's proto3 JSON
 * form) replaced by its name. Every other field keeps its value, defaults included, so that the
 * output shows every field; a oneof (`{ $case, value }` here, flattened in JSON) keeps numbers.
 */
function withEnumNames(original: unknown, json: unknown): unknown {
  if (Array.isArray(original)) {
    return original.map((item, index) => withEnumNames(item, Array.isArray(json) ? json[index] : undefined));
  }
  if (isPlainObject(original)) {
    const named = isPlainObject(json) ? json : {};
    return Object.fromEntries(Object.entries(original).map(([key, value]) => [key, withEnumNames(value, named[key])]));
  }
  // An enum value newer than this program's contract keeps its number (proto3 JSON does the same).
  if (typeof original === 'number' && typeof json === 'string' && json !== 'UNRECOGNIZED') return json;
  return original;
}

/** JSON text of `value` with bigint as strings, Buffers as hex, Dates as ISO strings and, given its type, enums by name. */
export function toJson<T>(value: T, indent = 2, type?: MessageType<T>): string {
  const shown = type && value !== undefined ? withEnumNames(value, type.toJSON(value)) : value;
  return JSON.stringify(
    shown,
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

/** Prints `value` as JSON on stdout (enums by name when its type is given). */
export function printJson<T>(value: T, type?: MessageType<T>): void {
  process.stdout.write(`${toJson(value, 2, type)}\n`);
}
