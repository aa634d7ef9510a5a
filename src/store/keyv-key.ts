/** Keyv's prefixing of a key (its `delete()` and `get()`): `namespace:key`, unless the key carries the prefix already. */
export function keyvStoredKey(namespace: string, key: string): string {
  return namespace === '' || (key.startsWith(namespace) && key[namespace.length] === ':')
    ? key
    : `${namespace}:${key}`;
}
