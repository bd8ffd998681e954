// Loads the Keycloak fixture (a plain-SQL pg_dump of a real Keycloak 26.0.8 database) into a local database.
import { execFile, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cleanEnvironment } from '../functions/adapters/local/postgres-cluster.js';
import type { PgBinaries } from '../functions/adapters/postgres/binaries.js';
import { ConfigurationError, RestoreFailedError } from '../functions/core/errors.js';
import { parseServerVersionNum } from '../functions/core/versions.js';

const execFileAsync = promisify(execFile);

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The fixture the repository carries (see fixtures/keycloak/README.md for its source and licence). */
export const DEFAULT_FIXTURE_PATH = path.resolve(REPO_ROOT, 'fixtures/keycloak/kc-26.0.8/keycloak.sql');

/** The role that owns every object in the fixture. */
export const FIXTURE_OWNER = 'keycloak';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Makes a pg_dump plain-SQL file loadable into this server: drops the UTF-8 byte-order mark (psql would choke on
 * it in the first statement) and, for servers before 17, `SET transaction_timeout` which they do not know. Lines
 * inside COPY data are passed through untouched.
 */
export class SqlDumpFilter extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  private first = true;
  private inCopyData = false;

  /** `prelude` is SQL sent before the file (after the byte-order mark is gone). */
  constructor(private readonly options: { serverMajor: number; prelude?: string }) {
    super();
    if (options.prelude) this.push(Buffer.from(options.prelude));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let data: Buffer = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    if (this.first) {
      if (data.length < BOM.length && BOM.subarray(0, data.length).equals(data)) {
        this.pending = data;
        callback();
        return;
      }
      this.first = false;
      if (data.subarray(0, BOM.length).equals(BOM)) data = data.subarray(BOM.length);
    }
    const lastNewline = data.lastIndexOf(0x0a);
    if (lastNewline < 0) {
      this.pending = data;
      callback();
      return;
    }
    this.pending = Buffer.from(data.subarray(lastNewline + 1));
    this.pushLines(data.subarray(0, lastNewline + 1));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.pending.length > 0) this.pushLines(this.pending);
    callback();
  }

  private pushLines(block: Buffer): void {
    const kept: Buffer[] = [];
    let start = 0;
    while (start < block.length) {
      const end = block.indexOf(0x0a, start);
      const stop = end < 0 ? block.length : end + 1;
      const line = block.subarray(start, stop);
      if (this.keep(line.toString('utf8').replace(/\r?\n$/, ''))) kept.push(line);
      start = stop;
    }
    if (kept.length > 0) this.push(Buffer.concat(kept));
  }

  private keep(line: string): boolean {
    if (this.inCopyData) {
      if (line === '\\.') this.inCopyData = false;
      return true;
    }
    if (/^COPY .* FROM stdin;$/.test(line)) {
      this.inCopyData = true;
      return true;
    }
    if (this.options.serverMajor < 17 && /^SET transaction_timeout\b/.test(line)) return false;
    return true;
  }
}

async function askServerMajor(binaries: PgBinaries, url: string, env: NodeJS.ProcessEnv): Promise<number> {
  const { stdout } = await execFileAsync(
    binaries.path('psql'),
    ['-X', '-A', '-t', '-d', url, '-c', 'show server_version_num'],
    { env, timeout: 30_000 },
  );
  return parseServerVersionNum(stdout.trim()).major;
}

export interface LoadFixtureOptions {
  binaries: PgBinaries;
  /** The database to load into (postgres:// URL). It should be empty. */
  url: string;
  fixturePath?: string;
  /** The server's major version; asked of the server when absent. */
  serverMajor?: number;
}

/** The URL without its password (argv is visible to every process on the machine) and the password apart. */
function splitPassword(databaseUrl: string): { url: string; password?: string } {
  const url = new URL(databaseUrl);
  if (!url.password) return { url: databaseUrl };
  const password = decodeURIComponent(url.password);
  url.password = '';
  return { url: url.toString(), password };
}

/**
 * Loads the fixture in one transaction (a failed load leaves nothing behind), creating the owner role first.
 * psql reads it from stdin as a stream.
 */
export async function loadKeycloakFixture(options: LoadFixtureOptions): Promise<void> {
  const fixture = options.fixturePath ?? DEFAULT_FIXTURE_PATH;
  try {
    await access(fixture);
  } catch (error) {
    throw new ConfigurationError(`the Keycloak fixture ${fixture} is not readable`, {
      cause: error,
      hint: 'check out the shared fixtures next to the repository, or pass the fixture path explicitly',
    });
  }
  const { url, password } = splitPassword(options.url);
  const env = cleanEnvironment(password === undefined ? {} : { PGPASSWORD: password });
  const serverMajor = options.serverMajor ?? (await askServerMajor(options.binaries, url, env));

  const psql = spawn(
    options.binaries.path('psql'),
    ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-d', url, '-f', '-'],
    { env, stdio: ['pipe', 'ignore', 'pipe'] },
  );
  let stderr = '';
  psql.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-16_384);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    psql.once('error', reject);
    psql.once('close', (code) => resolve(code));
  });

  // The role exists cluster-wide; created idempotently so a second database can be loaded into the same cluster.
  const createOwner =
    `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${FIXTURE_OWNER}') ` +
    `THEN CREATE ROLE ${FIXTURE_OWNER} LOGIN; END IF; END $$;\n`;
  const fed = pipeline(
    createReadStream(fixture),
    new SqlDumpFilter({ serverMajor, prelude: createOwner }),
    psql.stdin,
  );

  const [feeding, code] = await Promise.allSettled([fed, exited]);
  const exitCode = code.status === 'fulfilled' ? code.value : null;
  if (exitCode !== 0) {
    const detail = stderr.trim().split('\n').slice(-6).join(' | ');
    throw new RestoreFailedError(`loading the Keycloak fixture failed (psql exit ${exitCode}): ${detail}`, {
      cause: code.status === 'rejected' ? code.reason : undefined,
      hint: `psql -v ON_ERROR_STOP=1 stopped at the first error; the load was rolled back (${path.basename(fixture)})`,
    });
  }
  if (feeding.status === 'rejected') throw feeding.reason;
}
