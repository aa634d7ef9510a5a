import { describe, expect, it } from 'vitest';
import { InvalidationLog } from '../../src/store/table-invalidation-log.js';

// In-memory bookkeeping of table events for fills in flight: no database involved.
describe('InvalidationLog', () => {
  it('stays bounded while a fill never settles, and then counts everything as changed for it', () => {
    const log = new InvalidationLog();
    const stuck = log.begin();
    for (let i = 0; i < 200_000; i++) log.markKeys([`key:${i}`]);
    expect(log.remembered).toBeLessThanOrEqual(100_000);
    expect(log.changedSince(stuck, 'never-marked')).toBe(true);
    // A fill that begins now is judged on what comes after it.
    const fresh = log.begin();
    expect(log.changedSince(fresh, 'key:5')).toBe(false);
    log.markKeys(['key:5']);
    expect(log.changedSince(fresh, 'key:5')).toBe(true);
    expect(log.changedSince(fresh, 'key:6')).toBe(false);
  });

  it('keeps what a fill still in flight must know when a fill that ends prunes it past 1024 stamps', () => {
    const log = new InvalidationLog();
    const slow = log.begin();
    log.markKeys(['slow-key']);
    log.markTags(['slow-tag']);
    const quick = log.begin();
    // A bulk change while both are in flight: more stamps than the log keeps without pruning.
    for (let i = 0; i < 1100; i++) log.markKeys([`bulk:${i}`]);
    log.end(quick);
    expect(log.changedSince(slow, 'slow-key')).toBe(true);
    expect(log.changedSince(slow, 'other', ['slow-tag'])).toBe(true);
    expect(log.changedSince(slow, 'bulk:1099')).toBe(true);
    expect(log.changedSince(slow, 'never-marked')).toBe(false);
  });
});
