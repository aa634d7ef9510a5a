import { createHash, randomBytes } from 'node:crypto';
import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import {
  type CacheChange,
  ConnectionError,
  DisconnectedError,
  InvalidValueError,
  type PostgresCache,
  type StoredEntry,
} from '../../src/index.js';
import { announcedDelete } from '../../src/store/postgres-cache.js';
import { cacheFixture } from '../support/cache-fixture.js';
import { databaseUrl, eventually, sleep } from '../support/database.js';
import { parityScript } from '../support/parity-script.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const { schema, pool, newCache } = cacheFixture('coherence', 8);

/**
 * Runs `action`, then waits until `cache` has applied the change event it caused: of kind `op`, and
 * at least as new as the version the action reports (an earlier write's event may still be on its way).
 */
async function nextEvent(cache: PostgresCache, op: CacheChange['op'], action: () => Promise<unknown>) {
  const applied: CacheChange[] = [];
  const onChange = (change: CacheChange) => applied.push(change);
  cache.on('change', onChange);
  try {
    const outcome = await action();
    const version = typeof outcome === 'number' ? outcome : ((outcome as { version?: number })?.version ?? 0);
    const arrived = () => applied.some((change) => change.op === op && change.version >= version);
    expect(await eventually(arrived, 15_000, 2)).toBe(true);
  } finally {
    cache.off('change', onChange);
  }
}

/** Makes the next `readEntry` of `cache` pause after PostgreSQL answered, while `meanwhile` runs. */
function pauseNextRead(cache: PostgresCache, meanwhile: () => Promise<void>) {
  const adapter = cache.adapter;
  const original = adapter.readEntry.bind(adapter);
  adapter.readEntry = async (namespace: string, key: string): Promise<StoredEntry | undefined> => {
    adapter.readEntry = original;
    const entry = await original(namespace, key);
    await meanwhile();
    return entry;
  };
}

