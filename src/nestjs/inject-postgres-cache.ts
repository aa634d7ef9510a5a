import { Inject } from '@nestjs/common';
import { POSTGRES_CACHE } from './tokens.js';

/** `@Inject(POSTGRES_CACHE)`: the module's PostgresCache, for `wrap()` with every option of this library. */
export const InjectPostgresCache = (): PropertyDecorator & ParameterDecorator => Inject(POSTGRES_CACHE);
