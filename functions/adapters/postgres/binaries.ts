// Finds the PostgreSQL programs on this machine (or in the configured directory) and reads their versions.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { BinaryNotFoundError } from '../../core/errors.js';
import { type PgVersion, parsePgVersion } from '../../core/versions.js';

const execFileAsync = promisify(execFile);

export type PgProgram =
  | 'pg_dump'
  | 'pg_restore'
  | 'psql'
  | 'postgres'
  | 'initdb'
  | 'pg_ctl'
  | 'pg_basebackup'
  | 'pg_isready'
  | 'pg_controldata'
  | 'pg_waldump'
  | 'pg_archivecleanup';

/** The programs the local stack runs besides the clients: without them no cluster can be started. */
export const SERVER_PROGRAMS: readonly PgProgram[] = ['postgres', 'initdb', 'pg_ctl', 'pg_basebackup'];
const CLIENT_PROGRAMS: readonly PgProgram[] = ['pg_dump', 'pg_restore', 'psql'];
const ALL_PROGRAMS: readonly PgProgram[] = [
  ...SERVER_PROGRAMS,
  ...CLIENT_PROGRAMS,
  'pg_isready',
  'pg_controldata',
  'pg_waldump',
  'pg_archivecleanup',
];

export interface PgBinaries {
  /** The directory the programs come from. */
  readonly dir: string;
  /** Absolute path of a program; BinaryNotFoundError when it is not there. */
  path(name: PgProgram): string;
  /** Whether the program is there. */
  has(name: PgProgram): boolean;
  /** The program's version from `X --version` (cached). */
  version(name: PgProgram): Promise<PgVersion>;
}

export interface FindOptions {
  /** Also require the server programs (initdb, pg_ctl, postgres, pg_basebackup): the local stack needs them. */
  server?: boolean;
  /** Where the machine's search looks (tests point these at empty folders). */
  usePgConfig?: boolean;
  packageRoot?: string;
  searchPath?: readonly string[];
}

const INSTALL_HINT =
  'install PostgreSQL (apt-get install postgresql, or postgresql-client for pg_dump/pg_restore only) or set KB_PG_BIN_DIR to the directory holding the programs';

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function programsIn(dir: string): Promise<Set<PgProgram>> {
  const found = new Set<PgProgram>();
  await Promise.all(
    ALL_PROGRAMS.map(async (name) => {
      if (await isExecutable(path.join(dir, name))) found.add(name);
    }),
  );
  return found;
}

function neededPrograms(options: FindOptions): readonly PgProgram[] {
  return options.server ? [...SERVER_PROGRAMS, ...CLIENT_PROGRAMS] : ['pg_dump'];
}

function satisfies(found: Set<PgProgram>, options: FindOptions): boolean {
  return neededPrograms(options).every((name) => found.has(name));
}

async function pgConfigBinDir(): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync('pg_config', ['--bindir'], { timeout: 10_000 });
    const dir = stdout.trim();
    return dir.length > 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** /usr/lib/postgresql/<N>/bin, newest major first (Debian and Ubuntu install several majors side by side). */
async function debianBinDirs(root = '/usr/lib/postgresql'): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return [];
  }
  return entries
    .filter((entry) => /^\d+(\.\d+)?$/.test(entry))
    .sort((a, b) => Number(b) - Number(a))
    .map((entry) => path.join(root, entry, 'bin'));
}

function pathDirs(): string[] {
  // PATH is the process's search path, not configuration: reading it here is how any program lookup works.
  return (process.env.PATH ?? '').split(path.delimiter).filter((dir) => dir.length > 0);
}

class FoundBinaries implements PgBinaries {
  private readonly versions = new Map<PgProgram, Promise<PgVersion>>();

  constructor(
    readonly dir: string,
    private readonly found: Set<PgProgram>,
    /** For programs spread over PATH: where each was found, when not in `dir`. */
    private readonly elsewhere: Map<PgProgram, string> = new Map(),
  ) {}

