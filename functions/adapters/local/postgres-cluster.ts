// Local PostgreSQL processes, one owner: the server user, running as it, liveness and postmaster identity, ports,
// and the cluster itself (initdb or a restored copy, settings, start/stop, replica, replay wait).
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import {
  chmod,
  chown,
  mkdir,
  readdir,
  readFile,
  readlink,
  realpath,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { ConfigurationError, DatabaseUnavailableError } from '../../core/errors.js';
import { onInterrupt } from '../interrupt.js';
import type { PgBinaries, PgProgram } from '../postgres/binaries.js';

const execFileAsync = promisify(execFile);

/** The file our settings live in, inside the data directory, included from postgresql.conf. */
const SETTINGS_FILE = 'keycloak-backup.conf';
/** The superuser of local clusters. */
export const LOCAL_SUPERUSER = 'postgres';
/** Unix socket paths are limited to 107 bytes; longer socket dirs are replaced by TCP only. */
const MAX_SOCKET_DIR = 90;

// ---------------------------------------------------------------------------------------------------------------
// Running the server programs

export interface ServerUser {
  uid: number;
  gid: number;
}

let serverUserLookup: Promise<ServerUser | undefined> | undefined;

/**
 * PostgreSQL refuses to run as root, so as root the server programs run as the `postgres` user (and the data
 * directories belong to it). Any other user runs them as itself. undefined = run as the current user.
 */
export function serverUser(): Promise<ServerUser | undefined> {
  serverUserLookup ??= (async () => {
    if (process.getuid?.() !== 0) return undefined;
    try {
      const [{ stdout: uid }, { stdout: gid }] = await Promise.all([
        execFileAsync('id', ['-u', LOCAL_SUPERUSER]),
        execFileAsync('id', ['-g', LOCAL_SUPERUSER]),
      ]);
      return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
    } catch (error) {
      throw new ConfigurationError('running as root, but there is no postgres user to run PostgreSQL as', {
        cause: error,
        hint: 'install the postgresql package (it creates the user), create one with useradd --system postgres, or run as a non-root user',
      });
    }
  })();
  return serverUserLookup;
}

/** The environment for PostgreSQL programs: without PG* variables, which would silently redirect them. */
export function cleanEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PG')) env[key] = value;
  }
  return { ...env, ...extra };
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Enough output to explain a failure without holding a runaway log. */
const OUTPUT_LIMIT = 64 * 1024;

/**
 * Runs a PostgreSQL program to completion, as the server user when `asServer` (initdb, pg_ctl, pg_basebackup).
 * Rejects with the program's stderr in the message.
 */
export async function runPgProgram(
  binaries: PgBinaries,
  program: PgProgram,
  args: readonly string[],
  options: { asServer?: boolean; cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const user = options.asServer ? await serverUser() : undefined;
  const file = binaries.path(program);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      // libuv drops root's supplementary groups when it switches uid.
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
      cwd: options.cwd ?? '/',
      env: cleanEnvironment({ ...(user ? { HOME: options.cwd ?? '/' } : {}), ...options.env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout = (stdout + text).slice(-OUTPUT_LIMIT);
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr = (stderr + text).slice(-OUTPUT_LIMIT);
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), options.timeoutMs ?? 120_000);
    const forget = onInterrupt(() => {
      if (child.exitCode !== null || child.signalCode !== null) return undefined;
      child.kill('SIGTERM');
      return `stopped ${program} (pid ${child.pid})`;
    });
    child.once('error', (error) => {
      forget();
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      forget();
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else {
        const why = signal ? `killed by ${signal}` : `exit ${code}`;
        const detail = (stderr.trim() || stdout.trim()).split('\n').slice(-8).join(' | ');
        reject(new Error(`${program} failed (${why}): ${detail}`));
      }
    });
  });
}

