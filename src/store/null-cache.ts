import { EventEmitter } from 'node:events';

/**
 * A store that keeps nothing: every get misses, so every `wrap()` runs its loader. The same Keyv
 * store interface as PostgresCache, for local development and tests.
 */
export class NullCache extends EventEmitter {
  readonly opts = { dialect: 'null', url: 'null' };
  namespace?: string | undefined;

  async get(_key: string): Promise<undefined> {
    return undefined;
  }

  async getMany(keys: string[]): Promise<undefined[]> {
    return keys.map(() => undefined);
  }

  async set(_key: string, _value: unknown, _ttl?: number): Promise<boolean> {
    return true;
  }

  async setMany(entries: Array<{ key: string }>): Promise<boolean[]> {
    return entries.map(() => true);
  }

  async delete(_key: string): Promise<boolean> {
    return false;
  }

  async deleteMany(_keys: string[]): Promise<boolean> {
    return false;
  }

  async clear(): Promise<void> {}

  async has(_key: string): Promise<boolean> {
    return false;
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    return keys.map(() => false);
  }

  async *iterator(_namespace?: string): AsyncGenerator<[string, string], void> {}

  async disconnect(): Promise<void> {}
}
