import { CACHE_MANAGER, Cache } from '@nestjs/cache-manager';
import {
  type DynamicModule,
  type InjectionToken,
  Module,
  type ModuleMetadata,
  type OptionalFactoryDependency,
  type Provider,
  type Type,
} from '@nestjs/common';
import {
  createPostgresCacheManager,
  type PostgresCacheManager,
  type PostgresCacheManagerOptions,
} from '../store/cache-manager.js';
import { POSTGRES_CACHE, POSTGRES_CACHE_OPTIONS } from './tokens.js';

export interface PostgresCacheModuleOptions extends PostgresCacheManagerOptions {
  /** Make `CACHE_MANAGER` and `POSTGRES_CACHE` injectable in every module. */
  isGlobal?: boolean;
}

/** A provider of the cache's options, for `registerAsync({ useClass })` or `({ useExisting })`. */
export interface PostgresCacheOptionsFactory {
  createPostgresCacheOptions(): PostgresCacheManagerOptions | Promise<PostgresCacheManagerOptions>;
}

/** Options from a factory function (`useFactory`, `inject`), or from a class (`useClass`, `useExisting`). */
export type PostgresCacheModuleAsyncOptions = Pick<ModuleMetadata, 'imports'> & {
  isGlobal?: boolean;
} & (
    | {
        useFactory: (
          ...dependencies: never[]
        ) => PostgresCacheManagerOptions | Promise<PostgresCacheManagerOptions>;
        inject?: Array<InjectionToken | OptionalFactoryDependency>;
      }
    | { useClass: Type<PostgresCacheOptionsFactory> }
    | { useExisting: Type<PostgresCacheOptionsFactory> }
  );

/**
 * Provides `CACHE_MANAGER` (what `@nestjs/cache-manager`'s `CacheInterceptor` and `@Inject(CACHE_MANAGER)`
 * use) as a cache-manager `Cache` on PostgreSQL whose `wrap()` runs a loader once across the cluster, and
 * `POSTGRES_CACHE`, the PostgresCache itself. Use it instead of `CacheModule`, not next to it. The cache
 * is ready (tables, LISTEN) before the application starts, and closed when it shuts down.
 */
// biome-ignore lint/complexity/noStaticOnlyClass: Nest identifies a module by its class; the builders are static.
export class PostgresCacheModule {
  static register(options: PostgresCacheModuleOptions = {}): DynamicModule {
    const { isGlobal, ...cacheOptions } = options;
    return cacheModule([{ provide: POSTGRES_CACHE_OPTIONS, useValue: cacheOptions }], isGlobal);
  }

  static registerAsync(options: PostgresCacheModuleAsyncOptions): DynamicModule {
    return cacheModule(optionProviders(options), options.isGlobal, options.imports);
  }
}

function optionProviders(options: PostgresCacheModuleAsyncOptions): Provider[] {
  if ('useFactory' in options) {
    return [
      { provide: POSTGRES_CACHE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
    ];
  }
  const fromFactory = {
    provide: POSTGRES_CACHE_OPTIONS,
    useFactory: (factory: PostgresCacheOptionsFactory) => factory.createPostgresCacheOptions(),
  };
  if ('useClass' in options) {
    return [
      { provide: options.useClass, useClass: options.useClass },
      { ...fromFactory, inject: [options.useClass] },
    ];
  }
  // useExisting: a provider the imported modules export already.
  return [{ ...fromFactory, inject: [options.useExisting] }];
}
// Applied as a call, so that building this package needs no decorator support.
Module({})(PostgresCacheModule);

function cacheModule(
  optionProviders: Provider[],
  isGlobal: boolean | undefined,
  imports: ModuleMetadata['imports'] = [],
): DynamicModule {
  return {
    module: PostgresCacheModule,
    global: isGlobal === true,
    imports,
    providers: [
      ...optionProviders,
      { provide: CACHE_MANAGER, useFactory: openCacheManager, inject: [POSTGRES_CACHE_OPTIONS] },
      {
        provide: POSTGRES_CACHE,
        useFactory: (manager: PostgresCacheManager) => manager.postgres,
        inject: [CACHE_MANAGER],
      },
      { provide: Cache, useExisting: CACHE_MANAGER },
    ],
    exports: [CACHE_MANAGER, POSTGRES_CACHE, Cache],
  };
}

async function openCacheManager(options: PostgresCacheManagerOptions) {
  const manager = createPostgresCacheManager(options);
  try {
    await manager.postgres.init();
  } catch (error) {
    await manager.disconnect();
    throw error;
  }
  // Nest calls the hooks of what a factory returns, as @nestjs/cache-manager relies on too.
  return Object.assign(manager, { onModuleDestroy: () => manager.disconnect() });
}