/** Creates a directory owned by the server user (mode 0700), so the server programs can write into it. */
export async function makeServerDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const user = await serverUser();
  if (!user) return;
  await chown(dir, user.uid, user.gid);
  await chmod(dir, 0o700);
  // The postgres user must be able to reach the directory through its parents; a state dir under /root is not.
  try {
    await execFileAsync('/bin/sh', ['-c', 'test -w "$0" && test -x "$0"', dir], {
      uid: user.uid,
      gid: user.gid,
      cwd: '/',
    });
  } catch (error) {
    throw new ConfigurationError(`the postgres user cannot write into ${dir}`, {
      cause: error,
      hint: 'choose a state directory the postgres user can reach (e.g. under /tmp), or make its parent directories traversable (chmod o+x)',
    });
  }
}

/** Writes a file only the server user reads (mode 0600, its owner): settings, pg_hba.conf, signal files. */
export async function writeServerFile(file: string, content: string): Promise<void> {
  await writeFile(file, content, { mode: 0o600 });
  const user = await serverUser();
  if (user) await chown(file, user.uid, user.gid);
}

/** Lets the server user pass through a directory we own (to reach its own folders inside), nothing more. */
export async function allowServerTraversal(dir: string): Promise<void> {
  if (!(await serverUser())) return;
  const mode = (await stat(dir)).mode & 0o777;
  await chmod(dir, mode | 0o011);
}

// ---------------------------------------------------------------------------------------------------------------
// Ports

/** A port the OS says is free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
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

export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The port used last time when it is still free, else a fresh one. */
export async function reusablePort(previous: number | undefined): Promise<number> {
  if (previous && (await isPortFree(previous))) return previous;
  return freePort();
}

// ---------------------------------------------------------------------------------------------------------------
// Settings

export type Settings = Record<string, string | number | boolean>;

function quoteSetting(value: string | number | boolean): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return `'${value.replaceAll("'", "''")}'`;
}

