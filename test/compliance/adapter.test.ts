import KeyvGzip from '@keyv/compress-gzip';
import keyvTestSuite, { keyvCompresstionTests, keyvIteratorTests } from '@keyv/test-suite';
import Keyv from 'keyv';
import * as vitest from 'vitest';
import { PostgresAdapter } from '../../src/index.js';
import { adminPool, dropSchema, uniqueSchema } from '../support/database.js';

const schema = uniqueSchema('compliance_adapter');
// The suite builds a new store for nearly every call; they share one pool so no connection is left behind.
const pool = adminPool(10);
const store = () => new PostgresAdapter({ pool, schema, sweepInterval: 0 });

vitest.beforeAll(async () => {
  await PostgresAdapter.initDb({ pool, schema });
});
vitest.afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

keyvTestSuite(vitest, Keyv, store);
keyvIteratorTests(vitest, Keyv, store);
// @keyv/compress-gzip's declared types lag behind keyv's CompressionAdapter; the runtime contract matches.
keyvCompresstionTests(vitest, new KeyvGzip() as unknown as Parameters<typeof keyvCompresstionTests>[1]);
