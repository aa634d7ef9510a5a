import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { installTableWatch, invalidateOnTableChange, type PostgresCache } from '../../src/index.js';
import { cacheFixture } from '../support/cache-fixture.js';
import { eventually, sleep } from '../support/database.js';
import { lockHolders, lockOf } from './support.js';

// A change that lands while a fill's loader runs is newer than what the loader read. A table rule's eviction of
// a key not stored yet deletes nothing: the fill then stored the old value, and it stayed for good.
const { schema, pool, newCache } = cacheFixture('wrap_overtaken');

async function watchedTable(table: string): Promise<string> {
  await pool.query(`CREATE TABLE "${schema}".${table} (id int PRIMARY KEY, name text)`);
  await installTableWatch(pool, { schema, table, cacheSchema: schema });
  return `"${schema}".${table}`;
}

async function nameIn(table: string, id: number): Promise<string> {
  const { rows } = await pool.query(`SELECT name FROM ${table} WHERE id = $1`, [id]);
  return rows[0]?.name;
}

/** A cache with a rule on the table: by key (`user:<id>`), or with none, clearing the namespace. */
async function ruledCache(table: string, namespace: string, keyed = true) {
  const cache = newCache({ namespace });
  await cache.init();
  const rule = invalidateOnTableChange(cache, {
    table: table.split('.')[1]?.replaceAll('"', '') ?? '',
    schema,
    ...(keyed ? { keys: (row: Record<string, unknown>) => [`user:${row.id}`] } : {}),
  });
  await rule.ready;
  /** Changes row 1, and resolves once the rule has evicted for it. */
  const changeRow = async () => {
    const evicted = new Promise((resolve) => rule.once('evict', resolve));
    await pool.query(`UPDATE ${table} SET name = 'new' WHERE id = 1`);
    await evicted;
  };
  return Object.assign(cache, { rule, changeRow });
}