/** Settings as configuration file lines (`name = value`). */
export function settingsLines(settings: Settings): string[] {
  return Object.entries(settings).map(([key, value]) => `${key} = ${quoteSetting(value)}`);
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Settings that trade crash safety for speed: only for throwaway test clusters. */
export const NON_DURABLE_SETTINGS: Settings = { fsync: false, synchronous_commit: false };

/**
 * A primary that archives every WAL segment (the point-in-time engine restores from the archive) and feeds a
 * streaming replica through a slot. archive_timeout bounds how old the newest archived change can be.
 */
export function primarySettings(options: { walArchiveDir: string; durable: boolean }): Settings {
  const archive = options.walArchiveDir;
  // Copy under a temporary name and rename, so a crash mid-copy never leaves a truncated segment under its real
  // name; an existing identical segment (re-archived after a crash) is success, a different one is refused.
  const target = shellQuote(`${archive}/`);
  const archiveCommand =
    `if test -f ${target}%f; then cmp -s %p ${target}%f; ` +
    `else cp %p ${target}%f.part && mv ${target}%f.part ${target}%f; fi`;
  return {
    wal_level: 'replica',
    archive_mode: true,
    archive_command: archiveCommand,
    archive_timeout: 60,
    max_wal_senders: 10,
    max_replication_slots: 10,
    hot_standby: true,
    ...(options.durable ? {} : NON_DURABLE_SETTINGS),
  };
}

/**
 * A hot standby streaming from the primary through its slot. hot_standby_feedback keeps the primary from removing
 * rows a long pg_dump on the standby still reads; without it the dump is cancelled with "conflict with recovery".
 */
export function replicaSettings(options: {
  primaryPort: number;
  /** The superuser's password on the primary (SCRAM): the settings file is 0600 and the server user's. */
  password: string;
  slot: string;
  applicationName?: string;
  durable: boolean;
}): Settings {
  const conninfo = [
    'host=127.0.0.1',
    `port=${options.primaryPort}`,
    `user=${LOCAL_SUPERUSER}`,
    `password=${options.password}`,
    `application_name=${options.applicationName ?? options.slot}`,
  ].join(' ');
  return {
    wal_level: 'replica',
    // A standby does not archive; should it ever be promoted it must not write into the primary's archive.
    archive_mode: false,
    max_wal_senders: 10,
    max_replication_slots: 10,
    hot_standby: true,
    hot_standby_feedback: true,
    primary_conninfo: conninfo,
    primary_slot_name: options.slot,
    ...(options.durable ? {} : NON_DURABLE_SETTINGS),
  };
}

/** A password for a local superuser: hex, so it needs no quoting in a URL, a conninfo string or SQL. */
export function generatePassword(): string {
  return randomBytes(24).toString('hex');
}

/**
 * Who may connect: SCRAM with the generated password for everyone, over loopback TCP and the private socket; never
 * `trust`, which let any local account in as superuser (and run programs as postgres through COPY … TO PROGRAM).
 */
export const PG_HBA = [
  '# Written by keycloak-backup at every start; edits are overwritten.',
  'local   all          all                scram-sha-256',
  'host    all          all  127.0.0.1/32  scram-sha-256',
  'local   replication  all                scram-sha-256',
  'host    replication  all  127.0.0.1/32  scram-sha-256',
  '',
].join('\n');

// ---------------------------------------------------------------------------------------------------------------
// The cluster

export interface ClusterOptions {
  /** For messages: primary, replica, drill-… */
  name: string;
  /** Holds data/, run/ (socket) and postgres.log; owned by the server user. */
  baseDir: string;
  binaries: PgBinaries;
  port: number;
  /** Pick another port if the chosen one is taken when starting (false when others already rely on it). */
  portFlexible?: boolean;
  /**
   * The superuser's password; a fresh one when absent (a throwaway cluster, or a restored copy, whose roles and
   * passwords are its source's).
   */
  password?: string;
  /** How long `pg_ctl start -w` waits for connections: a restored copy replays WAL first. Default 120. */
  startTimeoutSeconds?: number;
  log?: (line: string) => void;
  /**
   * Seconds a shutdown may take before SIGQUIT, and then seconds more for the server to go before stop() fails (at
   * most 30, 10 for an immediate one). Default 60: a checkpoint of a large cluster takes a while.
   */
  stopTimeoutSeconds?: number;
}

export type ClusterStatus = { state: 'running'; pid: number; port: number } | { state: 'stopped' };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether this process can read /proc (Linux, mounted): without it neither state nor identity can be seen. */
let procReadable: boolean | undefined;
function canReadProc(): boolean {
  procReadable ??= process.platform === 'linux' && existsSync('/proc/self/stat');
  return procReadable;
}

/**
 * Whether a process runs. A zombie does not: a postmaster that pg_ctl started is reparented to PID 1, which in some
 * containers reaps exited children only now and then, so a stopped server can linger as a zombie for seconds.
 * Where /proc cannot be read, the signal's answer stands (it exists): a server is never taken for stopped unseen.
 */
export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it runs, but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (!canReadProc()) return true;
  const stat = readProcStat(pid);
  // /proc works but has no entry: the process exited between the signal and the read.
  return stat !== undefined && stat.state !== 'Z';
}

/** Field 3 of /proc/<pid>/stat: "pid (comm) S ...", the state after the last parenthesis (comm may hold any). */
function readProcStat(pid: number): { state: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return { state: text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3) };
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is the postmaster of `dataDir`: it runs, in that directory (the postmaster chdirs there). After a
 * crash and a reboot a recorded pid may belong to anything. Without /proc, a running pid is taken as it.
 */
export async function isPostmasterOf(pid: number, dataDir: string): Promise<boolean> {
  if (!isProcessRunning(pid)) return false;
  if (!canReadProc()) return true;
  try {
    const [cwd, data] = await Promise.all([readlink(`/proc/${pid}/cwd`), realpath(dataDir)]);
    return cwd === data;
  } catch {
    return false;
  }
}

/** The last `lines` lines a server logged into `file` from byte `offset` on; empty when there is no log. */
export async function logTail(
  file: string,
  options: { offset?: number; lines?: number } = {},
): Promise<string> {
  try {
    const text = (await readFile(file)).subarray(options.offset ?? 0).toString('utf8');
    return text
      .trim()
      .split('\n')
      .slice(-(options.lines ?? 20))
      .join('\n');
  } catch {
    return '';
  }
}

