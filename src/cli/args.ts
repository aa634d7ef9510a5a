import { parseArgs } from 'node:util';
import { MAX_TIMER_MS } from '../timer-limit.js';

/** A mistake in how the command was called (exit code 2), as opposed to a failure while running it. */
export class UsageError extends Error {}

export interface WatchArgs {
  action: 'install' | 'uninstall' | 'list';
  tables: Array<{ schema: string; table: string }>;
  url: string | undefined;
  keyColumns: string[] | undefined;
  channel: string | undefined;
  cacheSchema: string | undefined;
  tablePrefix: string | undefined;
  /** How long install/uninstall wait for the table's lock, in ms; the library's default when undefined. */
  lockTimeout: number | undefined;
  apply: boolean;
  json: boolean;
}

export type Command = { name: 'help' } | { name: 'version' } | { name: 'watch'; args: WatchArgs };

const ACTIONS = ['install', 'uninstall', 'list'] as const;

export function parseCommand(argv: string[], env: NodeJS.ProcessEnv): Command {
  const [command, action, ...rest] = argv;
  if (command === undefined) throw new UsageError('no command given');
  if (command === 'help' || command === '--help' || command === '-h') return { name: 'help' };
  if (command === 'version' || command === '--version' || command === '-v') return { name: 'version' };
  if (command !== 'watch') throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  if (action === '--help' || action === '-h') return { name: 'help' };
  if (action === undefined) throw new UsageError('watch needs an action');
  if (!ACTIONS.includes(action as WatchArgs['action'])) {
    throw new UsageError(`unknown watch action ${JSON.stringify(action)}: use ${ACTIONS.join(', ')}`);
  }
  let parsed: ReturnType<typeof parseWatchOptions>;
  try {
    parsed = parseWatchOptions(rest);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { name: 'help' };
  const defaultSchema = values.schema ?? 'public';
  const tables = positionals.map((name) => splitTable(name, defaultSchema));
  if (action === 'list' && tables.length > 0) throw new UsageError('watch list takes no tables');
  if (action !== 'list' && tables.length === 0)
    throw new UsageError(`watch ${action} needs at least one table`);
  if (action !== 'install' && (values.key !== undefined || values.channel !== undefined)) {
    throw new UsageError('--key and --channel belong to watch install');
  }
  if (action === 'list' && values['lock-timeout'] !== undefined) {
    throw new UsageError('--lock-timeout belongs to watch install and uninstall');
  }
  const url = values.url ?? env.DATABASE_URL;
  if (url) assertDatabaseUrl(url, values.url === undefined ? 'DATABASE_URL' : '--url');
  return {
    name: 'watch',
    args: {
      action: action as WatchArgs['action'],
      tables,
      url,
      keyColumns: values.key === undefined ? undefined : splitColumns(values.key),
      channel: values.channel,
      cacheSchema: values['cache-schema'],
      tablePrefix: values.prefix,
      lockTimeout: values['lock-timeout'] === undefined ? undefined : parseMs(values['lock-timeout']),
      apply: values.apply === true,
      json: values.json === true,
    },
  };
}

/**
 * What `pg` reads as a connection string: a postgres(ql):// or socket: URL (a host-less one too, as
 * `postgres://user@/db?host=/var/run/postgresql`), or a socket directory. It reads anything else too, as a
 * path relative to a made-up host, and the command would fail only on connecting.
 */
function assertDatabaseUrl(url: string, from: string): void {
  if (url.startsWith('/') || /^(postgres|postgresql|socket):/i.test(url)) return;
  throw new UsageError(`${from} is not a PostgreSQL URL (postgres://user@host:port/database)`);
}

function parseWatchOptions(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' },
      schema: { type: 'string' },
      key: { type: 'string' },
      channel: { type: 'string' },
      'cache-schema': { type: 'string' },
      prefix: { type: 'string' },
      'lock-timeout': { type: 'string' },
      apply: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/**
 * `schema.table` names its schema; a bare name takes `--schema` (default public). Either part may be quoted
 * as in SQL, `"a.b"` or `"my schema"."a.b"` (a doubled quote inside stands for one), for names with a dot.
 * Unquoted names are taken as written, not folded to lower case.
 */
function splitTable(name: string, defaultSchema: string): { schema: string; table: string } {
  const parts = nameParts(name);
  if (parts.length === 1) return { schema: defaultSchema, table: parts[0] as string };
  if (parts.length === 2) return { schema: parts[0] as string, table: parts[1] as string };
  throw new UsageError(`${JSON.stringify(name)} is not a table name: write table or schema.table`);
}

function nameParts(name: string): string[] {
  const parts: string[] = [];
  let at = 0;
  for (;;) {
    let part: string;
    if (name[at] === '"') {
      [part, at] = quotedName(name, at);
    } else {
      const dot = name.indexOf('.', at);
      const end = dot === -1 ? name.length : dot;
      part = name.slice(at, end);
      at = end;
    }
    if (part === '') throw new UsageError(`${JSON.stringify(name)} has an empty name in it`);
    parts.push(part);
    if (at === name.length) return parts;
    if (name[at] !== '.') throw new UsageError(`${JSON.stringify(name)}: a quoted name must end at a dot`);
    at++;
  }
}

function parseMs(text: string): number {
  const ms = Number(text);
  if (!/^\d+$/.test(text) || ms < 1 || ms > MAX_TIMER_MS) {
    throw new UsageError(
      `--lock-timeout takes a whole number of ms from 1 to ${MAX_TIMER_MS}; got ${JSON.stringify(text)}`,
    );
  }
  return ms;
}

/** The name quoted as in SQL that starts at `at` (a doubled quote inside stands for one), and where it ends. */
function quotedName(text: string, at: number): [string, number] {
  let name = '';
  let next = at + 1;
  for (;;) {
    if (next >= text.length) throw new UsageError(`${JSON.stringify(text)} has a quote that is not closed`);
    if (text[next] === '"' && text[next + 1] === '"') {
      name += '"';
      next += 2;
    } else if (text[next] === '"') {
      return [name, next + 1];
    } else name += text[next++];
  }
}

/**
 * `--key a,b`; `--key ''` means no key columns (events name the table only). Bare names are trimmed
 * (`id, email`); a name with a comma or spaces of its own is quoted as in SQL (`" id","a,b"`).
 */
function splitColumns(list: string): string[] {
  if (list.trim() === '') return [];
  const columns: string[] = [];
  let at = 0;
  for (;;) {
    while (list[at] === ' ') at++;
    let column: string;
    if (list[at] === '"') {
      [column, at] = quotedName(list, at);
      while (list[at] === ' ') at++;
    } else {
      const comma = list.indexOf(',', at);
      const end = comma === -1 ? list.length : comma;
      column = list.slice(at, end).trim();
      at = end;
    }
    // An empty one is the API's to refuse, as any name it cannot take.
    columns.push(column);
    if (at === list.length) return columns;
    if (list[at] !== ',') throw new UsageError(`${JSON.stringify(list)}: a quoted name must end at a comma`);
    at++;
  }
}

export const HELP = `Usage: postgres-cache watch <action> [options]
       postgres-cache --version

Table-change invalidation: triggers on your tables that notify every process of a change.

  watch install <table…>     print (and with --apply run) the SQL that watches the tables
  watch uninstall <table…>   print (and with --apply run) the SQL that stops watching them
  watch list                 the tables watched now

Nothing changes without --apply: the SQL is printed for review (pipe it to psql if you prefer).

Options:
  --url URL            PostgreSQL URL (default: DATABASE_URL)
  --schema NAME        schema of tables given without one (default: public); or write schema.table,
                       quoting names with a dot as in SQL: '"a.b"' or 'app."a.b"'
  --key COL,COL        columns events carry (default: the primary key; '' for none; "a,b" quoted as in SQL)
  --channel NAME       channel to notify on (default: <cache-schema>_<prefix>table_changes)
  --cache-schema NAME  schema of the cache, where the shared trigger function lives (default: public)
  --prefix PREFIX      table prefix of the cache (default: pgcache_)
  --lock-timeout MS    install/uninstall: longest wait for the table's lock (default: 5000)
  --apply              run the SQL
  --json               watch list: print JSON
`;
