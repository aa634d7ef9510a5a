import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { CACHE_MANAGER, CacheInterceptor, CacheModule, Cache as CacheToken } from '@nestjs/cache-manager';
import {
  Controller,
  Get,
  type INestApplication,
  Inject,
  Injectable,
  Module,
  Param,
  UseInterceptors,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Cache } from 'cache-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresCache } from '../../src/index.js';
import {
  InjectPostgresCache,
  POSTGRES_CACHE,
  PostgresCacheModule,
  type PostgresCacheOptionsFactory,
} from '../../src/nestjs/index.js';
import { adminPool, databaseUrl, dropSchema, eventually, uniqueSchema } from '../support/database.js';
import { gate } from '../wrap/support.js';

const schema = uniqueSchema('nestjs');
const apps: INestApplication[] = [];
const caches: PostgresCache[] = [];
const handled = new Map<string, number>();
const count = (name: string) => handled.set(name, (handled.get(name) ?? 0) + 1).get(name) ?? 0;

@Controller('items')
@UseInterceptors(CacheInterceptor)
class ItemsController {
  @Get(':id')
  item(@Param('id') id: string) {
    return { id, handled: count(`item-${id}`) };
  }
}

const slowReport = gate();

@Injectable()
class ReportService {
  constructor(@Inject(CACHE_MANAGER) private readonly cache: Cache) {}

  /** The expensive computation, once across every instance of the application. */
  report(name: string) {
    return this.cache.wrap(
      `report:${name}`,
      async () => {
        count(`report-${name}`);
        await slowReport.opened;
        return { name, rows: 42 };
      },
      60_000,
    );
  }
}

@Injectable()
class ProfileService {
  constructor(@InjectPostgresCache() private readonly cache: PostgresCache) {}

  profile(id: string) {
    return this.cache.getOrSet(`profile:${id}`, async () => ({ id, loads: count(`profile-${id}`) }), {
      ttl: 60_000,
      lockTimeout: 20_000,
      onLockTimeout: 'throw',
    });
  }
}

@Controller()
class ReportsController {
  constructor(
    @Inject(ReportService) private readonly reports: ReportService,
    @Inject(ProfileService) private readonly profiles: ProfileService,
  ) {}

  @Get('reports/:name')
  report(@Param('name') name: string) {
    return this.reports.report(name);
  }

  @Get('profiles/:id')
  profile(@Param('id') id: string) {
    return this.profiles.profile(id);
  }

  @Get('cached/:id')
  @UseInterceptors(CacheInterceptor)
  cached(@Param('id') id: string) {
    return { id, handled: count(`cached-${id}`) };
  }
}