/** Waits until `pid` has exited (or is a zombie); false when it still runs after `timeoutMs`. */
async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  for (let waited = 0; isProcessRunning(pid); waited += 100) {
    if (waited >= timeoutMs) return false;
    await sleep(100);
  }
  return true;
}

export class LocalPostgresCluster {
  readonly name: string;
  readonly baseDir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly binaries: PgBinaries;
  port: number;
  readonly password: string;
  private readonly portFlexible: boolean;
  private readonly startTimeoutSeconds: number;
  private readonly log: (line: string) => void;
  private readonly stopTimeoutSeconds: number;
  /** The postmaster we started or adopted, for a synchronous last-resort signal at process exit. */
  private knownPid: number | undefined;
  /** The shutdown in progress, shared by every caller meanwhile. */
  private stopping: Promise<void> | undefined;

  constructor(options: ClusterOptions) {
    this.name = options.name;
    this.baseDir = path.resolve(options.baseDir);
    this.dataDir = path.join(this.baseDir, 'data');
    this.socketDir = path.join(this.baseDir, 'run');
    this.logFile = path.join(this.baseDir, 'postgres.log');
    this.binaries = options.binaries;
    this.port = options.port;
    this.portFlexible = options.portFlexible ?? false;
    this.startTimeoutSeconds = options.startTimeoutSeconds ?? 120;
    this.password = options.password ?? generatePassword();
    this.log = options.log ?? (() => {});
    this.stopTimeoutSeconds = options.stopTimeoutSeconds ?? 60;
  }

