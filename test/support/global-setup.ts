import type { TestProject } from 'vitest/node';
import { type EmbeddedServer, startEmbeddedPostgres } from '../../support/embedded-postgres.js';

let embedded: EmbeddedServer | undefined;

/** Uses DATABASE_URL when set; otherwise one embedded PostgreSQL serves the whole run. */
export async function setup(project: TestProject) {
  let url = process.env.DATABASE_URL;
  if (!url) {
    embedded = await startEmbeddedPostgres();
    url = embedded.url;
    process.env.DATABASE_URL = url;
  }
  project.provide('databaseUrl', url);
  project.provide('embeddedPort', embedded?.port ?? 0);
}

export async function teardown() {
  await embedded?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    embeddedPort: number;
  }
}
