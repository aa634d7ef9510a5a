/**
 * What must be undone however the run ends (normally, on failure, on Ctrl-C): client processes,
 * the run's schema, the embedded server. Undone last-registered first.
 */
const tasks: Array<() => Promise<unknown>> = [];
let running: Promise<void> | undefined;

export function onCleanup(task: () => Promise<unknown>): void {
  tasks.push(task);
}

export function cleanUp(): Promise<void> {
  running ??= (async () => {
    for (let task = tasks.pop(); task; task = tasks.pop()) await task().catch(() => undefined);
  })();
  return running;
}

/** Ctrl-C or a TERM: clean up, then exit with the conventional status. */
export function cleanUpOnSignals(): void {
  const handle = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: stopping the clients and the database\n`);
    void cleanUp().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', handle);
  process.once('SIGTERM', handle);
}