  /** A URL for the local superuser with its password: never print or log it (see connect.ts redact). */
  url(database = 'postgres'): string {
    return `postgres://${LOCAL_SUPERUSER}:${this.password}@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  async isInitialized(): Promise<boolean> {
    try {
      await stat(path.join(this.dataDir, 'PG_VERSION'));
      return true;
    } catch {
      return false;
    }
  }

  /** The major version the data directory was created with. */
  async dataMajor(): Promise<number> {
    return Number((await readFile(path.join(this.dataDir, 'PG_VERSION'), 'utf8')).trim());
  }

  /**
   * Creates the data directory: superuser `postgres` with this cluster's password, SCRAM for every connection
   * (PG_HBA). The password reaches initdb through a 0600 file of the server user's, removed right after.
   */
  async initdb(options: { durable: boolean }): Promise<void> {
    await this.makeDirs();
    this.log(`${this.name}: initdb`);
    const passwordFile = path.join(this.baseDir, 'initdb.pw');
    await writeServerFile(passwordFile, `${this.password}\n`);
    try {
      await runPgProgram(
        this.binaries,
        'initdb',
        [
          '-D',
          this.dataDir,
          '-U',
          LOCAL_SUPERUSER,
          '--auth=scram-sha-256',
          `--pwfile=${passwordFile}`,
          '--encoding=UTF8',
          '--locale=C',
          ...(options.durable ? [] : ['--no-sync']),
        ],
        { asServer: true, cwd: this.baseDir },
      );
    } finally {
      await rm(passwordFile, { force: true });
    }
    await this.writeHba();
  }

  /** Replaces pg_hba.conf with PG_HBA; read at the next start or reload. */
  async writeHba(): Promise<void> {
    await writeServerFile(path.join(this.dataDir, 'pg_hba.conf'), PG_HBA);
  }

  /** Sets the superuser's password to this cluster's (a cluster made before SCRAM, still on trust). */
  async setSuperuserPassword(): Promise<void> {
    // Hex only (generatePassword), so the literal needs no escaping; ALTER ROLE takes no parameters.
    if (!/^[0-9a-f]+$/.test(this.password)) throw new Error('unexpected password format');
    await this.query(`alter role ${LOCAL_SUPERUSER} password '${this.password}'`);
  }

  /** Makes a running server re-read pg_hba.conf and its settings. */
  async reload(): Promise<void> {
    await this.query('select pg_reload_conf()');
  }

  /** Makes this cluster a copy of `source` taken with pg_basebackup through `slot`, to be started as a standby. */
  async baseBackupFrom(
    source: LocalPostgresCluster,
    options: { slot: string; durable: boolean },
  ): Promise<void> {
    await this.makeDirs();
    await rm(this.dataDir, { recursive: true, force: true });
    this.log(`${this.name}: pg_basebackup from ${source.name}`);
    await runPgProgram(
      this.binaries,
      'pg_basebackup',
      [
        '-d',
        `host=127.0.0.1 port=${source.port} user=${LOCAL_SUPERUSER}`,
        '-D',
        this.dataDir,
        '-X',
        'stream',
        '-S',
        options.slot,
        '-c',
        'fast',
        ...(options.durable ? [] : ['--no-sync']),
      ],
      { asServer: true, cwd: this.baseDir, timeoutMs: 600_000, env: { PGPASSWORD: source.password } },
    );
    // Not `-R`: it would pin the primary's current port in postgresql.auto.conf, which overrides our settings
    // file; the connection is written by writeSettings() before every start instead.
    await writeServerFile(path.join(this.dataDir, 'standby.signal'), '');
  }

  /** Replaces our settings file (included from postgresql.conf); takes effect at the next start. */
  async writeSettings(settings: Settings): Promise<void> {
    const lines = settingsLines(settings);
    await writeServerFile(
      path.join(this.dataDir, SETTINGS_FILE),
      `# Written by keycloak-backup's local stack at every start; edits are overwritten.\n${lines.join('\n')}\n`,
    );
    const mainConf = path.join(this.dataDir, 'postgresql.conf');
    const current = await readFile(mainConf, 'utf8');
    const include = `include_if_exists = '${SETTINGS_FILE}'`;
    if (!current.includes(include)) {
      await writeServerFile(mainConf, `${current.trimEnd()}\n\n${include}\n`);
    }
  }

  /** Whether the postmaster of this data directory runs, by the pid in its postmaster.pid. */
  async status(): Promise<ClusterStatus> {
    const lock = await this.readLockFile();
    if (lock && (await isPostmasterOf(lock.pid, this.dataDir)))
      return { state: 'running', pid: lock.pid, port: lock.port };
    return { state: 'stopped' };
  }

  async pid(): Promise<number | undefined> {
    const status = await this.status();
    return status.state === 'running' ? status.pid : undefined;
  }

  /** Starts the cluster and waits until it accepts connections; adopts it if it is already running. */
  async start(): Promise<void> {
    const status = await this.status();
    if (status.state === 'running') {
      this.log(`${this.name}: already running (pid ${status.pid}, port ${status.port})`);
      this.port = status.port;
      this.knownPid = status.pid;
      return;
    }
    await this.removeStaleLockFile();
    for (let attempt = 1; ; attempt++) {
      const logOffset = await this.logSize();
      try {
        await this.pgCtlStart();
        break;
      } catch (error) {
        const tail = await logTail(this.logFile, { offset: logOffset });
        const portTaken = /could not bind|Address already in use|could not create any TCP\/IP sockets/i.test(
          tail,
        );
        if (portTaken && this.portFlexible && attempt < 3) {
          const next = await freePort();
          this.log(`${this.name}: port ${this.port} was taken, retrying on ${next}`);
          this.port = next;
          continue;
        }
        throw new DatabaseUnavailableError(
          `the local ${this.name} cluster did not start: ${(error as Error).message}`,
          {
            cause: error,
            hint: `see ${this.logFile}; last lines: ${tail.split('\n').slice(-5).join(' | ')}`,
          },
        );
      }
    }
    this.knownPid = await this.pid();
    this.log(`${this.name}: running on 127.0.0.1:${this.port} (pid ${this.knownPid})`);
  }

  /**
   * Stops the server; idempotent. `fast` rolls back open transactions and checkpoints; `immediate` (a restored copy
   * about to be deleted: nothing in it is worth a checkpoint) also ends a server that ignores SIGQUIT with SIGKILL.
   * Callers at the same time share one shutdown, in the first caller's mode: two would each run a `pg_ctl stop`, and
   * the slower one could outlive a process that exits after the first (an interrupted command's cleanup and the
   * command's own `finally` both stop the stack).
   */
  stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    this.stopping ??= this.stopOnce(mode).finally(() => {
      this.stopping = undefined;
    });
    return this.stopping;
  }

  private async stopOnce(mode: 'fast' | 'immediate'): Promise<void> {
    const status = await this.status();
    if (status.state !== 'running') {
      this.knownPid = undefined;
      return;
    }
    try {
      await runPgProgram(
        this.binaries,
        'pg_ctl',
        ['-D', this.dataDir, '-m', mode, '-w', '-t', String(this.stopTimeoutSeconds), 'stop'],
        {
          asServer: true,
          cwd: this.baseDir,
          timeoutMs: (this.stopTimeoutSeconds + 30) * 1000,
        },
      );
    } catch (error) {
      // pg_ctl could not stop it in time: immediate shutdown (crash-safe, recovery runs at the next start).
      this.log(`${this.name}: ${mode} shutdown failed (${(error as Error).message}); sending SIGQUIT`);
      if (isProcessRunning(status.pid)) process.kill(status.pid, 'SIGQUIT');
    }
    const patience = Math.min(mode === 'fast' ? 30 : 10, this.stopTimeoutSeconds) * 1000;
    if (!(await waitForExit(status.pid, patience)) && mode === 'immediate') {
      this.log(`${this.name}: pid ${status.pid} ignored SIGQUIT; sending SIGKILL`);
      process.kill(status.pid, 'SIGKILL');
      await waitForExit(status.pid, 5_000);
    }
    if (isProcessRunning(status.pid)) {
      throw new DatabaseUnavailableError(`the local ${this.name} cluster (pid ${status.pid}) did not stop`, {
        hint: `kill ${status.pid} by hand`,
      });
    }
    this.knownPid = undefined;
    this.log(`${this.name}: stopped`);
  }

  /**
   * Last resort at process exit, where nothing asynchronous runs: SIGINT asks the postmaster for a fast shutdown,
   * which it completes on its own after we are gone.
   */
  signalStopSync(): void {
    const pid = this.knownPid;
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      // already gone
    }
  }

  /** Runs one statement over a short-lived connection. */
  async query<T extends Record<string, unknown>>(
    sql: string,
    params: readonly unknown[] = [],
    database = 'postgres',
  ): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.url(database) });
    // A server killed between statements emits 'error' (uncaught otherwise); the statement itself reports it.
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      throw new DatabaseUnavailableError(
        `cannot connect to the local ${this.name} cluster (database ${database})`,
        {
          cause: error,
          hint: `is it running? see ${this.logFile}`,
        },
      );
    }
    try {
      const result = await client.query<T>(sql, params as unknown[]);
      return result.rows;
    } finally {
      await client.end();
    }
  }

  /** Creates a physical replication slot unless it exists (it keeps the WAL a stopped replica still needs). */
  async ensureReplicationSlot(slot: string): Promise<void> {
    await this.query(
      `select pg_create_physical_replication_slot($1)
        where not exists (select 1 from pg_replication_slots where slot_name = $1)`,
      [slot],
    );
  }

  /**
   * Waits until this standby has replayed everything `primary` has committed so far. The insert position, not
   * pg_current_wal_lsn() (what is written out): with synchronous_commit off (NON_DURABLE_SETTINGS) a commit
   * returns before its WAL is written, and the standby could be "caught up" without it.
   */
  async waitForReplayOf(primary: LocalPostgresCluster, timeoutMs = 60_000): Promise<void> {
    const [row] = await primary.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn');
    const lsn = row?.lsn;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [replay] = await this.query<{ done: boolean | null; replayed: string | null }>(
        'select pg_last_wal_replay_lsn() >= $1::pg_lsn as done, pg_last_wal_replay_lsn()::text as replayed',
        [lsn],
      );
      if (replay?.done) return;
      if (Date.now() > deadline) {
        throw new DatabaseUnavailableError(
          `the local ${this.name} did not replay up to ${lsn} within ${timeoutMs / 1000} s (at ${replay?.replayed ?? 'nothing'})`,
          { hint: `see ${this.logFile} and ${primary.logFile}` },
        );
      }
      await sleep(50);
    }
  }

  /** Deletes the cluster's files; it must be stopped. */
  async remove(): Promise<void> {
    await this.stop();
    await rm(this.baseDir, { recursive: true, force: true });
  }

  // -------------------------------------------------------------------------------------------------------------

  /** Creates the base folder and the socket folder, the server user's. */
  async makeDirs(): Promise<void> {
    await makeServerDir(this.baseDir);
    await makeServerDir(this.socketDir);
  }

  private async pgCtlStart(): Promise<void> {
    const socketDir = this.socketDir.length <= MAX_SOCKET_DIR ? this.socketDir : '';
    // pg_ctl hands -o to a shell: quote the socket path.
    const serverOptions = [
      `-p ${this.port}`,
      `-c listen_addresses=127.0.0.1`,
      `-c unix_socket_directories=${shellQuote(socketDir)}`,
    ].join(' ');
    await runPgProgram(
      this.binaries,
      'pg_ctl',
      [
        '-D',
        this.dataDir,
        '-l',
        this.logFile,
        '-w',
        '-t',
        String(this.startTimeoutSeconds),
        '-o',
        serverOptions,
        'start',
      ],
      { asServer: true, cwd: this.baseDir, timeoutMs: (this.startTimeoutSeconds + 30) * 1000 },
    );
  }

  private async readLockFile(): Promise<{ pid: number; port: number } | undefined> {
    let text: string;
    try {
      text = await readFile(path.join(this.dataDir, 'postmaster.pid'), 'utf8');
    } catch {
      return undefined;
    }
    const lines = text.split('\n');
    const pid = Number(lines[0]);
    const port = Number(lines[3]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return { pid, port: Number.isInteger(port) && port > 0 ? port : this.port };
  }

  /**
   * postmaster.pid left by a crash. postgres itself copes when the recorded pid is gone, but not when it is a
   * zombie (not yet reaped by PID 1) or was reused by an unrelated process: it then refuses to start ("lock file
   * already exists"). So once the postmaster is known dead, its orphaned children are waited for (they exit when
   * they notice the postmaster died) and the lock file is removed here.
   */
  private async removeStaleLockFile(): Promise<void> {
    const lock = await this.readLockFile();
    if (!lock) return;
    if (!canReadProc() && isProcessRunning(lock.pid)) return;
    const orphans = await this.processesInDataDir();
    for (let waited = 0; orphans.some(isProcessRunning) && waited < 10_000; waited += 100) await sleep(100);
    for (const pid of orphans.filter(isProcessRunning)) {
      // A child of a dead postmaster serves nobody and would share memory with the new server: end it.
      this.log(`${this.name}: ending orphaned server process ${pid}`);
      process.kill(pid, 'SIGKILL');
    }
    this.log(`${this.name}: removing stale postmaster.pid (pid ${lock.pid} is gone)`);
    await rm(path.join(this.dataDir, 'postmaster.pid'), { force: true });
    // The socket directory is this cluster's alone: its socket and socket lock file are just as stale.
    const leftovers = await readdir(this.socketDir).catch(() => [] as string[]);
    await Promise.all(leftovers.map((name) => rm(path.join(this.socketDir, name), { force: true })));
  }

  /** Running processes whose working directory is this data directory (postgres processes chdir there). */
  private async processesInDataDir(): Promise<number[]> {
    if (!canReadProc()) return [];
    const data = await realpath(this.dataDir);
    const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
    const found: number[] = [];
    await Promise.all(
      pids.map(async (pid) => {
        try {
          if ((await readlink(`/proc/${pid}/cwd`)) === data && isProcessRunning(pid)) found.push(pid);
        } catch {
          // gone, or not ours to inspect
        }
      }),
    );
    return found;
  }

  private async logSize(): Promise<number> {
    try {
      return (await stat(this.logFile)).size;
    } catch {
      return 0;
    }
  }
}