  has(name: PgProgram): boolean {
    return this.found.has(name) || this.elsewhere.has(name);
  }

  path(name: PgProgram): string {
    if (this.found.has(name)) return path.join(this.dir, name);
    const other = this.elsewhere.get(name);
    if (other) return other;
    throw new BinaryNotFoundError(`${name} not found in ${this.dir}`, { hint: INSTALL_HINT });
  }

  version(name: PgProgram): Promise<PgVersion> {
    let pending = this.versions.get(name);
    if (!pending) {
      pending = readVersion(this.path(name), name);
      this.versions.set(name, pending);
      // A failed probe may be fixed (installed) before the next call; do not cache failures.
      pending.catch(() => this.versions.delete(name));
    }
    return pending;
  }
}

async function readVersion(file: string, name: PgProgram): Promise<PgVersion> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(file, ['--version'], { timeout: 10_000 }));
  } catch (error) {
    throw new BinaryNotFoundError(
      `${name} at ${file} does not run: ${(error as Error).message.split('\n')[0]}`,
      {
        cause: error,
        hint: INSTALL_HINT,
      },
    );
  }
  try {
    return parsePgVersion(stdout);
  } catch (error) {
    throw new BinaryNotFoundError(`${file} --version printed no PostgreSQL version`, {
      cause: error,
      hint: INSTALL_HINT,
    });
  }
}

/**
 * Finds the PostgreSQL programs. Order: `preferredDir` (KB_PG_BIN_DIR; when given, only there), then
 * `pg_config --bindir` when it holds what is needed, then the newest /usr/lib/postgresql/<N>/bin, then PATH.
 */
export async function findPgBinaries(preferredDir?: string, options: FindOptions = {}): Promise<PgBinaries> {
  const what = options.server
    ? 'the PostgreSQL server programs (postgres, initdb, pg_ctl, pg_basebackup) and clients (pg_dump, pg_restore, psql)'
    : 'pg_dump';

  if (preferredDir) {
    const dir = path.resolve(preferredDir);
    const found = await programsIn(dir);
    if (!satisfies(found, options)) {
      const missing = neededPrograms(options).filter((name) => !found.has(name));
      throw new BinaryNotFoundError(`KB_PG_BIN_DIR ${dir} lacks ${missing.join(', ')}`, {
        hint: `point KB_PG_BIN_DIR at a directory holding ${what}, or unset it to search the machine`,
      });
    }
    return new FoundBinaries(dir, found);
  }

  const candidates: string[] = [];
  const fromPgConfig = (options.usePgConfig ?? true) ? await pgConfigBinDir() : undefined;
  if (fromPgConfig) candidates.push(fromPgConfig);
  candidates.push(...(await debianBinDirs(options.packageRoot)));
  for (const dir of candidates) {
    const found = await programsIn(dir);
    if (satisfies(found, options)) return new FoundBinaries(dir, found);
  }

  // Last resort: each program wherever PATH has it (e.g. Homebrew, or Debian's pg_wrapper links in /usr/bin).
  const elsewhere = new Map<PgProgram, string>();
  for (const name of ALL_PROGRAMS) {
    for (const dir of options.searchPath ?? pathDirs()) {
      const file = path.join(dir, name);
      if (await isExecutable(file)) {
        elsewhere.set(name, file);
        break;
      }
    }
  }
  const binaries = new FoundBinaries(path.dirname(elsewhere.get('pg_dump') ?? '/'), new Set(), elsewhere);
  const missing = neededPrograms(options).filter((name) => !binaries.has(name));
  if (missing.length > 0) {
    const searched = [...candidates, '$PATH'].join(', ');
    throw new BinaryNotFoundError(`${missing.join(', ')} not found (searched ${searched})`, {
      hint: options.server
        ? 'install the PostgreSQL server (apt-get install postgresql) or set KB_PG_BIN_DIR to its bin directory, e.g. /usr/lib/postgresql/15/bin'
        : INSTALL_HINT,
    });
  }
  return binaries;
}
