// Runs the real keycloak-backup command as a user does, for integration tests, and opens what it left behind.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../functions/platform/config.js';
import { localServices } from '../../functions/platform/local-services.js';
import { createLogger } from '../../functions/platform/logger.js';
import type { Services } from '../../functions/platform/services.js';
import { startLocalStack } from '../../local/stack.js';

const bin = fileURLToPath(new URL('../../bin/keycloak-backup.mjs', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  stateDir: string;
  timeoutMs: number;
  /** Leave the test process's own KB_* settings out, as a user's shell would not have them. */
  withoutKbEnvironment?: boolean;
}

/** A URL's password goes by PGPASSWORD, never on the command line (which the CLI refuses). */
export function runCli(options: CliOptions, args: readonly string[]): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !(options.withoutKbEnvironment && key.startsWith('KB_'))),
  );
  const argv = args.map((arg) => {
    if (!arg.startsWith('postgres://')) return arg;
    const url = new URL(arg);
    if (url.password) env.PGPASSWORD = decodeURIComponent(url.password);
    url.password = '';
    return url.toString();
  });
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, '--state-dir', options.stateDir, ...argv],
      { timeout: options.timeoutMs, env },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Opens the stack a CLI run left behind (stopped) to look at or change what it stored, and stops it again. */
export async function withStoredStack<T>(
  stateDir: string,
  use: (services: Services, primaryUrl: string) => Promise<T>,
): Promise<T> {
  const stack = await startLocalStack({ stateDir, handleSignals: false });
  try {
    return await use(
      await localServices(parseConfig(stack.env()), createLogger({ silent: true })),
      stack.primaryUrl,
    );
  } finally {
    await stack.stop();
  }
}
