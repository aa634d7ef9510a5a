import type Keyv from 'keyv';

/** A script of calls whose answers must be those of Keyv over its own Map store. */
export async function parityScript(keyv: Keyv) {
  const out: unknown[] = [];
  out.push(await keyv.get('missing'));
  out.push(await keyv.set('a', 1));
  out.push(await keyv.set('b', { nested: [1, 'two', null] }));
  out.push(await keyv.set('c', null));
  out.push(await keyv.get('c'));
  out.push(await keyv.get(['a', 'missing', 'b']));
  out.push(await keyv.has('a'), await keyv.has('missing'));
  out.push(await keyv.hasMany(['a', 'missing', 'c']));
  out.push(await keyv.delete('missing'));
  out.push(await keyv.delete('a'));
  out.push(await keyv.delete('a'));
  out.push(
    await keyv.setMany([
      { key: 'x', value: 'x' },
      { key: 'y', value: 'y' },
      { key: 'x', value: 'x2' },
    ]),
  );
  out.push(await keyv.get('x'));
  out.push(await keyv.delete(['x', 'missing']));
  out.push(await keyv.delete(['y', 'b']));
  out.push(await keyv.delete([]));
  out.push(await keyv.get(['x', 'y', 'b']));
  out.push(await keyv.clear());
  out.push(await keyv.get('c'));
  return out;
}