async function start(module: unknown): Promise<{ app: INestApplication; url: string }> {
  const app = await NestFactory.create(module as never, { logger: false });
  await app.listen(0, '127.0.0.1');
  apps.push(app);
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}` };
}

async function getJson(url: string): Promise<{ status: number; cache: string | null; body: unknown }> {
  const response = await fetch(url);
  return { status: response.status, cache: response.headers.get('x-cache'), body: await response.json() };
}

function newCache() {
  const cache = new PostgresCache({ connectionString: databaseUrl(), schema, sweepInterval: 0 });
  caches.push(cache);
  return cache;
}

/** An application on @nestjs/cache-manager's own CacheModule, with a PostgresCache as its store. */
function cacheModuleApp(cache: PostgresCache) {
  @Module({ imports: [CacheModule.register({ stores: [cache] })], controllers: [ItemsController] })
  class AppModule {}
  return AppModule;
}

/** An application on PostgresCacheModule. */
function postgresModuleApp() {
  @Module({
    imports: [
      PostgresCacheModule.register({
        connectionString: databaseUrl(),
        schema,
        sweepInterval: 0,
        namespace: 'nest',
      }),
    ],
    controllers: [ReportsController],
    providers: [ReportService, ProfileService],
  })
  class AppModule {}
  return AppModule;
}

beforeAll(() => PostgresCache.initDb({ connectionString: databaseUrl(), schema }));
afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await Promise.all(caches.map((cache) => cache.disconnect()));
  await dropSchema(schema);
});

describe('CacheModule.register({ stores: [postgresCache] }) with CacheInterceptor', () => {
  it('answers the second request from the cache, in this instance and in another one', async () => {
    const firstCache = newCache();
    const first = await start(cacheModuleApp(firstCache));
    const second = await start(cacheModuleApp(newCache()));
    // CacheInterceptor stores a response while sending it, not before: the next request waits for the set.
    const stored = new Promise((resolve) => firstCache.once('set', resolve));
    expect(await getJson(`${first.url}/items/1`)).toEqual({
      status: 200,
      cache: 'MISS',
      body: { id: '1', handled: 1 },
    });
    await stored;
    expect(await getJson(`${first.url}/items/1`)).toEqual({
      status: 200,
      cache: 'HIT',
      body: { id: '1', handled: 1 },
    });
    // The other instance has its own L1, but the same PostgreSQL.
    expect(await getJson(`${second.url}/items/1`)).toEqual({
      status: 200,
      cache: 'HIT',
      body: { id: '1', handled: 1 },
    });
    expect(await getJson(`${second.url}/items/2`)).toEqual({
      status: 200,
      cache: 'MISS',
      body: { id: '2', handled: 1 },
    });
    expect(handled.get('item-1')).toBe(1);
  });
});

describe('PostgresCacheModule', () => {
  it('gives CACHE_MANAGER a wrap() that runs once across application instances', async () => {
    const instances = [await start(postgresModuleApp()), await start(postgresModuleApp())];
    const requests = instances.flatMap(({ url }) =>
      Array.from({ length: 20 }, () => getJson(`${url}/reports/monthly`)),
    );
    expect(await eventually(() => handled.get('report-monthly') === 1)).toBe(true);
    slowReport.open();
    const responses = await Promise.all(requests);
    expect(responses.every((response) => response.status === 200)).toBe(true);
    expect(responses.map((response) => response.body)).toEqual(Array(40).fill({ name: 'monthly', rows: 42 }));
    expect(handled.get('report-monthly')).toBe(1);
  });

  it('injects the PostgresCache itself under POSTGRES_CACHE, for getOrSet() with lock options', async () => {
    const instances = [await start(postgresModuleApp()), await start(postgresModuleApp())];
    const responses = await Promise.all(
      instances.flatMap(({ url }) => Array.from({ length: 10 }, () => getJson(`${url}/profiles/7`))),
    );
    expect(responses.map((response) => response.body)).toEqual(Array(20).fill({ id: '7', loads: 1 }));
    expect(instances[0]?.app.get(POSTGRES_CACHE)).toBeInstanceOf(PostgresCache);
  });

  it('works with CacheInterceptor', async () => {
    const { app, url } = await start(postgresModuleApp());
    const cache: PostgresCache = app.get(POSTGRES_CACHE);
    const stored = new Promise((resolve) => cache.once('set', resolve));
    expect(await getJson(`${url}/cached/1`)).toMatchObject({ cache: 'MISS', body: { id: '1', handled: 1 } });
    await stored;
    expect(await getJson(`${url}/cached/1`)).toMatchObject({ cache: 'HIT', body: { id: '1', handled: 1 } });
  });

  it('registerAsync() builds the cache from injected configuration', async () => {
    @Module({ providers: [{ provide: 'DB_URL', useValue: databaseUrl() }], exports: ['DB_URL'] })
    class ConfigModule {}

    @Module({
      imports: [
        PostgresCacheModule.registerAsync({
          imports: [ConfigModule],
          inject: ['DB_URL'],
          useFactory: (url: string) => ({
            connectionString: url,
            schema,
            sweepInterval: 0,
            namespace: 'nest',
          }),
        }),
      ],
      controllers: [ReportsController],
      providers: [ReportService, ProfileService],
    })
    class AsyncAppModule {}

    const { url } = await start(AsyncAppModule);
    expect((await getJson(`${url}/profiles/9`)).body).toEqual({ id: '9', loads: 1 });
  });

  it('registerAsync() takes the options from a class too (useClass, useExisting), as CacheModule does', async () => {
    @Injectable()
    class CacheConfig implements PostgresCacheOptionsFactory {
      createPostgresCacheOptions() {
        return { connectionString: databaseUrl(), schema, sweepInterval: 0, namespace: 'nest-class' };
      }
    }
    @Module({ providers: [CacheConfig], exports: [CacheConfig] })
    class ConfigModule {}

    for (const cacheModule of [
      PostgresCacheModule.registerAsync({ useClass: CacheConfig }),
      PostgresCacheModule.registerAsync({ imports: [ConfigModule], useExisting: CacheConfig }),
    ]) {
      @Module({ imports: [cacheModule] })
      class ClassAppModule {}
      const app = await NestFactory.create(ClassAppModule, { logger: false });
      try {
        await app.init();
        const cache = app.get<PostgresCache>(POSTGRES_CACHE);
        expect(cache.opts.schema).toBe(schema);
        expect(await cache.wrap('k', async () => 'from a class')).toBe('from a class');
        expect(await app.get<Cache>(CACHE_MANAGER).get('k')).toBe('from a class');
      } finally {
        await app.close();
      }
    }
  });

  it('registerAsync() hands the factory what inject names', async () => {
    @Module({
      providers: [{ provide: 'CACHE_NAMESPACE', useValue: 'nest-injected' }],
      exports: ['CACHE_NAMESPACE'],
    })
    class ConfigModule {}

    @Module({
      imports: [
        PostgresCacheModule.registerAsync({
          imports: [ConfigModule],
          inject: ['CACHE_NAMESPACE'],
          useFactory: (namespace: string) => ({
            connectionString: databaseUrl(),
            schema,
            sweepInterval: 0,
            namespace,
          }),
        }),
      ],
    })
    class InjectedAppModule {}

    const app = await NestFactory.create(InjectedAppModule, { logger: false });
    try {
      await app.init();
      expect(app.get<PostgresCache>(POSTGRES_CACHE).namespace).toBe('nest-injected');
    } finally {
      await app.close();
    }
  });

  it('isGlobal makes CACHE_MANAGER, Cache and POSTGRES_CACHE injectable in modules that do not import it', async () => {
    const options = { connectionString: databaseUrl(), schema, sweepInterval: 0, namespace: 'nest-global' };
    for (const cacheModule of [
      PostgresCacheModule.register({ ...options, isGlobal: true }),
      PostgresCacheModule.registerAsync({ isGlobal: true, useFactory: () => options }),
    ]) {
      @Injectable()
      class FeatureService {
        constructor(
          @Inject(CACHE_MANAGER) readonly manager: Cache,
          @Inject(CacheToken) readonly cache: Cache,
          @InjectPostgresCache() readonly postgres: PostgresCache,
        ) {}
      }
      @Module({ providers: [FeatureService] })
      class FeatureModule {}
      @Module({ imports: [cacheModule, FeatureModule] })
      class GlobalAppModule {}

      const app = await NestFactory.create(GlobalAppModule, { logger: false, abortOnError: false });
      try {
        await app.init();
        const feature = app.get(FeatureService);
        expect(feature.cache).toBe(feature.manager);
        expect(feature.postgres).toBeInstanceOf(PostgresCache);
        await feature.manager.set('k', 'global');
        expect(await feature.postgres.wrap('k', async () => 'loaded')).toBe('global');
      } finally {
        await app.close();
      }
    }
  });

  it("provides @nestjs/cache-manager's Cache class as a token, as CacheModule does", async () => {
    @Injectable()
    class UsesCache {
      constructor(@Inject(CacheToken) readonly cache: Cache) {}
    }
    @Module({
      imports: [PostgresCacheModule.register({ connectionString: databaseUrl(), schema, sweepInterval: 0 })],
      providers: [UsesCache],
    })
    class TokenAppModule {}

    const app = await NestFactory.create(TokenAppModule, { logger: false, abortOnError: false });
    try {
      await app.init();
      expect(app.get(UsesCache).cache).toBe(app.get(CACHE_MANAGER));
    } finally {
      await app.close();
    }
  });

  it('closes the PostgresCache when the application closes', async () => {
    const app = await NestFactory.create(postgresModuleApp(), { logger: false });
    await app.init();
    const cache = app.get<PostgresCache>(POSTGRES_CACHE);
    expect(await cache.wrap('k', async () => 'v')).toBe('v');
    await app.close();
    await expect(cache.wrap('k', async () => 'v')).rejects.toMatchObject({
      code: 'ERR_PGCACHE_DISCONNECTED',
    });
    expect((cache.adapter.pool as unknown as { ended: boolean }).ended).toBe(true);
  });

  it('fails the application start with a typed error when the database cannot be reached', async () => {
    @Module({
      imports: [
        PostgresCacheModule.register({
          connectionString: 'postgres://nobody@127.0.0.1:1/none',
          schema,
          connectionTimeout: 2000,
          reconnect: { initialDelay: 10, maxDelay: 50 },
        }),
      ],
    })
    class UnreachableModule {}
    const creating = NestFactory.create(UnreachableModule, { logger: false, abortOnError: false });
    await expect(creating).rejects.toMatchObject({ code: 'ERR_PGCACHE_CONNECTION' });
  });

  it('closes what it opened when the cache cannot start', async () => {
    const pool = adminPool(1);
    // Its own name on every connection it makes (pool and listener): a URL parameter wins over settings.
    const name = uniqueSchema('nest_failed_start');
    const url = new URL(databaseUrl());
    url.searchParams.set('application_name', name);
    const connections = async () =>
      Number(
        (await pool.query('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [name]))
          .rows[0].n,
      );
    try {
      @Module({
        imports: [
          PostgresCacheModule.register({
            connectionString: url.toString(),
            // No tables there, and none to be made: init() fails once the listener is connected.
            schema: uniqueSchema('nest_no_tables'),
            migrate: false,
            sweepInterval: 0,
          }),
        ],
      })
      class NoTablesModule {}
      await expect(
        NestFactory.create(NoTablesModule, { logger: false, abortOnError: false }),
      ).rejects.toMatchObject({
        code: 'ERR_PGCACHE_SCHEMA',
      });
      // The listener it leased is let go: no connection of its own is left to retry forever.
      expect(await eventually(async () => (await connections()) === 0, 3_000)).toBe(true);
    } finally {
      await pool.end();
    }
  });
});
