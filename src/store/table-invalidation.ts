import { EventEmitter } from 'node:events';
import { isStorableKey } from '../adapter/validation.js';
import { InvalidKeyError, InvalidOptionError, type PostgresCacheError, toCacheError } from '../errors.js';
import type { TableEventFilter } from '../notify/table-watch/filter.js';
import { greedy, type InvalidationStrategy, type StrategyRun } from '../notify/table-watch/strategies.js';
import { refusePromise } from '../notify/table-watch/synchronous.js';
import { eventRows, type TableEvent, type TableRow } from '../notify/table-watch/table-event.js';
import type { TableSubscription, TableWatcher } from '../notify/table-watch/table-watcher.js';
import { type CatalogQuery, type WatchProblem, whyNotWatched } from '../notify/table-watch/watch-check.js';
import { reportError } from '../report-error.js';
import { keyColumnsEvent } from './key-columns-event.js';
import { checkIntervalOf } from './options.js';
import { type Eviction, Evictor, type FlushReason } from './table-invalidation-evictor.js';
import { InvalidationLog } from './table-invalidation-log.js';
import { type CacheTags, isStorableTag } from './table-invalidation-tags.js';

/** Names what a changed row stands for in the cache. `undefined`/`null`/`[]`: nothing. */
export type RowMapper = (row: TableRow, event: TableEvent) => string | readonly string[] | null | undefined;

/**
 * Which table events evict what. Without `keys` and `tags`, every matching event evicts everything
 * that depends on the table (see `onFlush`). A truncate, or an event whose keys were too big to send,
 * always does.
 */
export interface InvalidationRule extends TableEventFilter {
  /** Cache keys to delete for a changed row (called for the old and the new row of an update). */
  keys?: RowMapper;
  /** Tags to evict for a changed row (needs a tag index). */
  tags?: RowMapper;
  /** When to evict. Default `greedy()`: at once. */
  strategy?: InvalidationStrategy;
}

/** What rules act upon: a PostgresCache, a Keyv, anything with `deleteMany` and `clear`. */
export interface InvalidationTarget {
  deleteMany(keys: string[]): Promise<unknown>;
  clear(): Promise<unknown>;
}

/** `clear`: the target's `clear()` (its whole namespace). Or a function that drops what depends on the tables. */
export type FlushAction = 'clear' | ((reason: FlushReason) => unknown);

export interface TableInvalidationOptions {
  watcher: TableWatcher;
  target: InvalidationTarget;
  rules: readonly InvalidationRule[];
  /** Needed by rules with `tags`. */
  tagIndex?: CacheTags | undefined;
  /** How to drop everything that depends on the tables. Default `clear`. */
  onFlush?: FlushAction | undefined;
  /** Close the watcher on `close()` (when it was made for this invalidation alone). */
  ownsWatcher?: boolean;
  /** Where to check, once listening, that the rules' tables send events to the watcher's channel. */
  catalog?: CatalogQuery | undefined;
  /**
   * How often to check again, in ms (0: once, at the start). While a rule's table is not watched the
   * invalidation is not trusted, and what depends on the table is flushed as that is found. Default 30 000.
   */
  watchCheckInterval?: number | undefined;
}

/** How long close() waits for the evictions it has heard of to be carried out. */
const CLOSE_DRAIN_MS = 2000;

export interface TableInvalidationStats {
  /** Matching events received. */
  events: number;
  /** Evictions carried out, flushes included. */
  evictions: number;
  keys: number;
  tags: number;
  flushes: number;
  /** Evictions that failed (and were retried). */
  failures: number;
}

export interface TableInvalidationEvents {
  /** An eviction was carried out in the database. */
  evict: [Eviction];
  /** Events may have been missed: `disconnected` (until the listener is back) or `reconnected` (being flushed). */
  stale: [reason: 'disconnected' | 'reconnected'];
  /** The flush after a reconnect is done: the cache can be trusted again. */
  fresh: [];
  error: [PostgresCacheError];
}

type Mapped = { keys: string[]; tags: string[]; everything?: undefined } | { everything: FlushReason };

/**
 * Binds table events to cache evictions. Every process that runs the same rules deletes the same
 * rows: the first delete removes them (and its delete events evict every L1), the others find
 * nothing and cost an index probe each. That redundancy is deliberate: an eviction happens as long as
 * any one process hears the event, and a process that wrote a value while the event was on its way
 * deletes it again itself (see `InvalidationLog`).
 */