describe('wrap() and a change made while its loader runs', () => {
  it("a table rule's eviction heard before the fill writes: the loaded value is returned, not stored", async () => {
    const table = await watchedTable('people_heard');
    await pool.query(`INSERT INTO ${table} VALUES (1, 'old')`);
    const cache = await ruledCache(table, 'heard');
    const loaded = await cache.wrap('user:1', async () => {
      const name = await nameIn(table, 1);
      await cache.changeRow();
      return name;
    });
    expect(loaded).toBe('old');
    expect(await cache.wrap('user:1', () => nameIn(table, 1))).toBe('new');
  });

  it("a table rule's eviction heard before the fill writes: the loaded value never reaches the table, even for a moment", async () => {
    const table = await watchedTable('people_unwritten');
    await pool.query(`INSERT INTO ${table} VALUES (1, 'old')`);
    const cache = await ruledCache(table, 'unwritten');
    // Every value written to the namespace's rows, as another process reading them could see it.
    await pool.query(`CREATE TABLE "${schema}".unwritten_log (value text)`);
    await pool.query(`CREATE FUNCTION "${schema}".log_unwritten() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO "${schema}".unwritten_log VALUES (NEW.value); RETURN NEW; END $$`);
    await pool.query(`CREATE TRIGGER log_unwritten AFTER INSERT OR UPDATE ON "${schema}".pgcache_entries
      FOR EACH ROW WHEN (NEW.namespace = 'unwritten') EXECUTE FUNCTION "${schema}".log_unwritten()`);
    const loaded = await cache.wrap('user:1', async () => {
      const name = await nameIn(table, 1);
      await cache.changeRow();
      return name;
    });
    expect(loaded).toBe('old');
    // Not written and deleted again: between the two, any process could have read it.
    const { rows } = await pool.query(`SELECT value FROM "${schema}".unwritten_log`);
    expect(rows).toEqual([]);
    expect(await cache.wrap('user:1', () => nameIn(table, 1))).toBe('new');
  });
  it("a rule's eviction sent while the fill's write waits: the fill deletes what it wrote", async () => {
    const table = await watchedTable('people_waiting');
    await pool.query(`INSERT INTO ${table} VALUES (1, 'old')`);
    const cache = await ruledCache(table, 'waiting');
    const blocker = await pool.connect();
    let released: Promise<unknown> = Promise.resolve();
    try {
      const loaded = await cache.wrap('user:1', async () => {
        const name = await nameIn(table, 1);
        // The fill's write will wait for this uncommitted row, which never commits.
        await blocker.query('BEGIN');
        await blocker.query(
          `INSERT INTO "${schema}".pgcache_entries (namespace, key, value) VALUES ('waiting', 'waiting:user:1', 'x')`,
        );
        released = (async () => {
          await sleep(100);
          // The eviction, after the fill checked for changes and sent its write: it deletes nothing.
          await cache.changeRow();
          await blocker.query('ROLLBACK');
        })();
        return name;
      });
      expect(loaded).toBe('old');
      await released;
    } finally {
      blocker.release();
    }
    expect(
      await eventually(async () => (await cache.wrap('user:1', () => nameIn(table, 1))) === 'new', 2000),
    ).toBe(true);
  });

  it.each([
    ['by key', true],
    ['clearing the namespace', false],
  ])("a rule's eviction (%s) just before the fill's write: nothing stale is kept", async (_, keyed) => {
    const namespace = `window-${keyed ? 'keyed' : 'keyless'}`;
    const table = await watchedTable(`people_${namespace.replace('-', '_')}`);
    await pool.query(`INSERT INTO ${table} VALUES (1, 'old')`);
    const cache = await ruledCache(table, namespace, keyed);
    const { adapter } = cache;
    const write = adapter.writeEntryIfUnchanged.bind(adapter);
    // The table changes, and the rule evicts, once the fill has looked for deletes and is about to write.
    adapter.writeEntryIfUnchanged = async (...args) => {
      await cache.changeRow();
      return write(...args);
    };
    expect(await cache.wrap('user:1', () => nameIn(table, 1))).toBe('old');
    adapter.writeEntryIfUnchanged = write;
    expect(await cache.wrap('user:1', () => nameIn(table, 1))).toBe('new');
  });

  it("a refresh, and a rule's eviction just before its write: it writes nothing back", async () => {
    const table = await watchedTable('people_refresh');
    await pool.query(`INSERT INTO ${table} VALUES (1, 'old')`);
    const cache = await ruledCache(table, 'refresh');
    const options = { ttl: 60_000, refreshThreshold: 59_900 };
    expect(await cache.wrap('user:1', () => nameIn(table, 1), options)).toBe('old');
    const { adapter } = cache;
    const write = adapter.writeEntryIfUnchanged.bind(adapter);
    let changed: Promise<void> | undefined;
    adapter.writeEntryIfUnchanged = async (...args) => {
      changed = cache.changeRow();
      await changed;
      return write(...args);
    };
    await sleep(150);
    // Due: served from L1, and refreshed in the background.
    expect(await cache.wrap('user:1', () => nameIn(table, 1), options)).toBe('old');
    expect(await eventually(() => changed !== undefined)).toBe(true);
    await changed;
    adapter.writeEntryIfUnchanged = write;
    const lock = lockOf(schema, 'refresh', 'user:1');
    expect(await eventually(async () => (await lockHolders(pool, lock)) === 0)).toBe(true);
    const { rows } = await pool.query(
      `SELECT value FROM "${schema}".pgcache_entries WHERE namespace = 'refresh' AND key = 'refresh:user:1'`,
    );
    expect(rows).toEqual([]);
  });

  it('a refresh, and an own delete still in flight as its write begins: what it wrote is deleted', async () => {
    const cache = newCache({ namespace: 'in-flight' });
    await cache.init();
    const options = { ttl: 60_000, refreshThreshold: 59_900 };
    expect(await cache.wrap('k', async () => 'first', options)).toBe('first');
    const { adapter } = cache;
    const write = adapter.writeEntryIfUnchanged.bind(adapter);
    const blocker = await pool.connect();
    let deleted: Promise<unknown> | undefined;
    let committed: Promise<unknown> | undefined;
    adapter.writeEntryIfUnchanged = async (...args) => {
      // The delete waits for a row lock, and takes the row once the write has taken its snapshot.
      await blocker.query('BEGIN');
      await blocker.query(
        `SELECT 1 FROM "${schema}".pgcache_entries WHERE namespace = 'in-flight' AND key = 'in-flight:k' FOR UPDATE`,
      );
      deleted = cache.delete('in-flight:k');
      await sleep(50);
      committed = sleep(100).then(() => blocker.query('COMMIT'));
      return write(...args);
    };
    try {
      await sleep(150);
      expect(await cache.wrap('k', async () => 'refreshed', options)).toBe('first');
      expect(await eventually(() => committed !== undefined)).toBe(true);
      await Promise.all([committed, deleted]);
    } finally {
      adapter.writeEntryIfUnchanged = write;
      blocker.release();
    }
    // The refresh deletes what it wrote once its lock is given back.
    const gone = async () => {
      const { rows } = await pool.query(
        `SELECT value FROM "${schema}".pgcache_entries WHERE namespace = 'in-flight' AND key = 'in-flight:k'`,
      );
      return rows.length === 0;
    };
    expect(await eventually(gone, 3000)).toBe(true);
  });

  it('what a fill deletes after an own delete overtook it is its own version only: a newer set stays', async () => {
    const table = await watchedTable('people_newer');
    await pool.query(`INSERT INTO ${table} VALUES (1, 'old')`);
    const cache = await ruledCache(table, 'newer');
    const other = newCache({ namespace: 'newer' });
    const keyv = new Keyv({ store: other, namespace: 'newer' });
    const { adapter } = cache;
    const write = adapter.writeEntryIfUnchanged.bind(adapter);
    const remove = adapter.removeEntryVersion.bind(adapter);
    adapter.writeEntryIfUnchanged = async (...args) => {
      await cache.changeRow();
      return write(...args);
    };
    // Another process sets the key between the fill's write and its delete of it.
    adapter.removeEntryVersion = async (...args) => {
      await keyv.set('user:1', 'newer');
      return remove(...args);
    };
    try {
      expect(await cache.wrap('user:1', () => nameIn(table, 1))).toBe('old');
    } finally {
      adapter.writeEntryIfUnchanged = write;
      adapter.removeEntryVersion = remove;
    }
    const { rows } = await pool.query(
      `SELECT value FROM "${schema}".pgcache_entries WHERE namespace = 'newer' AND key = 'newer:user:1'`,
    );
    expect(rows.map((row) => JSON.parse(row.value).value)).toEqual(['newer']);
  });

  it('a rule eviction racing the write: every key ends with the new value', { timeout: 60_000 }, async () => {
    const table = await watchedTable('people_racing');
    const ids = Array.from({ length: 30 }, (_, index) => index + 1);
    for (const id of ids) await pool.query(`INSERT INTO ${table} VALUES ($1, 'old')`, [id]);
    const cache = await ruledCache(table, 'racing');
    for (const id of ids) {
      // The eviction lands around the fill's write: before it, between it and its event, or after.
      await cache.wrap(`user:${id}`, async () => {
        const name = await nameIn(table, id);
        await pool.query(`UPDATE ${table} SET name = 'new' WHERE id = $1`, [id]);
        await sleep(id % 3);
        return name;
      });
    }
    const fresh = async () => {
      for (const id of ids)
        if ((await cache.wrap(`user:${id}`, () => nameIn(table, id))) !== 'new') return false;
      return true;
    };
    expect(await eventually(fresh, 5000)).toBe(true);
  });

  it("another process's set while the loader runs wins over the loaded value", async () => {
    const here = newCache({ namespace: 'set-wins' });
    const elsewhere = newCache({ namespace: 'set-wins' });
    await Promise.all([here.init(), elsewhere.init()]);
    const keyv = new Keyv({ store: elsewhere, namespace: 'set-wins' });
    const loaded = await here.wrap('k', async () => {
      await keyv.set('k', 'theirs');
      await sleep(50);
      return 'loaded';
    });
    expect(loaded).toBe('loaded');
    expect(await keyv.get('k')).toBe('theirs');
    expect(await here.wrap('k', async () => 'loaded again')).toBe('theirs');
    // The fill did not write over it.
    const { rows } = await pool.query(
      `SELECT value FROM "${schema}".pgcache_entries WHERE namespace = 'set-wins' AND key = 'set-wins:k'`,
    );
    expect(JSON.parse(rows[0]?.value).value).toBe('theirs');
  });
});

