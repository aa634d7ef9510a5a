/** Adds `by` to the count of `key`; a count that reaches 0 is removed, so the map holds only what is held. */
export function addToCount<K>(counts: Map<K, number>, key: K, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next === 0) counts.delete(key);
  else counts.set(key, next);
}