export class TableInvalidation extends EventEmitter<TableInvalidationEvents> {
  /** Keys and tags invalidated while fills were in flight (used by `cached()`). */
  readonly log = new InvalidationLog();
  /** Resolves once LISTEN is in place. Never rejects: it retries in the background. */
  readonly ready: Promise<void>;

  private readonly watcher: TableWatcher;
  private readonly evictor: Evictor;
  private readonly subscriptions: TableSubscription[] = [];
  private readonly runs: StrategyRun[] = [];
  private readonly counters: TableInvalidationStats = {
    events: 0,
    evictions: 0,
    keys: 0,
    tags: 0,
    flushes: 0,
    failures: 0,
  };
  private stale = false;
  /** Per table, the answer last taken: its round, and whether the table sends no events. */
  private readonly watches = new Map<string, { round: number; silent: boolean }>();
  private checkRounds = 0;
  /** Whether the watches are checked again after the start (else a table's state at the start is final). */
  private readonly rechecks: boolean;
  private firstCheckDone = false;
  /** Tables reported as not watched at least once. */
  private readonly reported = new Set<string>();
  private watchCheck: NodeJS.Timeout | undefined;
  /** Listener losses so far; a reconnect flush restores trust only if no loss came after it was ordered. */
  private losses = 0;
  private flushOrderedAt = -1;
  private closed = false;
  private readonly watcherEvents: Array<
    [event: 'connected' | 'disconnected' | 'reconnected', fn: () => void]
  >;

  constructor(private readonly options: TableInvalidationOptions) {
    super();
    const { watcher, target, rules, tagIndex } = options;
    if (!rules.length) throw new InvalidOptionError('give at least one rule');
    if (rules.some((rule) => rule.tags) && !tagIndex)
      throw new InvalidOptionError('rules with tags need a tag index');
    if (typeof target?.deleteMany !== 'function' || typeof target.clear !== 'function') {
      throw new InvalidOptionError('the target needs deleteMany() and clear()');
    }
    const checkEvery = checkIntervalOf(options.watchCheckInterval, 'watchCheckInterval');
    const onFlush = options.onFlush ?? 'clear';
    if (onFlush !== 'clear' && typeof onFlush !== 'function') {
      throw new InvalidOptionError(`onFlush must be 'clear' or a function`);
    }
    this.watcher = watcher;
    this.evictor = new Evictor(
      {
        deleteKeys: async (keys) => {
          await target.deleteMany(keys);
        },
        evictTags: async (tags) => {
          await tagIndex?.evict(tags);
        },
        flush: async (reason) => {
          await (onFlush === 'clear' ? target.clear() : onFlush(reason));
        },
      },
      (eviction) => this.evicted(eviction),
      (error) => {
        this.counters.failures++;
        this.report(error, 'evicting after a table change');
      },
    );
    for (const rule of rules) this.addRule(rule);
    this.watcherEvents = [
      ['connected', () => this.log.markEverything()],
      ['disconnected', () => this.lost()],
      ['reconnected', () => this.reconnected()],
    ];
    for (const [event, fn] of this.watcherEvents) watcher.on(event, fn);
    this.rechecks = checkEvery > 0;
    this.ready = watcher.start().then(async () => {
      // Fills that began before LISTEN was in place may have missed an event: refuse them.
      this.log.markEverything();
      // Not trusted before the first answer: a table may be missing.
      await this.checkWatches();
      this.firstCheckDone = true;
      if (this.rechecks && !this.closed) {
        this.watchCheck = setInterval(() => void this.checkWatches(), checkEvery);
        this.watchCheck.unref();
      }
    });
  }

  /** True while events are flowing and nothing is known to be stale: safe to read and fill. */
  get trusted(): boolean {
    return (
      !this.closed &&
      this.watcher.connected &&
      !this.stale &&
      !this.evictor.failing &&
      this.firstCheckDone &&
      !(this.rechecks && this.anyTableSilent())
    );
  }

  private anyTableSilent(): boolean {
    for (const watch of this.watches.values()) if (watch.silent) return true;
    return false;
  }

  get stats(): TableInvalidationStats {
    return { ...this.counters };
  }