describe('wrap() and the sweeper', () => {
  // The sweeper deletes rows no reader can see any more; deleting one changes nothing, so a fill whose stamp saw it
  // dead stores its value. (Refusing made the next caller load again: two loads of one key right after a clear.)
  const cases: Array<[string, (cache: PostgresCache) => Promise<unknown>]> = [
    [
      'expired',
      (cache) =>
        cache.adapter
          .writeEntry('swept', 'swept:k', JSON.stringify({ value: 'old' }), 30)
          .then(() => sleep(60)),
    ],
    [
      'hidden by a clear',
      (cache) =>
        cache.adapter
          .writeEntry('swept', 'swept:k', JSON.stringify({ value: 'old' }))
          .then(() => cache.clearNamespace('swept')),
    ],
  ];
  for (const [dead, kill] of cases) {
    it(`a fill over a row already ${dead}, which the sweeper removes while its loader runs, stores its value`, async () => {
      const cache = newCache({ namespace: 'swept', sweepInterval: 0 });
      await cache.init();
      await kill(cache);
      let loads = 0;
      const loader = async () => {
        loads++;
        expect(await cache.adapter.sweep()).toBeGreaterThan(0);
        return 'new';
      };
      expect(await cache.wrap('k', loader)).toBe('new');
      const { rows } = await pool.query(
        `SELECT value FROM "${schema}".pgcache_entries WHERE namespace = 'swept' AND key = 'swept:k'`,
      );
      expect(rows.map((row) => JSON.parse(row.value).value)).toEqual(['new']);
      expect(await cache.wrap('k', loader)).toBe('new');
      expect(loads).toBe(1);
    });
  }
});
