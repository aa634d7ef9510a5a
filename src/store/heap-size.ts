/**
 * Roughly how many bytes a decoded JSON value holds on V8's heap: headers and slots of its objects and
 * arrays, its strings (two bytes a character, as L1 counts text) and its numbers. What a value's text says
 * of it can be far off: `[{},{},…]` is 3 characters an element and some 40 bytes decoded.
 */
export function heapBytesOf(value: unknown): number {
  let bytes = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item === 'string') bytes += 16 + item.length * 2;
    else if (Array.isArray(item)) {
      bytes += 16 + 8 * item.length;
      for (const element of item) pending.push(element);
    } else if (Buffer.isBuffer(item)) bytes += 96 + item.length;
    else if (typeof item === 'object' && item !== null) {
      const values = Object.values(item);
      bytes += 24 + 16 * values.length;
      for (const element of values) pending.push(element);
    } else bytes += 16;
  }
  return bytes;
}
