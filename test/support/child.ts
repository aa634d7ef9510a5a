import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Runs a TypeScript script in a real child process (through tsx), with DATABASE_URL and extra env. */
export function spawnScript(
  script: string,
  args: string[] = [],
  env: Record<string, string> = {},
): ChildProcess {
  const path = fileURLToPath(new URL(`./processes/${script}`, import.meta.url));
  return spawn(process.execPath, ['--import', 'tsx', path, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export interface ScriptResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Waits for a child to exit, killing it after `timeoutMs`. */
export function finished(child: ChildProcess, timeoutMs = 30_000): Promise<ScriptResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // 'exit' can fire before the pipes drain; 'close' comes after both.
      child.on('close', () => resolve({ code, signal, stdout, stderr }));
    });
  });
}

export function runScript(
  script: string,
  args: string[] = [],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
) {
  return finished(spawnScript(script, args, env), timeoutMs);
}
