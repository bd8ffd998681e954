// A small PostgreSQL cluster for one test file: initdb in a temp dir, started on a free loopback port, loaded with the fixture.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** shared/ sits beside the repository (here and in CI). */
export const FIXTURE_SQL = fileURLToPath(
  new URL('../../../shared/fixtures/keycloak/kc-26.0.8/keycloak.sql', import.meta.url),
);

/** The directory of initdb/pg_ctl/psql: the newest /usr/lib/postgresql/<major>/bin, else the PATH. */
export function findPgBinDir(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const majors = readdirSync(root)
      .filter((d) => /^\d+$/.test(d) && existsSync(join(root, d, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (majors[0]) return join(root, majors[0], 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'initdb'))) return dir;
  }
  throw new Error('PostgreSQL server binaries (initdb) not found');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export interface ThrowawayCluster {
  port: number;
  url(database: string): string;
  /** Runs SQL through psql with ON_ERROR_STOP, from a string on stdin. */
  psql(database: string, sql: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startThrowawayCluster(): Promise<ThrowawayCluster> {
  const bin = findPgBinDir();
  const dir = await mkdtemp(join(tmpdir(), 'kb-pg-'));
  const data = join(dir, 'data');
  // PostgreSQL refuses to run as root: run the server programs as the postgres user and let it own the folder.
  const asRoot = process.getuid?.() === 0;
  const server = async (program: string, args: string[]) => {
    const path = join(bin, program);
    return asRoot ? run('runuser', ['-u', 'postgres', '--', path, ...args]) : run(path, args);
  };
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const port = await freePort();
  let started = false;
  const stop = async () => {
    if (started) {
      await server('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(async () => {
        // pg_ctl failed: stop the postmaster by the pid it wrote.
        const pid = Number(
          (await readFile(join(data, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0],
        );
        if (pid > 0) process.kill(pid, 'SIGKILL');
      });
      started = false;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await server('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
    const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c fsync=off`;
    await server('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', options, '-w', 'start']);
    started = true;
  } catch (error) {
    await stop();
    throw error;
  }

  const psql = (database: string, sql: string) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(
        join(bin, 'psql'),
        [
          '-X',
          '-q',
          '-v',
          'ON_ERROR_STOP=1',
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-U',
          'postgres',
          '-d',
          database,
        ],
        { stdio: ['pipe', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.once('error', reject);
      child.once('close', (code) =>
        code === 0 ? resolve() : reject(new Error(`psql exited ${code}: ${stderr}`)),
      );
      child.stdin.end(sql);
    });

  return { port, url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`, psql, stop };
}

/**
 * Creates `database` and loads the Keycloak 26.0.8 fixture into it: without the byte-order mark, without
 * `SET transaction_timeout` (pg_dump 17 writes it, PostgreSQL 15 rejects it), with its owner role created first.
 */
export async function loadKeycloakFixture(cluster: ThrowawayCluster, database = 'keycloak'): Promise<void> {
  await cluster.psql(
    'postgres',
    `do $$ begin if not exists (select 1 from pg_roles where rolname = 'keycloak') then create role keycloak; end if; end $$;
     create database ${database} owner keycloak;`,
  );
  const sql = (await readFile(FIXTURE_SQL, 'utf8'))
    .replace(/^\uFEFF/, '')
    .replace(/^SET transaction_timeout = .*$/m, '');
  await cluster.psql(database, sql);
}