  /** Orders an eviction as a table event would (keys, tags, or everything). */
  evict(order: { keys?: readonly string[]; tags?: readonly string[]; everything?: boolean }): void {
    if (order.everything) this.log.markEverything();
    if (order.keys) this.log.markKeys(order.keys);
    if (order.tags) this.log.markTags(order.tags);
    this.evictor.order({ ...order, everything: order.everything ? 'manual' : undefined });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchCheck);
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    // What was heard is carried out, within a bound: a process started later does not flush on start.
    for (const run of this.runs) {
      run.flush();
      run.stop();
    }
    for (const [event, fn] of this.watcherEvents) this.watcher.off(event, fn);
    await this.evictor.settled(CLOSE_DRAIN_MS);
    this.evictor.stop();
    if (this.options.ownsWatcher) await this.watcher.close();
  }

  private addRule(rule: InvalidationRule): void {
    for (const name of ['keys', 'tags'] as const) {
      if (rule[name] !== undefined && typeof rule[name] !== 'function') {
        throw new InvalidOptionError(`${name} must be a function of the changed row`);
      }
    }
    // Per rule: two rules on one table see the same event objects, each with a mapping of its own.
    const mappings = new WeakMap<TableEvent, Mapped>();
    const whereFailed = new WeakSet<TableEvent>();
    const where = rule.where;
    const run = (rule.strategy ?? greedy()).start(
      (events) => this.evictFor(events, mappings),
      (error) => this.report(error, 'an invalidation strategy'),
    );
    this.runs.push(run);
    this.subscriptions.push(
      this.watcher.subscribe({
        table: rule.table,
        schema: rule.schema,
        operations: rule.operations,
        where:
          where &&
          ((event) => {
            try {
              const answer = where(keyColumnsEvent(event));
              refusePromise(answer, 'where()');
              return answer;
            } catch (error) {
              // Whether the change matters is unknown: count it as one that does, and evict everything.
              this.report(error, `the where() of a rule on ${event.schema}.${event.table}`);
              whereFailed.add(event);
              return true;
            }
          }),
        onEvent: (event) => {
          this.counters.events++;
          const mapped: Mapped = whereFailed.has(event) ? { everything: 'unmapped' } : this.map(event, rule);
          mappings.set(event, mapped);
          // Marked on arrival, not when a strategy gets round to it: a fill must know at once.
          if (mapped.everything) this.log.markEverything();
          else {
            this.log.markKeys(mapped.keys);
            this.log.markTags(mapped.tags);
          }
          run.push(event);
        },
      }),
    );
  }

  private map(event: TableEvent, rule: InvalidationRule): Mapped {
    if (event.operation === 'truncate') return { everything: 'truncate' };
    if (event.overflow) return { everything: 'overflow' };
    if (!rule.keys && !rule.tags) return { everything: 'table' };
    const view = keyColumnsEvent(event);
    const rows = eventRows(view);
    // Events of a table watched without key columns carry empty rows: the table changed, nothing more.
    if (rows.every((row) => Object.keys(row).length === 0)) return { everything: 'table' };
    try {
      const keys = new Set<string>();
      const tags = new Set<string>();
      for (const row of rows) {
        for (const key of names(rule.keys?.(row, view), 'keys')) keys.add(key);
        for (const tag of names(rule.tags?.(row, view), 'tags')) tags.add(tag);
      }
      return { keys: [...keys], tags: [...tags] };
    } catch (error) {
      // What the row stood for is unknown: evict everything rather than keep something stale.
      this.report(error, `mapping a change of ${event.schema}.${event.table}`);
      return { everything: 'unmapped' };
    }
  }

  private evictFor(events: TableEvent[], mappings: WeakMap<TableEvent, Mapped>): void {
    const keys: string[] = [];
    const tags: string[] = [];
    let everything: FlushReason | undefined;
    for (const event of events) {
      const mapped = mappings.get(event);
      if (!mapped) continue;
      if (mapped.everything) everything ??= mapped.everything;
      else {
        keys.push(...mapped.keys);
        tags.push(...mapped.tags);
      }
    }
    this.evictor.order({ keys, tags, everything });
  }

  private evicted(eviction: Eviction): void {
    this.counters.evictions++;
    this.counters.keys += eviction.keys.length;
    this.counters.tags += eviction.tags.length;
    if (eviction.everything) this.counters.flushes++;
    if (eviction.everything === 'reconnected' && this.stale && this.flushOrderedAt === this.losses) {
      this.stale = false;
      this.announce(() => this.emit('fresh'));
    }
    this.announce(() => this.emit('evict', eviction));
  }

  private lost(): void {
    this.losses++;
    this.stale = true;
    this.log.markEverything();
    // Whatever the strategies still hold was heard before the loss: evict it now.
    for (const run of this.runs) run.flush();
    this.announce(() => this.emit('stale', 'disconnected'));
  }

  private reconnected(): void {
    this.log.markEverything();
    this.flushOrderedAt = this.losses;
    this.evictor.order({ everything: 'reconnected' });
    this.announce(() => this.emit('stale', 'reconnected'));
  }

  /** A listener of ours that throws must not break the watcher's or the evictor's loop. */
  private announce(emit: () => void): void {
    try {
      emit();
    } catch (error) {
      this.report(error, 'a listener of a table invalidation');
    }
  }

  private report(error: unknown, doing: string): void {
    reportError(this, toCacheError(error, doing));
  }

  /**
   * A rule on a table that sends no events to our channel (missing, not watched, watched for another cache
   * location) would silently never evict: said as an `error` event, or as a process warning when nobody
   * listens for those.
   */
  /** One round of checks; never rejects. */
  private async checkWatches(): Promise<void> {
    const { catalog, rules } = this.options;
    if (!catalog || this.closed || !this.watcher.connected) return;
    const round = ++this.checkRounds;
    const checks = rules.map(async (rule) => {
      if (rule.table === undefined) return;
      const tables = typeof rule.table === 'string' ? [rule.table] : [...rule.table];
      try {
        // The rule's tables together: naming a table's inheritors in the rule is what makes it whole.
        const problems = await whyNotWatched(catalog, tables, rule.schema, this.watcher.channel);
        for (const table of tables) {
          const own = problems.filter((problem) => problem.table === table);
          this.watchChecked(`${rule.schema ?? ''}\u0000${table}`, own, round);
        }
      } catch (error) {
        this.report(error, 'checking that the tables are watched');
      }
    });
    await Promise.all(checks);
  }

  /**
   * While a rule's table sends no events (missing, or not watched on our channel), its changes reach no one:
   * nothing is trusted (`cached()` goes around the cache, storing nothing, and its fills that began before
   * are refused), and what depends on the table is flushed when a watch that was there is found gone, and
   * when the watch is (back) in place (what other code stored in between may be stale). A problem is
   * reported when found: once for a table with it from the start (it may be created or watched later), each
   * time for a watch that was there and went. Answers older than one already taken for the table are ignored.
   */
  private watchChecked(table: string, problems: WatchProblem[], round: number): void {
    const previous = this.watches.get(table);
    if (this.closed || round < (previous?.round ?? 0)) return;
    const silent = problems.some((problem) => problem.kind === 'silent');
    this.watches.set(table, { round, silent });
    // Without checks after the start, a table missing then is reported only: nothing would trust again.
    if (this.rechecks && silent !== (previous?.silent === true)) {
      // Gone silent, or heard again: fills that began before are refused, and what depends on the table is
      // flushed; not at the start (a start does not flush: every rolling restart would empty the cache).
      this.log.markEverything();
      if (previous !== undefined) this.evictor.order({ everything: 'unwatched' });
    }
    const lost = silent && previous?.silent === false;
    if (problems.length > 0 && (lost || !this.reported.has(table))) {
      this.reported.add(table);
      for (const { reason } of problems) {
        const error = new InvalidOptionError(reason);
        if (this.listenerCount('error') > 0) reportError(this, error);
        else process.emitWarning(error);
      }
    }
  }
}

/**
 * The keys or tags a rule named. Ones the store could never hold (a NUL, a lone surrogate, a tag too long)
 * name no entry: they are dropped, or their eviction would fail, be retried, and hold up every later one.
 */
function names(
  value: string | readonly string[] | null | undefined,
  what: 'keys' | 'tags',
): readonly string[] {
  if (value === undefined || value === null) return [];
  refusePromise(value, `${what}()`);
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list))
    throw new InvalidKeyError(`${what}() must return a string or an array of strings`);
  for (const item of list) {
    if (typeof item !== 'string') {
      throw new InvalidKeyError(`${what}() must return strings; got ${JSON.stringify(item) ?? typeof item}`);
    }
  }
  return list.filter(what === 'keys' ? isStorableKey : isStorableTag);
}
