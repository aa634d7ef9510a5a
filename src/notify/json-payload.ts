/**
 * A notification payload as a JSON object, or undefined. Any database user may NOTIFY any channel, so
 * a payload that is not an object of ours must be dropped quietly, never thrown.
 */
export function parsePayloadObject(payload: string | undefined): Record<string, unknown> | undefined {
  if (!payload) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(payload);
  } catch {
    return undefined;
  }
  return typeof data === 'object' && data !== null && !Array.isArray(data)
    ? (data as Record<string, unknown>)
    : undefined;
}