describe('the read-versus-event race', () => {
  it('a read that returns after a newer write was announced does not fill L1 with the older row', async () => {
    const writer = newCache();
    const reader = newCache();
    await Promise.all([writer.init(), reader.init()]);
    const ns = 'race-read';
    await writer.adapter.writeEntry(ns, 'k', 'old');
    pauseNextRead(reader, () => nextEvent(reader, 'set', () => writer.adapter.writeEntry(ns, 'k', 'new')));
    reader.namespace = ns;
    expect(await reader.get('k')).toBe('old');
    // The read answered with what it saw, but L1 kept out of it: the next read goes to PostgreSQL.
    expect(await reader.get('k')).toBe('new');
    expect(reader.stats.refusedFills).toBe(1);
  });

  it('a read that returns after a delete was announced does not resurrect the row', async () => {
    const writer = newCache();
    const reader = newCache();
    await Promise.all([writer.init(), reader.init()]);
    const ns = 'race-delete';
    await writer.adapter.writeEntry(ns, 'k', 'doomed');
    pauseNextRead(reader, () => nextEvent(reader, 'delete', () => writer.adapter.removeEntry(ns, 'k')));
    reader.namespace = ns;
    expect(await reader.get('k')).toBe('doomed');
    expect(await reader.get('k')).toBeUndefined();
  });

  it('a read that returns after a clear was announced does not refill the namespace', async () => {
    const writer = newCache();
    const reader = newCache();
    await Promise.all([writer.init(), reader.init()]);
    const ns = 'race-clear';
    await writer.adapter.writeEntry(ns, 'k', 'cleared soon');
    pauseNextRead(reader, () => nextEvent(reader, 'clear', () => writer.adapter.clearNamespace(ns)));
    reader.namespace = ns;
    expect(await reader.get('k')).toBe('cleared soon');
    expect(await reader.get('k')).toBeUndefined();
  });

  it('a read that spans a loss of the listener does not fill L1 with a row whose change event was lost', async () => {
    const proxy = await startTcpProxy(databaseUrl());
    try {
      const reader = newCache({
        listenerConnectionString: proxy.url,
        connectionTimeout: 1000,
        reconnect: { initialDelay: 50, maxDelay: 100 },
      });
      reader.on('error', () => undefined);
      const writer = newCache({ l1: false });
      await Promise.all([reader.init(), writer.init()]);
      const ns = 'race-reconnect';
      await writer.adapter.writeEntry(ns, 'k', 'before');
      pauseNextRead(reader, async () => {
        // The listener is lost, and its reconnects stall: the write below reaches no one in this process.
        proxy.mode = 'silent';
        proxy.dropAll();
        expect(await eventually(() => !reader.coherent, 5000, 1)).toBe(true);
        await writer.adapter.writeEntry(ns, 'k', 'after');
        proxy.mode = 'forward';
        expect(await eventually(() => reader.coherent, 10_000, 5)).toBe(true);
      });
      reader.namespace = ns;
      expect(await reader.get('k')).toBe('before');
      expect(await reader.get('k')).toBe('after');
      expect(reader.stats.refusedFills).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it('a read that began before a newer write was announced is refused, even after another read of the key answered', async () => {
    const writer = newCache();
    const reader = newCache();
    await Promise.all([writer.init(), reader.init()]);
    const ns = 'race-overlapping';
    await writer.adapter.writeEntry(ns, 'k', 'old');
    reader.namespace = ns;
    let third: Promise<unknown> = Promise.resolve();
    let releaseThird: () => void = () => undefined;
    pauseNextRead(reader, async () => {
      // A second read of the key begins and answers while the first is held; then the key changes.
      expect(await reader.get('k')).toBe('old');
      await nextEvent(reader, 'set', () => writer.adapter.writeEntry(ns, 'k', 'new'));
      // A third read begins after the change, and is still in flight when the first answers.
      pauseNextRead(reader, () => new Promise<void>((resolve) => (releaseThird = resolve)));
      third = reader.get('k');
    });
    expect(await reader.get('k')).toBe('old');
    expect(await reader.get('k')).toBe('new');
    releaseThird();
    expect(await third).toBe('new');
    expect(await reader.get('k')).toBe('new');
  });

  it("an own write whose answer arrives after another process's newer write does not win in L1", async () => {
    const mine = newCache();
    const theirs = newCache();
    await Promise.all([mine.init(), theirs.init()]);
    mine.namespace = 'race-write';
    const original = mine.adapter.writeEntry.bind(mine.adapter);
    mine.adapter.writeEntry = async (namespace, key, value, ttl) => {
      mine.adapter.writeEntry = original;
      const version = await original(namespace, key, value, ttl);
      await nextEvent(mine, 'set', () => theirs.adapter.writeEntry(namespace, key, 'theirs'));
      return version;
    };
    await mine.set('k', 'mine');
    expect(await mine.get('k')).toBe('theirs');
  });
});

describe('change events', () => {
  it("evict another cache's entry for a 10 KB key (the event carries a digest)", async () => {
    const writer = newCache();
    const reader = newCache();
    await Promise.all([writer.init(), reader.init()]);
    const key = randomBytes(5000).toString('hex');
    reader.namespace = 'long';
    writer.namespace = 'long';
    await writer.set(key, 'v1');
    expect(await reader.get(key)).toBe('v1');
    expect(await reader.get(key)).toBe('v1');
    expect(reader.stats.l1.hits).toBeGreaterThanOrEqual(1);
    await writer.set(key, 'v2');
    expect(await eventually(async () => (await reader.get(key)) === 'v2')).toBe(true);
    expect(reader.stats.evictions.event).toBeGreaterThanOrEqual(1);
  });

  it("an announced delete (cached()'s invalidate) sends one delete event, whether or not there was a row", async () => {
    const writer = newCache();
    const reader = newCache();
    await Promise.all([writer.init(), reader.init()]);
    const ns = 'announced';
    writer.namespace = ns;
    const heard: Array<{ op: string; key?: string; keyDigest?: string; version: number }> = [];
    reader.on('change', (change) => {
      if (change.op !== 'flush' && change.namespace === ns) heard.push(change);
    });
    const longKey = randomBytes(5000).toString('hex');
    // A plain delete of a key without a row sends nothing.
    expect(await writer.delete('absent')).toBe(false);
    await writer.set('present', 'v');
    expect(await writer[announcedDelete]('present')).toBe(true);
    expect(await writer[announcedDelete]('absent')).toBe(false);
    expect(await writer[announcedDelete](longKey)).toBe(false);
    // Events arrive in commit order: once the marker's has, every one before it has too.
    await writer.set('marker', 'm');
    await writer.delete('marker');
    expect(
      await eventually(() => heard.some((change) => change.op === 'delete' && change.key === 'marker')),
    ).toBe(true);
    // The row that stands in for a missing one is inserted silently: its delete is the only event.
    expect(heard.map((change) => `${change.op} ${change.key ?? change.keyDigest}`)).toEqual([
      'set present',
      'delete present',
      'delete absent',
      `delete ${createHash('sha256').update(longKey).digest('hex')}`,
      'set marker',
      'delete marker',
    ]);
    const versions = heard.map((change) => change.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
  });

  it.each(['read committed', 'repeatable read'])(
    'an announced delete of a key whose insert is in flight waits for it, and deletes it (%s)',
    async (isolation) => {
      const url = new URL(databaseUrl());
      url.searchParams.set('options', `-c default_transaction_isolation=${isolation.replace(' ', '\\ ')}`);
      const cache = newCache({ connectionString: url.toString() });
      await cache.init();
      const { rows: settings } = await cache.adapter.pool.query('SHOW default_transaction_isolation');
      expect(settings[0]?.default_transaction_isolation).toBe(isolation);
      cache.namespace = 'announced-race';
      const writer = await pool.connect();
      try {
        await writer.query('BEGIN');
        // As any writer would (the version trigger fills in version and digest), not yet committed.
        await writer.query(
          `INSERT INTO "${schema}".pgcache_entries (namespace, key_hash, key, value) VALUES ($1, '\\x00', $2, $3)`,
          ['announced-race', 'k', '{"value":"v"}'],
        );
        let answered = false;
        const deleting = cache[announcedDelete]('k').finally(() => {
          answered = true;
        });
        await sleep(200);
        // A delete that could not see the row would have answered by now, and sent its event before the row's.
        expect(answered).toBe(false);
        await writer.query('COMMIT');
        expect(await deleting).toBe(true);
      } finally {
        writer.release();
      }
      const { rows } = await pool.query(
        `SELECT count(*)::int AS n FROM "${schema}".pgcache_entries WHERE namespace = 'announced-race'`,
      );
      expect(rows[0]?.n).toBe(0);
    },
  );

  it('an announced delete under REPEATABLE READ outlasts a key written twice while it waits', async () => {
    const url = new URL(databaseUrl());
    url.searchParams.set('options', '-c default_transaction_isolation=repeatable\\ read');
    const cache = newCache({ connectionString: url.toString() });
    await cache.init();
    cache.namespace = 'announced-hot';
    await cache.set('k', 'v0');
    const entries = `"${schema}".pgcache_entries`;
    const update = `UPDATE ${entries} SET value = $1 WHERE namespace = 'announced-hot' AND key = 'k'`;
    const [first, second] = await Promise.all([pool.connect(), pool.connect()]);
    try {
      await first.query('BEGIN');
      await first.query(update, ['{"value":"v1"}']);
      const deleting = cache[announcedDelete]('k');
      await sleep(200);
      await second.query('BEGIN');
      const queued = second.query(update, ['{"value":"v2"}']);
      await sleep(200);
      await first.query('COMMIT');
      await queued;
      await sleep(200);
      await second.query('COMMIT');
      expect(await deleting).toBe(true);
    } finally {
      first.release();
      second.release();
    }
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM ${entries} WHERE namespace = 'announced-hot'`,
    );
    expect(rows[0]?.n).toBe(0);
  });

  it('a TRUNCATE of the table, by anyone, empties every L1 with one flush event', async () => {
    const cache = newCache();
    await cache.init();
    cache.namespace = 'truncate';
    await cache.set('a', 'one');
    await cache.set('b', 'two');
    expect(await cache.get('a')).toBe('one');
    expect(cache.stats.l1.size).toBe(2);
    await nextEvent(cache, 'flush', () => pool.query(`TRUNCATE ${schema}.pgcache_entries`));
    expect(cache.stats.l1.size).toBe(0);
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.has('b')).toBe(false);
  });

  // Bulk loaders, restores and logical replication's apply workers write with session_replication_role =
  // replica, where triggers that are merely enabled do not fire.
  it('a write from a session in replica mode still gets a version and an event', async () => {
    const cache = newCache();
    await cache.init();
    cache.namespace = 'replica';
    await cache.set('updated', 'before');
    await cache.set('deleted', 'before');
    await cache.set('truncated', 'before');
    expect(cache.stats.l1.size).toBe(3);
    const replicaSession = await pool.connect();
    try {
      await replicaSession.query('SET session_replication_role = replica');
      const entries = `${schema}.pgcache_entries`;
      await nextEvent(cache, 'set', async () => {
        const { rows } = await replicaSession.query<{ version: string }>(
          `UPDATE ${entries} SET value = 'after' WHERE namespace = 'replica' AND key = 'updated' RETURNING version`,
        );
        return Number(rows[0]?.version);
      });
      expect(await cache.get('updated')).toBe('after');
      await nextEvent(cache, 'delete', () =>
        replicaSession.query(`DELETE FROM ${entries} WHERE namespace = 'replica' AND key = 'deleted'`),
      );
      expect(await cache.get('deleted')).toBeUndefined();
      // Its version and digest come from the trigger, as for any other writer's INSERT.
      await nextEvent(cache, 'set', () =>
        replicaSession.query(
          `INSERT INTO ${entries} (namespace, key, value) VALUES ('replica', 'inserted', 'new')`,
        ),
      );
      expect(await cache.get('inserted')).toBe('new');
      expect(cache.stats.l1.size).toBeGreaterThan(0);
      await nextEvent(cache, 'flush', () => replicaSession.query(`TRUNCATE ${entries}`));
      expect(cache.stats.l1.size).toBe(0);
      expect(await cache.get('truncated')).toBeUndefined();
    } finally {
      replicaSession.release(true);
    }
  });

  it("cannot be forged to keep a cache's own clear() from emptying its L1", async () => {
    const cache = newCache();
    await cache.init();
    cache.namespace = 'forged';
    const channel = cache.adapter.options.notifyChannel;
    const sequence = `"${schema}".pgcache_version_seq`;
    for (let round = 0; round < 10; round++) {
      const key = `k${round}`;
      await cache.set(key, 'before the clear');
      // Clear events, as anyone who can NOTIFY may send them, with the versions the next clear will draw.
      const { rows } = await pool.query<{ last: string }>(`SELECT last_value AS last FROM ${sequence}`);
      const received = cache.stats.events.received;
      for (let v = Number(rows[0]?.last) + 1; v <= Number(rows[0]?.last) + 3; v++) {
        await pool.query('SELECT pg_notify($1, $2)', [
          channel,
          JSON.stringify({ op: 'clear', ns: 'forged', v }),
        ]);
      }
      expect(await eventually(() => cache.stats.events.received >= received + 3)).toBe(true);
      // Read back into L1 after the forged events emptied it.
      expect(await cache.get(key)).toBe('before the clear');
      await cache.clear();
      expect(await cache.get(key)).toBeUndefined();
    }
  });

  it('ignore and count malformed payloads from anyone who can NOTIFY the channel', async () => {
    const cache = newCache();
    await cache.init();
    cache.namespace = 'malformed';
    await cache.set('k', 'v');
    const channel = cache.adapter.options.notifyChannel;
    const junk = [
      '',
      'not json',
      '{}',
      '[]',
      'null',
      '{"op":"set","v":1}',
      '{"op":"set","ns":1,"key":"k","v":2}',
      '{"op":"drop","ns":"x","v":3}',
      '{"op":"set","ns":"x","kh":"zz","v":4}',
      '{"op":"set","ns":"x","key":"k","v":"9"}',
      '{"op":"probe"}',
      '{"op":"probe","id":7}',
      'x'.repeat(7000),
    ];
    const before = cache.stats.events;
    for (const payload of junk) await pool.query('SELECT pg_notify($1, $2)', [channel, payload]);
    expect(await eventually(() => cache.stats.events.ignored - before.ignored === junk.length)).toBe(true);
    expect(await cache.get('k')).toBe('v');
    expect(cache.coherent).toBe(true);
  });

  it('are reported as invalidate events, with stats per tier', async () => {
    const writer = newCache();
    const reader = newCache();
    await Promise.all([writer.init(), reader.init()]);
    writer.namespace = reader.namespace = 'observed';
    const seen: string[] = [];
    const written: string[] = [];
    reader.on('hit', ({ tier }) => seen.push(`hit:${tier}`));
    reader.on('miss', () => seen.push('miss'));
    reader.on('invalidate', ({ reason, key }) => seen.push(`invalidate:${reason}:${key ?? ''}`));
    writer.on('set', ({ key }) => written.push(`set:${key}`));
    writer.on('delete', ({ key }) => written.push(`delete:${key}`));
    await reader.get('k');
    await writer.set('k', 'v');
    await reader.get('k');
    await reader.get('k');
    await writer.delete('k');
    await eventually(() => seen.includes('invalidate:event:k'));
    // The reader's event may arrive before the writer's delete has its answer: two sequences, not one.
    expect(seen).toEqual(['miss', 'hit:postgres', 'hit:l1', 'invalidate:event:k']);
    expect(written).toEqual(['set:k', 'delete:k']);
    expect(reader.stats).toMatchObject({
      l1: { hits: 1 },
      postgres: { hits: 1, misses: 1 },
      evictions: { event: 1 },
    });
  });

  it('a read made after an own write, delete or clear, without awaiting it, sees it (L1 is not read meanwhile)', async () => {
    const cache = newCache({ namespace: 'unawaited' });
    await cache.init();
    const results: unknown[] = [];
    for (let round = 0; round < 10; round++) {
      const key = `unawaited:k${round}`;
      await cache.set(key, 'old');
      expect(await cache.get(key)).toBe('old');
      const [, afterSet] = await Promise.all([cache.set(key, 'new'), cache.get(key)]);
      const [, afterDelete, hasAfterDelete] = await Promise.all([
        cache.delete(key),
        cache.get(key),
        cache.has(key),
      ]);
      await cache.set(key, 'old');
      expect(await cache.get(key)).toBe('old');
      const [, afterClear] = await Promise.all([cache.clearNamespace('unawaited'), cache.get(key)]);
      results.push([afterSet, afterDelete, hasAfterDelete, afterClear]);
    }
    expect(results).toEqual(Array(10).fill(['new', undefined, false, undefined]));
  });

  it('a read made after an own write, once a write merged with it has answered, sees it', async () => {
    const cache = newCache({ namespace: 'merged-window', poolSize: 2, maxInFlight: 1 });
    await cache.init();
    for (const op of ['set', 'delete'] as const) {
      await cache.set('merged-window:k', 'v1');
      expect(await cache.get('merged-window:k')).toBe('v1');
      // The only slot is held: the write below and another one go as one statement.
      const busy = cache.adapter.execute('SELECT pg_sleep(0.1)', [], 'busy');
      const write = op === 'set' ? cache.set('merged-window:k', 'v2') : cache.delete('merged-window:k');
      let seen: unknown = 'not read';
      const other = cache.adapter.writeEntry('merged-window', 'merged-window:j', 'x').then(async () => {
        seen = await cache.get('merged-window:k');
      });
      await Promise.all([busy, write, other]);
      expect(seen).toBe(op === 'set' ? 'v2' : undefined);
    }
  });

  it("getMany() of keys some of which L1 holds fills L1 with each other key's own row", async () => {
    const cache = newCache({ namespace: 'many-mixed' });
    await cache.init();
    await cache.set('many-mixed:a', 'A');
    await cache.adapter.writeEntry('many-mixed', 'many-mixed:b', 'B');
    await cache.adapter.writeEntry('many-mixed', 'many-mixed:c', 'C');
    expect(await cache.getMany(['many-mixed:b', 'many-mixed:a', 'many-mixed:c'])).toEqual(['B', 'A', 'C']);
    expect(cache.stats.l1.size).toBe(3);
    const hits = cache.stats.l1.hits;
    expect(await cache.getMany(['many-mixed:a', 'many-mixed:b', 'many-mixed:c'])).toEqual(['A', 'B', 'C']);
    expect(cache.stats.l1.hits).toBe(hits + 3);
  });

  it('holds in L1 what setMany wrote, whatever the caller then does with its entries', async () => {
    const cache = newCache({ namespace: 'entries-reused' });
    await cache.init();
    const entry = { key: 'entries-reused:k', value: 'A', ttl: 200 as number | undefined };
    const writing = cache.setMany([entry]);
    entry.value = 'B';
    entry.ttl = undefined;
    await writing;
    expect(await cache.get('entries-reused:k')).toBe('A');
    await sleep(300);
    expect(await cache.get('entries-reused:k')).toBeUndefined();
  });

  it('a read made after a tagged set or an eviction by tag, awaited or not, sees it', async () => {
    const { CacheTags } = await import('../../src/index.js');
    const cache = newCache({ namespace: 'tagged' });
    await cache.init();
    const tags = new CacheTags(cache);
    await cache.set('tagged:k', 'v1');
    expect(await cache.get('tagged:k')).toBe('v1');
    await tags.set('tagged:k', 'v2', { tags: ['t'] });
    expect(await cache.get('tagged:k')).toBe('v2');
    expect(await cache.get('tagged:k')).toBe('v2');
    const [, afterSet] = await Promise.all([
      tags.set('tagged:k', 'v3', { tags: ['t'] }),
      cache.get('tagged:k'),
    ]);
    expect(afterSet).toBe('v3');
    expect(await cache.get('tagged:k')).toBe('v3');
    const [evicted, afterEvict] = await Promise.all([tags.evict(['t']), cache.get('tagged:k')]);
    expect(evicted).toBe(1);
    expect(afterEvict).toBeUndefined();
  });

  it("another process's clear evicts, whatever the version of a clear seen before (a sequence restarted)", async () => {
    const mine = newCache({ namespace: 'restarted' });
    const theirs = newCache({ namespace: 'restarted' });
    await Promise.all([mine.init(), theirs.init()]);
    const echoed = new Promise((resolve) => mine.once('change', resolve));
    await mine.clearNamespace('restarted');
    // Its own event back first: heard while the set below is in flight, its version (above every version the
    // restarted sequence draws) would keep that set out of L1, and PostgreSQL hides the row under the marker.
    await echoed;
    await pool.query(`ALTER SEQUENCE "${schema}".pgcache_version_seq RESTART WITH 1`);
    await mine.set('restarted:k', 'old');
    expect(await mine.get('restarted:k')).toBe('old');
    await theirs.clearNamespace('restarted');
    expect(await eventually(() => mine.stats.l1.size === 0)).toBe(true);
    expect(await mine.get('restarted:k')).toBeUndefined();
  });

  it('a clear whose event comes late evicts only the entries older than the clear', async () => {
    const proxy = await startTcpProxy(databaseUrl());
    try {
      const mine = newCache({ namespace: 'late-clear', listenerConnectionString: proxy.url });
      const theirs = newCache({ namespace: 'late-clear' });
      await Promise.all([mine.init(), theirs.init()]);
      await mine.set('late-clear:old', 'before');
      const clears: CacheChange[] = [];
      mine.on('change', (change) => {
        if (change.op === 'clear') clears.push(change);
      });
      // From now on the listener hears everything a second late: the write below, made once the clear has
      // committed, is in L1 before the clear's event comes.
      proxy.serverDelayMs = 1000;
      await theirs.clearNamespace('late-clear');
      await mine.set('late-clear:new', 'after');
      expect(clears).toEqual([]);
      expect(await eventually(() => clears.length === 1)).toBe(true);
      expect(mine.stats.evictions.clear).toBe(1);
      const hits = mine.stats.l1.hits;
      expect(await mine.get('late-clear:new')).toBe('after');
      expect(mine.stats.l1.hits).toBe(hits + 1);
      expect(await mine.get('late-clear:old')).toBeUndefined();
    } finally {
      await proxy.close();
    }
  });

  it('count each call once: a cold wrap(), a has() that goes to PostgreSQL, an own clear', async () => {
    const cache = newCache({ namespace: 'counted' });
    const other = newCache({ namespace: 'counted' });
    await Promise.all([cache.init(), other.init()]);
    const seen: string[] = [];
    cache.on('hit', ({ tier }) => seen.push(`hit:${tier}`));
    cache.on('miss', () => seen.push('miss'));
    cache.on('invalidate', ({ reason }) => seen.push(`invalidate:${reason}`));
    const stats = () => {
      const { l1, postgres } = cache.stats;
      return { l1: [l1.hits, l1.misses], postgres: [postgres.hits, postgres.misses] };
    };
    // Five callers, one fill: each looked in L1, one looked in PostgreSQL and loaded.
    await Promise.all(Array.from({ length: 5 }, () => cache.wrap('cold', async () => 1)));
    expect(stats()).toEqual({ l1: [0, 5], postgres: [0, 1] });
    await other.wrap('elsewhere', async () => 2);
    await cache.wrap('elsewhere', async () => 3);
    expect(stats()).toEqual({ l1: [0, 6], postgres: [1, 1] });
    await other.set('counted:direct', 'x');
    expect(await cache.has('nothing')).toBe(false);
    expect(await cache.has('counted:direct')).toBe(true);
    // 'cold' is in L1 since its wrap() wrote it; 'none' is looked up in PostgreSQL.
    expect(await cache.hasMany(['none', 'counted:cold'])).toEqual([false, true]);
    expect(stats()).toEqual({ l1: [1, 9], postgres: [2, 3] });
    expect(seen).toEqual(['miss', 'hit:postgres', 'miss', 'hit:postgres', 'hit:l1', 'miss']);
    seen.length = 0;
    await cache.clearNamespace('counted');
    await other.set('counted:after', 'x');
    // The clear's own event has come back by the time the next write's has.
    await eventually(() => cache.stats.events.received >= 3);
    await sleep(100);
    expect(seen).toEqual(['invalidate:clear']);
  });
});

describe('when the listener is down', () => {
  for (const [which, flushes] of [
    ['the first', 1],
    ['the second', 2],
  ] as const) {
    it(`a handler that disconnects the cache on ${which} flush after a reconnect leaves nothing running, nor L1 trusted`, async () => {
      const cache = newCache({ reconnect: { initialDelay: 20, maxDelay: 100 } });
      await cache.init();
      const errors: unknown[] = [];
      cache.on('error', (error) => errors.push(error));
      let closing: Promise<void> | undefined;
      let connectedAfterClosing = 0;
      let seen = 0;
      cache.on('connected', () => {
        if (closing) connectedAfterClosing++;
      });
      cache.on('invalidate', ({ reason }) => {
        if (reason === 'flush' && ++seen === flushes) closing = cache.disconnect();
      });
      await pool.query('SELECT pg_terminate_backend($1)', [cache.stats.listener.backendPid]);
      expect(await eventually(() => closing !== undefined)).toBe(true);
      await closing;
      const errorsAtClose = errors.length;
      await sleep(500);
      expect(errors.length).toBe(errorsAtClose);
      expect(connectedAfterClosing).toBe(0);
      expect(cache.coherent).toBe(false);
    });
  }

  it('L1 is bypassed and flushed at once, and trusted again only after LISTEN is back', async () => {
    const cache = newCache({ reconnect: { initialDelay: 300, maxDelay: 300 } });
    await cache.init();
    cache.namespace = 'down';
    await cache.set('k', 'v');
    expect(await cache.get('k')).toBe('v');
    expect(cache.stats.l1.size).toBeGreaterThan(0);
    const pid = cache.stats.listener.backendPid;
    const states: string[] = [];
    cache.on('disconnected', () => states.push('disconnected'));
    cache.on('connected', () => states.push('connected'));
    await pool.query('SELECT pg_terminate_backend($1)', [pid]);
    expect(await eventually(() => !cache.coherent, 15_000, 1)).toBe(true);
    expect(cache.stats.l1.size).toBe(0);
    const postgresHits = cache.stats.postgres.hits;
    expect(await cache.get('k')).toBe('v');
    expect(cache.stats.postgres.hits).toBe(postgresHits + 1);
    expect(await eventually(() => cache.coherent)).toBe(true);
    expect(states).toEqual(['disconnected', 'connected']);
    expect(cache.stats.listener.backendPid).not.toBe(pid);
  });
});

describe('a LISTEN connection that cannot be made', () => {
  it('fails init() with a ConnectionError after connectionTimeout, and the cache still answers from PostgreSQL', async () => {
    const cache = newCache({
      listenerConnectionString: 'postgres://postgres@127.0.0.1:1/none',
      connectionTimeout: 2000,
    });
    cache.on('error', () => undefined);
    await expect(cache.init()).rejects.toBeInstanceOf(ConnectionError);
    cache.namespace = 'no-listener';
    await cache.set('k', 'v');
    expect(await cache.get('k')).toBe('v');
    expect(cache.coherent).toBe(false);
    expect(cache.stats.l1.hits).toBe(0);
  });
});

describe('notifications: false', () => {
  it('opens no LISTEN connection and keeps L1 off without an L1 ttl', async () => {
    const cache = newCache({ notifications: false });
    const keyv = new Keyv({ store: cache, namespace: 'quiet' });
    await keyv.set('k', 'v');
    expect(await keyv.get('k')).toBe('v');
    expect(await keyv.get('k')).toBe('v');
    expect(cache.stats.l1.hits).toBe(0);
    expect(cache.stats.postgres.hits).toBe(2);
    expect(cache.stats.listener.connected).toBe(false);
  });

  it('with an L1 ttl, serves from L1 and is stale for at most that long', async () => {
    const cache = newCache({ notifications: false, l1: { ttl: 2000 } });
    const other = newCache({ notifications: false, l1: false });
    await Promise.all([cache.init(), other.init()]);
    cache.namespace = other.namespace = 'ttl-bound';
    await cache.set('k', 'v1');
    expect(await cache.get('k')).toBe('v1');
    await other.set('k', 'v2');
    expect(await cache.get('k')).toBe('v1');
    // Both reads were L1 hits (its own set filled L1); the second is stale, as promised.
    expect(cache.stats.l1.hits).toBe(2);
    await sleep(2100);
    expect(await cache.get('k')).toBe('v2');
  });
});

describe('the L1 bounds', () => {
  it('holds no more bytes and entries than allowed', async () => {
    const cache = newCache({ l1: { max: 50, maxBytes: 64 * 1024 } });
    await cache.init();
    cache.namespace = 'bounded';
    const value = 'x'.repeat(4096);
    for (let i = 0; i < 40; i++) await cache.set(`k${i}`, value);
    expect(cache.stats.l1.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(cache.stats.l1.size).toBeLessThan(40);
    for (let i = 0; i < 100; i++) await cache.set(`small${i}`, 's');
    expect(cache.stats.l1.size).toBeLessThanOrEqual(50);
    // What fell out of L1 is still in PostgreSQL.
    expect(await cache.get('k0')).toBe(value);
  });

  it("never keeps an entry past its row's expiry", async () => {
    const cache = newCache();
    await cache.init();
    cache.namespace = 'expiring';
    await cache.set('k', 'v', 1500);
    expect(await cache.get('k')).toBe('v');
    expect(cache.stats.l1.hits).toBe(1);
    await sleep(1600);
    expect(await cache.get('k')).toBeUndefined();
    expect(cache.stats.l1.hits).toBe(1);
  });

  it("never keeps an entry read from PostgreSQL past its row's expiry", async () => {
    const cache = newCache();
    await cache.init();
    cache.namespace = 'expiring-read';
    // Written elsewhere: L1 learns the rows' lifetimes from what get() and getMany() read.
    await cache.adapter.writeEntry('expiring-read', 'k', 'v', 1500);
    await cache.adapter.writeEntry('expiring-read', 'j', 'w', 1500);
    expect(await cache.get('k')).toBe('v');
    expect(await cache.getMany(['j'])).toEqual(['w']);
    expect(await cache.getMany(['k', 'j'])).toEqual(['v', 'w']);
    expect(cache.stats.l1.hits).toBe(2);
    await sleep(1600);
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.getMany(['j'])).toEqual([undefined]);
    expect(cache.stats.l1.hits).toBe(2);
  });

  it('stops serving an expired entry to a caller that awaits nothing but L1 hits', async () => {
    const cache = newCache();
    await cache.init();
    cache.namespace = 'hot-loop';
    await cache.set('k', 'v', 200);
    // A loop of awaited hits never yields to timers: a clock cached until a timer clears it would stand still.
    const started = performance.now();
    let last: unknown = 'v';
    while (last !== undefined && performance.now() - started < 1000) last = await cache.get('k');
    expect(last).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('counts an entry from when its write began, not from when the answer came', async () => {
    const cache = newCache();
    await cache.init();
    const ns = 'slow-write';
    await cache.adapter.writeEntry(ns, 'k', 'before');
    // Another session holds the row: the write waits 600 ms for it, and its 400 ms run out meanwhile.
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${schema}".pgcache_entries WHERE namespace = $1 FOR UPDATE`, [ns]);
      const released = sleep(600).then(() => holder.query('COMMIT'));
      await cache.adapter.writeEntry(ns, 'warm', 'x'); // another key: not held
      cache.namespace = ns;
      await cache.set('k', 'after', 400);
      await released;
    } finally {
      holder.release();
    }
    expect(await cache.has('k')).toBe(false);
    expect(await cache.get('k')).toBeUndefined();
  });
});

describe('own writes', () => {
  it('an older read that answers after our own write does not replace it in L1', async () => {
    // Without notifications nothing else would correct L1: the fill guard alone has to refuse the read.
    const cache = newCache({ notifications: false, l1: { ttl: 60_000 } });
    await cache.init();
    cache.namespace = 'own-write';
    await cache.adapter.writeEntry('own-write', 'k', 'old');
    let written = false;
    pauseNextRead(cache, async () => {
      await cache.set('k', 'new');
      written = true;
    });
    expect(await cache.get('k')).toBe('old');
    expect(written).toBe(true);
    expect(await cache.get('k')).toBe('new');
  });

  it('a write that fails leaves the key read from L1 again', async () => {
    const cache = newCache({ namespace: 'failed-write' });
    await cache.init();
    await cache.set('failed-write:k', 'v');
    const refused = 'not\u0000storable';
    await expect(cache.set('failed-write:k', refused)).rejects.toBeInstanceOf(InvalidValueError);
    await expect(cache.setMany([{ key: 'failed-write:k', value: refused }])).rejects.toBeInstanceOf(
      InvalidValueError,
    );
    const hits = cache.stats.l1.hits;
    expect(await cache.get('failed-write:k')).toBe('v');
    expect(cache.stats.l1.hits).toBe(hits + 1);
  });

  const ownChanges: Array<[string, (cache: PostgresCache) => Promise<unknown>, string | undefined]> = [
    // L1 holds one entry: the write's own is pushed out by another key before the read answers.
    [
      'a set whose entry L1 has let go',
      async (cache) => cache.set('k', 'new').then(() => cache.set('j', 'x')),
      'new',
    ],
    ['a delete', (cache) => cache.delete('k'), undefined],
    ['a deleteMany', (cache) => cache.deleteMany(['k']), undefined],
    ['a clear', (cache) => cache.clearNamespace('own-change'), undefined],
  ];
  for (const [which, change, after] of ownChanges) {
    it(`an older read that answers after our own change (${which}) does not bring the old row back`, async () => {
      // Without notifications nothing else would correct L1: the fill guard alone has to refuse the read.
      const cache = newCache({ notifications: false, l1: { ttl: 60_000, max: 1 } });
      await cache.init();
      cache.namespace = 'own-change';
      await cache.adapter.writeEntry('own-change', 'k', 'old');
      let changed = false;
      pauseNextRead(cache, async () => {
        await change(cache);
        changed = true;
      });
      expect(await cache.get('k')).toBe('old');
      expect(changed).toBe(true);
      expect(await cache.get('k')).toBe(after);
      expect(cache.stats.refusedFills).toBe(1);
    });
  }
});

describe('after disconnect()', () => {
  it('a read that answers after it fills nothing: L1 is off, and later calls fail as disconnected', async () => {
    const cache = newCache();
    await cache.init();
    cache.namespace = 'closed-fill';
    await cache.adapter.writeEntry('closed-fill', 'k', 'v');
    pauseNextRead(cache, () => cache.disconnect());
    expect(await cache.get('k')).toBe('v');
    expect(cache.coherent).toBe(false);
    expect(cache.stats.l1.size).toBe(0);
    await expect(cache.get('k')).rejects.toBeInstanceOf(DisconnectedError);
  });
});

describe('as a Keyv store', () => {
  it('answers a script of calls exactly as Keyv over its own Map store does, with L1 in use', async () => {
    const cache = newCache();
    await cache.init();
    const expected = await parityScript(new Keyv({ store: new Map(), namespace: 'parity' }));
    const actual = await parityScript(new Keyv({ store: cache, namespace: 'parity' }));
    expect(actual).toEqual(expected);
    expect(cache.stats.l1.hits).toBeGreaterThan(0);
  });
});
