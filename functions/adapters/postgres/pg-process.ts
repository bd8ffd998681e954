// Runs pg_dump / pg_restore as child processes: credentials by environment, bounded stderr, exit as a promise.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { BinaryNotFoundError, ConfigurationError } from '../../core/errors.js';
import { type PgVersion, parsePgVersion } from '../../core/versions.js';
import { onInterrupt } from '../interrupt.js';

const execFileAsync = promisify(execFile);

/** Enough of a failing tool's stderr to explain it, without holding a runaway log in memory. */
export const STDERR_TAIL_BYTES = 64 * 1024;

/** Runs `X --version` (callers that hold a PgBinaries can use its cached version() instead). */
export async function readToolVersion(binaryPath: string): Promise<PgVersion> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(binaryPath, ['--version'], { timeout: 15_000 }));
  } catch (error) {
    throw new BinaryNotFoundError(`cannot run ${binaryPath} --version: ${(error as Error).message}`, {
      cause: error,
      hint: 'install the PostgreSQL client of the server major version, or set KB_PG_BIN_DIR to its bin directory',
    });
  }
  return parsePgVersion(stdout);
}

/**
 * How a client tool connects: the URL without its password (argv is visible to every process on the
 * machine), and the password in PGPASSWORD, which only the child sees.
 */
export function toolConnection(databaseUrl: string): { dbname: string; env: NodeJS.ProcessEnv } {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new ConfigurationError('the database URL is not a URL', {
      hint: 'use postgres://user:password@host:port/database[?sslmode=verify-full]',
    });
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigurationError(`the database URL has scheme ${url.protocol}, expected postgres:`, {
      hint: 'use postgres://user:password@host:port/database',
    });
  }
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (url.password) {
    env.PGPASSWORD = decodeURIComponent(url.password);
    url.password = '';
  }
  return { dbname: url.toString(), env };
}

export interface ToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ToolProcess {
  child: ChildProcess;
  /** Resolves when the process has exited and its pipes are closed; rejects only if it could not start. */
  exit: Promise<ToolExit>;
  /** The last STDERR_TAIL_BYTES of stderr, as text. */
  stderrTail(): string;
  /** Stops the process (SIGTERM) unless it already exited; remembers that we did. */
  stop(): void;
  readonly stoppedByUs: boolean;
}

export function spawnTool(
  binaryPath: string,
  args: string[],
  options: {
    env: NodeJS.ProcessEnv;
    stdin: 'pipe' | 'ignore';
    stdout: 'pipe' | 'ignore';
    /** Run as this user (the local server user, see postgres-cluster.ts serverUser), from `/`. */
    user?: { uid: number; gid: number };
  },
): ToolProcess {
  const child = spawn(binaryPath, args, {
    env: options.env,
    stdio: [options.stdin, options.stdout, 'pipe'],
    ...(options.user ? { uid: options.user.uid, gid: options.user.gid, cwd: '/' } : {}),
  });
  let tail: Buffer[] = [];
  let tailBytes = 0;
  // stderr is a side channel (diagnostics), not part of the data path.
  child.stderr?.on('data', (chunk: Buffer) => {
    tail.push(chunk);
    tailBytes += chunk.length;
    if (tailBytes > 2 * STDERR_TAIL_BYTES) {
      const joined = Buffer.concat(tail).subarray(-STDERR_TAIL_BYTES);
      tail = [joined];
      tailBytes = joined.length;
    }
  });
  let exited = false;
  let stoppedByUs = false;
  // Interrupted (Ctrl-C, SIGTERM): the program stops with us, it does not carry on orphaned.
  const program = path.basename(binaryPath);
  const forget = onInterrupt(() => {
    if (exited || child.exitCode !== null || child.signalCode !== null) return undefined;
    stoppedByUs = true;
    child.kill('SIGTERM');
    return `stopped ${program} (pid ${child.pid})`;
  });
  const exit = new Promise<ToolExit>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      exited = true;
      forget();
      reject(
        new BinaryNotFoundError(`cannot start ${binaryPath}: ${error.message}`, {
          cause: error,
          hint: 'install the PostgreSQL client of the server major version, or set KB_PG_BIN_DIR',
        }),
      );
    });
    child.once('close', (code, signal) => {
      exited = true;
      forget();
      resolve({ code, signal });
    });
  });
  // Callers may look at `exit` only after their pipeline settles; a start failure must not go unhandled meanwhile.
  exit.catch(() => undefined);
  return {
    child,
    exit,
    stderrTail: () => {
      const text = Buffer.concat(tail).toString('utf8');
      return text.length > STDERR_TAIL_BYTES ? text.slice(-STDERR_TAIL_BYTES) : text;
    },
    stop: () => {
      if (exited || child.exitCode !== null || child.signalCode !== null) return;
      stoppedByUs = true;
      child.kill('SIGTERM');
    },
    get stoppedByUs() {
      return stoppedByUs;
    },
  };
}

/** The last few lines of a tool's stderr, for an error message. */
export function lastLines(text: string, lines = 20): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}
