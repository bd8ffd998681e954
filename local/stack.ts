// The local stack: a PostgreSQL primary with a WAL archive, its streaming hot standby, s3rver and the key file.
import { constants } from 'node:fs';
import { access, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInterruptCleanups } from '../functions/adapters/interrupt.js';
import { ensureKeyFile } from '../functions/adapters/local/key-file.js';
import { sweepLeftoverCopies } from '../functions/adapters/local/local-pitr.js';
import {
  allowServerTraversal,
  generatePassword,
  isProcessRunning,
  LOCAL_SUPERUSER,
  LocalPostgresCluster,
  makeServerDir,
  primarySettings,
  replicaSettings,
  reusablePort,
} from '../functions/adapters/local/postgres-cluster.js';
import {
  type FindOptions,
  findPgBinaries,
  type PgBinaries,
} from '../functions/adapters/postgres/binaries.js';
import { ConfigurationError } from '../functions/core/errors.js';
import type { PgVersion } from '../functions/core/versions.js';
import { FIXTURE_OWNER, loadKeycloakFixture } from './fixture.js';
import {
  LOCAL_S3_CREDENTIALS,
  type LocalS3Server,
  startS3Server,
  storedManifestFingerprints,
} from './s3-server.js';

export const STACK_DATABASE = 'keycloak';
export const STACK_TARGET = 'keycloak';
export const PRIMARY_BUCKET = 'kb-primary';
export const DR_BUCKET = 'kb-dr';
export const PRIMARY_REGION = 'eu-west-1';
export const DR_REGION = 'eu-central-1';
/** The physical replication slot the replica streams through. */
export const REPLICA_SLOT = 'kb_replica';

const STATE_FILE = 'stack.json';
const STATE_VERSION = 1;

/** `<repo>/.local`, git-ignored. */
export function defaultStateDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '.local');
}

export interface LocalStackOptions {
  stateDir: string;
  /** Load the Keycloak fixture into the database when it has not been loaded yet. */
  seed?: boolean;
  /** false = fsync off: fast, and lost on a machine crash; for test stacks only. Default true. */
  durable?: boolean;
  /** Directory of the PostgreSQL programs (KB_PG_BIN_DIR); searched for when absent. */
  pgBinDir?: string;
  fixturePath?: string;
  log?: (line: string) => void;
  /** Stop the stack on SIGINT/SIGTERM and signal its servers at process exit. Default true. */
  handleSignals?: boolean;
  /** Seconds each server's fast shutdown may take before SIGQUIT (LocalPostgresCluster's stopTimeoutSeconds). */
  stopTimeoutSeconds?: number;
}

export interface LocalStack {
  readonly primaryUrl: string;
  readonly replicaUrl: string;
  readonly database: string;
  readonly s3Endpoint: string;
  readonly primaryBucket: string;
  readonly drBucket: string;
  readonly keyFile: string;
  readonly walArchiveDir: string;
  readonly stateDir: string;
  readonly binaries: PgBinaries;
  readonly primary: LocalPostgresCluster;
  readonly replica: LocalPostgresCluster;
  /** The environment for functions/platform/config.ts parseConfig, plus s3rver's fixed (non-secret) credentials. */
  env(): Record<string, string>;
  /** Waits until the replica has replayed everything written on the primary so far. */
  waitForReplay(timeoutMs?: number): Promise<void>;
  /** Stops the replica, the primary and s3rver; idempotent. */
  stop(): Promise<void>;
}

interface StackState {
  version: number;
  pgMajor: number;
  primaryPort?: number;
  replicaPort?: number;
  s3Port?: number;
  /** The first run finished: primary initialised, database created, replica made. */
  ready: boolean;
  seeded: boolean;
  /** The clusters were made with (or moved to) SCRAM and the password in PASSWORD_FILE. */
  scram?: boolean;
}

/** The clusters' superuser password, in libpq's pass-file format (PGPASSFILE), mode 0600. */
export const PASSWORD_FILE = 'pgpass';

/** The stack's superuser password: read from PASSWORD_FILE, or made and written there on the first run. */
async function stackPassword(stateDir: string, mustExist: boolean): Promise<string> {
  const file = path.join(stateDir, PASSWORD_FILE);
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  const stored = text?.split('\n')[0]?.split(':')[4];
  if (stored && /^[0-9a-f]{16,}$/.test(stored)) return stored;
  if (text !== undefined || mustExist) {
    throw new ConfigurationError(
      `the local clusters' password file ${file} is ${text === undefined ? 'missing' : 'not one this stack wrote'}`,
      {
        hint: `restore it from a copy (the clusters admit nobody without it), or start afresh with \`keycloak-backup --state-dir ${shellArg(stateDir)} reset-local --yes\``,
      },
    );
  }
  const password = generatePassword();
  const lines = ['127.0.0.1', 'localhost'].map((host) => `${host}:*:*:${LOCAL_SUPERUSER}:${password}`);
  await writeFile(file, `${lines.join('\n')}\n`, { mode: 0o600, flag: 'wx' });
  return password;
}

type StateRead =
  | { kind: 'absent' }
  | { kind: 'ok'; state: StackState }
  | { kind: 'unreadable'; reason: string };

async function readState(stateDir: string): Promise<StateRead> {
  let text: string;
  try {
    text = await readFile(path.join(stateDir, STATE_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    return { kind: 'unreadable', reason: (error as Error).message };
  }
  let state: StackState;
  try {
    state = JSON.parse(text) as StackState;
  } catch {
    return { kind: 'unreadable', reason: 'it is not valid JSON (truncated?)' };
  }
  if (typeof state !== 'object' || state === null)
    return { kind: 'unreadable', reason: 'it is not an object' };
  if (state.version !== STATE_VERSION) {
    return {
      kind: 'unreadable',
      reason: `it has state version ${String(state.version)}, this program reads version ${STATE_VERSION}`,
    };
  }
  return { kind: 'ok', state };
}

/** What to run when the state file does not describe the clusters on disk: never done silently. */
function repairHint(stateDir: string): string {
  const dir = shellArg(stateDir);
  return (
    `nothing was changed. If the clusters in ${stateDir} are the ones this stack made, rewrite the state file from ` +
    `them with \`keycloak-backup --state-dir ${dir} repair-state\` (deletes nothing); to throw the clusters and ` +
    `the WAL archive away and start afresh, run \`keycloak-backup --state-dir ${dir} reset-local --yes\` ` +
    '(the key file and the buckets are kept)'
  );
}

function shellArg(text: string): string {
  return /^[\w./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

async function writeState(stateDir: string, state: StackState): Promise<void> {
  const file = path.join(stateDir, STATE_FILE);
  await writeFile(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

/**
 * One process per state directory: a second one would adopt the first one's servers and stop them under it.
 * The lock names its pid, so a lock left by a dead process is taken over.
 */
async function lockStateDir(stateDir: string): Promise<() => Promise<void>> {
  const lock = path.join(stateDir, 'stack.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lock, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return async () => {
        await rm(lock, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isProcessRunning(holder)) {
        throw new ConfigurationError(`the local stack in ${stateDir} is in use by process ${holder}`, {
          hint: `stop that process first, or use another state directory`,
        });
      }
      await rm(lock, { force: true });
    }
  }
  throw new ConfigurationError(`cannot lock the local stack in ${stateDir}`, { hint: 'try again' });
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Cleanup when the process is interrupted or dies

const liveStacks = new Set<{
  stop(): Promise<void>;
  signalStopSync(): void;
  /** Removes plaintext spools and uploads in progress; lines saying what went. */
  removeLeftovers(): Promise<string[]>;
}>();
let handlersInstalled = false;

function onExit(): void {
  for (const stack of liveStacks) stack.signalStopSync();
}

/**
 * Ctrl-C or SIGTERM: the command's programs and half-made copies are stopped (adapters registered them with
 * onInterrupt), the servers stopped, plaintext spools and uploads in progress removed, and the user told what went.
 * A second Ctrl-C meanwhile ends the process at once (the handlers are `once`); the next start sweeps what is left.
 */
async function onSignal(signal: NodeJS.Signals): Promise<void> {
  process.stderr.write(`\ninterrupted (${signal}): stopping what this command started\n`);
  const lines = await runInterruptCleanups();
  const stacks = [...liveStacks];
  const stopped = await Promise.allSettled(stacks.map((stack) => stack.stop()));
  const failed = stopped.find((result) => result.status === 'rejected');
  // Only what is true: a server that did not stop (a hung replica) is named, not covered by "stopped".
  lines.push(
    failed ? `the local stack did not stop: ${(failed.reason as Error).message}` : 'stopped the local stack',
  );
  for (const stack of stacks) lines.push(...(await stack.removeLeftovers().catch(() => [])));
  for (const line of lines) process.stderr.write(`  ${line}\n`);
  uninstallHandlers();
  // Die of the same signal, as if we had not caught it.
  process.kill(process.pid, signal);
}

const onSigint = () => void onSignal('SIGINT');
const onSigterm = () => void onSignal('SIGTERM');

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', onExit);
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigterm);
}

function uninstallHandlers(): void {
  if (!handlersInstalled) return;
  handlersInstalled = false;
  process.off('exit', onExit);
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigterm);
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * Brings the local stack up. The first run creates everything in `stateDir` (and loads the fixture when `seed`);
 * later runs start what is there. A first run that failed half-way is cleared and redone, keeping the key file and
 * the buckets.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const log = options.log ?? (() => {});
  const durable = options.durable ?? true;
  const stateDir = await prepareStateDir(options.stateDir);
  // The postgres user (when we are root) must pass through to its own folders inside.
  await allowServerTraversal(stateDir);

  const findOptions: FindOptions = { server: true };
  const binaries = await findBinariesFor(stateDir, options.pgBinDir, findOptions);
  const serverVersion = await binaries.version('postgres');
  log(`postgresql ${serverVersion.full} from ${binaries.dir}`);

  const keyFile = path.join(stateDir, 'local.key');
  // Only a true first run (no backups stored) creates the key: a new key over old backups could read none of them.
  await ensureKeyFile(keyFile, {
    storedBackups: () => storedManifestFingerprints(path.join(stateDir, 's3')),
  });
  const unlock = await lockStateDir(stateDir);
  try {
    return await startLocked(options, { stateDir, binaries, serverVersion, keyFile, durable, log, unlock });
  } catch (error) {
    await unlock();
    throw error;
  }
}

/**
 * Checks and creates the state folder. An empty name would put the whole stack (key included) in the current
 * folder; Node's recursive mkdir spins forever under /proc, so the folders are made one level at a time.
 */
export async function prepareStateDir(dir: string): Promise<string> {
  if (dir.trim() === '') {
    throw new ConfigurationError(
      'the local state folder is empty (--state-dir "" or KB_LOCAL_STATE_DIR="")',
      {
        hint: 'give a folder, e.g. --state-dir ./.local, or leave the option out for the default',
      },
    );
  }
  const stateDir = path.resolve(dir);
  const missing: string[] = [];
  let current = stateDir;
  for (;;) {
    const info = await stat(current).catch((error: NodeJS.ErrnoException) => error);
    if (!(info instanceof Error)) {
      if (!info.isDirectory()) {
        throw new ConfigurationError(
          `the local state folder ${stateDir} cannot be made: ${current} is not a folder`,
          {
            hint: 'choose another --state-dir',
          },
        );
      }
      break;
    }
    if (info.code !== 'ENOENT' || path.dirname(current) === current) {
      throw new ConfigurationError(`the local state folder ${stateDir} cannot be made: ${info.message}`, {
        hint: 'choose another --state-dir',
      });
    }
    missing.unshift(current);
    current = path.dirname(current);
  }
  for (const folder of missing) {
    try {
      await mkdir(folder, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new ConfigurationError(
        `the local state folder ${stateDir} cannot be made: ${(error as Error).message}`,
        { cause: error, hint: 'choose a --state-dir in a folder you can write to' },
      );
    }
  }
  try {
    await access(stateDir, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new ConfigurationError(`the local state folder ${stateDir} is not writable`, {
      cause: error,
      hint: 'choose a --state-dir in a folder you can write to',
    });
  }
  return stateDir;
}

/**
 * Writes a new state file from the clusters on disk (after a truncated or outdated one): deletes nothing, starts
 * nothing. The ports are picked afresh at the next start.
 */
export async function repairStackState(dir: string, log: (line: string) => void = () => {}): Promise<void> {
  const stateDir = await prepareStateDir(dir);
  const unlock = await lockStateDir(stateDir);
  try {
    const primaryData = path.join(stateDir, 'primary', 'data');
    const replicaData = path.join(stateDir, 'replica', 'data');
    const major = (await readFile(path.join(primaryData, 'PG_VERSION'), 'utf8').catch(() => '')).trim();
    if (!/^\d+$/.test(major) || !(await exists(path.join(replicaData, 'PG_VERSION')))) {
      throw new ConfigurationError(
        `${stateDir} does not hold both a primary and a replica cluster to describe`,
        {
          hint: `start afresh with \`keycloak-backup --state-dir ${shellArg(stateDir)} reset-local --yes\` (the key file and the buckets are kept)`,
        },
      );
    }
    const previous = await readState(stateDir);
    if (previous.kind === 'unreadable') {
      const aside = path.join(stateDir, `${STATE_FILE}.unreadable-${Date.now()}`);
      await rename(path.join(stateDir, STATE_FILE), aside);
      log(`the unreadable state file was kept as ${aside}`);
    }
    // Seeded: a finished first run loads the fixture before it is marked ready, and a user's own data counts too.
    await writeState(stateDir, { version: STATE_VERSION, pgMajor: Number(major), ready: true, seeded: true });
    log(`state file rewritten: primary and replica of PostgreSQL ${major} in ${stateDir}`);
  } finally {
    await unlock();
  }
}

/**
 * Stops and deletes the local clusters, their WAL archive, drill and recovery copies and spools: only when the
 * user asked for exactly that (`reset-local --yes`). The key file and the buckets stay.
 */
export async function resetLocalStack(dir: string, log: (line: string) => void = () => {}): Promise<void> {
  const stateDir = await prepareStateDir(dir);
  const unlock = await lockStateDir(stateDir);
  try {
    const binaries = await findBinariesFor(stateDir, undefined, { server: true }).catch(() => undefined);
    // Drill and recovery copies live in drills/<id>/data, the layout of a cluster's base folder.
    const drills = (await readdir(path.join(stateDir, 'drills')).catch(() => [] as string[])).map((id) =>
      path.join('drills', id),
    );
    for (const name of [...drills, 'replica', 'primary']) {
      const baseDir = path.join(stateDir, name);
      if (binaries && (await exists(path.join(baseDir, 'data')))) {
        await new LocalPostgresCluster({ name, baseDir, binaries, port: 0, log }).stop();
      }
    }
    for (const name of ['replica', 'primary', 'wal-archive', 'drills', 'tmp', STATE_FILE, PASSWORD_FILE]) {
      const target = path.join(stateDir, name);
      if (await exists(target)) {
        await rm(target, { recursive: true, force: true });
        log(`removed ${target}`);
      }
    }
  } finally {
    await unlock();
  }
}

/**
 * The programs for this state directory: an existing cluster can only be run by its own major version, so when
 * nothing is configured and the machine has several majors side by side, that one is preferred over the newest.
 */
async function findBinariesFor(stateDir: string, configured: string | undefined, options: FindOptions) {
  if (configured) return findPgBinaries(configured, options);
  const existingMajor = await readFile(path.join(stateDir, 'primary', 'data', 'PG_VERSION'), 'utf8').catch(
    () => undefined,
  );
  if (existingMajor && /^\d+$/.test(existingMajor.trim())) {
    try {
      return await findPgBinaries(`/usr/lib/postgresql/${existingMajor.trim()}/bin`, options);
    } catch {
      // not installed there: the search below finds what there is, and the version check explains the mismatch
    }
  }
  return findPgBinaries(undefined, options);
}

interface StartContext {
  stateDir: string;
  binaries: PgBinaries;
  serverVersion: PgVersion;
  keyFile: string;
  durable: boolean;
  log: (line: string) => void;
  unlock: () => Promise<void>;
}

/** What the steps of a start share once the password is known and the clusters are described. */
interface Start extends StartContext {
  options: LocalStackOptions;
  password: string;
  walArchiveDir: string;
  primary: LocalPostgresCluster;
  replica: LocalPostgresCluster;
}

/** The stack's servers while this process runs them (see trackServers). */
interface StackServers {
  /** Starts s3rver in the background; `s3()` awaits it. */
  startS3(preferredPort: number | undefined): void;
  s3(): Promise<LocalS3Server>;
  /** Stops the replica, the primary and s3rver, then releases the lock: once, whoever asks. */
  stop(): Promise<void>;
  /** A start that failed: the servers stopped and the signal handlers let go; the caller releases the lock. */
  abandon(): Promise<void>;
}

async function startLocked(options: LocalStackOptions, context: StartContext): Promise<LocalStack> {
  const { stateDir, binaries, log } = context;
  const walArchiveDir = path.join(stateDir, 'wal-archive');
  const read = await readState(stateDir);
  // A stack that was made with SCRAM cannot be reached without its password: that is never made up again.
  const password = await stackPassword(
    stateDir,
    read.kind === 'ok' && read.state.ready && read.state.scram === true,
  );
  const start: Start = {
    ...context,
    options,
    password,
    walArchiveDir,
    primary: stackCluster('primary', password, options, context),
    replica: stackCluster('replica', password, options, context),
  };
  const known = await checkStateAgainstDisk(read, start);
  await sweepInterruptedRun(stateDir, binaries, log);
  const servers = trackServers(start);

  let s3: LocalS3Server;
  try {
    await choosePorts(start, known);
    const state = known ? await startExisting(start, known, servers) : await createStack(start, servers);
    s3 = await servers.s3();
    log(`s3rver: ${s3.endpoint} (buckets ${PRIMARY_BUCKET}, ${DR_BUCKET})`);
    state.primaryPort = start.primary.port;
    state.replicaPort = start.replica.port;
    state.s3Port = s3.port;
    await writeState(stateDir, state);
  } catch (error) {
    await servers.abandon();
    throw error;
  }
  return stackHandle(start, s3, servers.stop);
}

function stackCluster(
  name: 'primary' | 'replica',
  password: string,
  options: LocalStackOptions,
  { stateDir, binaries, log }: StartContext,
): LocalPostgresCluster {
  return new LocalPostgresCluster({
    name,
    baseDir: path.join(stateDir, name),
    binaries,
    port: 0,
    // Nothing depends on the port before the stack is up: move on if it was taken in the meantime.
    portFlexible: true,
    password,
    log,
    ...(options.stopTimeoutSeconds ? { stopTimeoutSeconds: options.stopTimeoutSeconds } : {}),
  });
}

/**
 * The state file against the folders on disk: the state of a finished stack to start again, or undefined for a
 * first run. Anything that does not add up is refused with the way to repair it; a first run of ours that did not
 * finish is cleared.
 */
async function checkStateAgainstDisk(read: StateRead, start: Start): Promise<StackState | undefined> {
  const { stateDir, serverVersion, walArchiveDir, primary, replica, log } = start;
  const onDisk = {
    primary: await exists(primary.baseDir),
    replica: await exists(replica.baseDir),
    walArchive: await exists(walArchiveDir),
  };
  const holdsData = onDisk.primary || onDisk.replica || onDisk.walArchive;
  if (read.kind === 'unreadable') {
    throw new ConfigurationError(
      `the local stack's state file ${path.join(stateDir, STATE_FILE)} cannot be used: ${read.reason}`,
      { hint: repairHint(stateDir) },
    );
  }
  if (read.kind === 'absent') {
    if (holdsData) {
      throw new ConfigurationError(
        `${stateDir} holds clusters or a WAL archive but no state file (${STATE_FILE}): they are left alone`,
        { hint: repairHint(stateDir) },
      );
    }
    return undefined;
  }
  if (read.state.ready) {
    if (!(await primary.isInitialized()) || !(await replica.isInitialized())) {
      throw new ConfigurationError(
        `the state file says the local stack in ${stateDir} is set up, but the ${onDisk.primary ? 'replica' : 'primary'} cluster is missing`,
        { hint: repairHint(stateDir) },
      );
    }
    const dataMajor = await primary.dataMajor();
    if (dataMajor !== serverVersion.major) {
      throw new ConfigurationError(
        `the local stack in ${stateDir} was created with PostgreSQL ${dataMajor}, but the binaries found are ${serverVersion.full}`,
        {
          hint: `set KB_PG_BIN_DIR to the PostgreSQL ${dataMajor} bin directory, or delete ${stateDir} to start afresh`,
        },
      );
    }
    return read.state;
  }
  // Our own first run, recorded as unfinished before it created anything: the stack was never handed to anyone,
  // so what it made holds nothing but what it was making.
  log('a previous first run did not finish: clearing the clusters and WAL archive it was creating');
  await Promise.allSettled([replica.stop(), primary.stop()]);
  await Promise.all(
    [primary.baseDir, replica.baseDir, walArchiveDir].map((dir) => rm(dir, { recursive: true, force: true })),
  );
  return undefined;
}

/** A process that died (SIGKILL, a crash) could not clean up: what it left is swept now that we hold the lock. */
async function sweepInterruptedRun(
  stateDir: string,
  binaries: PgBinaries,
  log: (line: string) => void,
): Promise<void> {
  const swept = [...(await removeLeftovers(stateDir)), ...(await sweepLeftoverCopies(stateDir, binaries))];
  for (const line of swept) log(`an earlier run was interrupted: ${line}`);
}

/**
 * s3rver once started, one stop shared by every caller, and the entry the signal handlers stop on Ctrl-C (unless
 * options.handleSignals is false).
 */
function trackServers(start: Start): StackServers {
  const { stateDir, primary, replica, log, unlock } = start;
  // s3rver starts while the clusters do. Loading it blocks the event loop for a second (a large CommonJS tree), so
  // it is started once PostgreSQL has work of its own to do.
  let s3Starting: Promise<LocalS3Server> | undefined;
  const startS3 = (preferredPort: number | undefined) => {
    s3Starting = startS3Server({
      directory: path.join(stateDir, 's3'),
      buckets: [PRIMARY_BUCKET, DR_BUCKET],
      ...(preferredPort ? { preferredPort } : {}),
    });
    // Handled here for now; awaited (and so reported) once the clusters are up.
    s3Starting.catch(() => {});
  };
  const stopS3 = async () => (await s3Starting?.catch(() => undefined))?.stop();
  const stopAll = async () => {
    // The replica first (it streams from the primary); a replica that did not stop is a failure to report, not a
    // "local stack stopped" while it still runs.
    const results = [
      ...(await Promise.allSettled([replica.stop()])),
      ...(await Promise.allSettled([primary.stop(), stopS3()])),
    ];
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  };
  const forget = () => {
    liveStacks.delete(liveEntry);
    if (liveStacks.size === 0) uninstallHandlers();
  };

  // One stop for the command's own `finally` and an interruption's cleanup alike: both running stopAll would start
  // two `pg_ctl stop`s, and the process could exit (killed by its own signal) while the second still runs.
  let stopping: Promise<void> | undefined;
  const stopOnce = () => {
    stopping ??= (async () => {
      try {
        await stopAll();
        await unlock();
        log('local stack stopped');
      } finally {
        forget();
      }
    })();
    return stopping;
  };
  const liveEntry = {
    // Interrupted: the lock goes with the servers, so the next command finds the folder free.
    stop: stopOnce,
    removeLeftovers: () => removeLeftovers(stateDir),
    signalStopSync: () => {
      replica.signalStopSync();
      primary.signalStopSync();
    },
  };
  if (start.options.handleSignals ?? true) {
    liveStacks.add(liveEntry);
    installHandlers();
  }
  return {
    startS3,
    s3: async () => {
      if (!s3Starting) throw new Error('s3rver was never started');
      return s3Starting;
    },
    stop: stopOnce,
    abandon: async () => {
      await stopAll().catch(() => {});
      forget();
    },
  };
}

/** The ports the state file remembers when they are free, others when not. */
async function choosePorts({ primary, replica }: Start, state: StackState | undefined): Promise<void> {
  primary.port = await reusablePort(state?.primaryPort);
  replica.port = await reusablePort(state?.replicaPort);
  // Ports must differ even when the OS hands back the same just-released one.
  while (replica.port === primary.port) replica.port = await reusablePort(undefined);
}

async function seedFixture({ options, binaries, primary, serverVersion, log }: Start): Promise<void> {
  log('loading the Keycloak fixture');
  await loadKeycloakFixture({
    binaries,
    url: primary.url(STACK_DATABASE),
    serverMajor: serverVersion.major,
    ...(options.fixturePath ? { fixturePath: options.fixturePath } : {}),
  });
}

/**
 * The first run, recorded as unfinished before it makes anything: the primary with its WAL archive, the database
 * (and the fixture when asked), the replica from a base backup, streaming.
 */
async function createStack(start: Start, servers: StackServers): Promise<StackState> {
  const { stateDir, serverVersion, walArchiveDir, durable, password, primary, replica } = start;
  const state: StackState = {
    version: STATE_VERSION,
    pgMajor: serverVersion.major,
    ready: false,
    seeded: false,
    scram: true,
  };
  await writeState(stateDir, state);
  await makeServerDir(walArchiveDir);
  await primary.initdb({ durable });
  servers.startS3(undefined);
  await primary.writeSettings(primarySettings({ walArchiveDir, durable }));
  await primary.start();
  await primary.query(`create role ${FIXTURE_OWNER} login`);
  await primary.query(`create database ${STACK_DATABASE} owner ${FIXTURE_OWNER}`);
  if (start.options.seed) {
    await seedFixture(start);
    state.seeded = true;
  }
  await primary.ensureReplicationSlot(REPLICA_SLOT);
  await replica.baseBackupFrom(primary, { slot: REPLICA_SLOT, durable });
  await replica.writeSettings(
    replicaSettings({ primaryPort: primary.port, password, slot: REPLICA_SLOT, durable }),
  );
  await replica.start();
  await replica.waitForReplayOf(primary);
  state.ready = true;
  return state;
}

/** A later run: the clusters started as they are (moved to SCRAM if made before it), seeded if not yet. */
async function startExisting(start: Start, state: StackState, servers: StackServers): Promise<StackState> {
  const { stateDir, walArchiveDir, durable, password, primary, replica, log } = start;
  servers.startS3(state.s3Port);
  // A stack made before SCRAM still says trust in its pg_hba.conf: it keeps it until the password is set.
  const migrating = !state.scram;
  // Settings are rewritten at every start: the primary's port, and so the replica's connection, may change.
  await primary.writeSettings(primarySettings({ walArchiveDir, durable }));
  if (!migrating) await primary.writeHba();
  await primary.start();
  await replica.writeSettings(
    replicaSettings({ primaryPort: primary.port, password, slot: REPLICA_SLOT, durable }),
  );
  if (!migrating) await replica.writeHba();
  await replica.start();
  if (migrating) {
    log('setting a password on the local clusters and turning trust authentication off');
    await primary.setSuperuserPassword();
    await replica.waitForReplayOf(primary);
    await Promise.all([primary.writeHba(), replica.writeHba()]);
    await Promise.all([primary.reload(), replica.reload()]);
    state.scram = true;
    await writeState(stateDir, state);
  }
  if (start.options.seed && !state.seeded) {
    await seedFixture(start);
    state.seeded = true;
  }
  await replica.waitForReplayOf(primary);
  return state;
}

/** The started stack as its users see it. */
function stackHandle(start: Start, server: LocalS3Server, stop: () => Promise<void>): LocalStack {
  const { stateDir, binaries, keyFile, walArchiveDir, primary, replica } = start;
  return {
    primaryUrl: primary.url(STACK_DATABASE),
    replicaUrl: replica.url(STACK_DATABASE),
    database: STACK_DATABASE,
    s3Endpoint: server.endpoint,
    primaryBucket: PRIMARY_BUCKET,
    drBucket: DR_BUCKET,
    keyFile,
    walArchiveDir,
    stateDir,
    binaries,
    primary,
    replica,
    env() {
      return {
        KB_RUNTIME: 'local',
        KB_TARGETS: JSON.stringify([
          {
            name: STACK_TARGET,
            database: STACK_DATABASE,
            replica: replica.url(STACK_DATABASE),
            primary: primary.url(STACK_DATABASE),
          },
        ]),
        KB_S3_ENDPOINT: server.endpoint,
        KB_PRIMARY_BUCKET: PRIMARY_BUCKET,
        KB_DR_BUCKET: DR_BUCKET,
        KB_PRIMARY_REGION: PRIMARY_REGION,
        KB_DR_REGION: DR_REGION,
        KB_LOCAL_KEY_FILE: keyFile,
        KB_OUTBOX_FILE: path.join(stateDir, 'outbox.jsonl'),
        KB_LOCAL_STATE_DIR: stateDir,
        KB_PG_BIN_DIR: binaries.dir,
        KB_SCRATCH_DATABASE_URL: primary.url('postgres'),
        KB_LOCAL_WAL_ARCHIVE_DIR: walArchiveDir,
        AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
      };
    },
    waitForReplay: (timeoutMs?: number) => replica.waitForReplayOf(primary, timeoutMs),
    stop,
  };
}

/**
 * Plaintext spools in `<stateDir>/tmp` (decrypted archives) and multipart uploads in progress in the local S3 store.
 * Only called while this process holds the state folder's lock, so nothing else can be using them.
 */
async function removeLeftovers(stateDir: string): Promise<string[]> {
  const lines: string[] = [];
  const tmp = path.join(stateDir, 'tmp');
  for (const name of await readdir(tmp).catch(() => [] as string[])) {
    const file = path.join(tmp, name);
    const size = (await stat(file).catch(() => undefined))?.size ?? 0;
    await rm(file, { recursive: true, force: true });
    lines.push(`removed the spool ${file} (${(size / 1048576).toFixed(1)} MiB)`);
  }
  for (const bucket of [PRIMARY_BUCKET, DR_BUCKET]) {
    const uploads = path.join(stateDir, 's3', bucket, '._S3rver_uploads');
    for (const uploadId of await readdir(uploads).catch(() => [] as string[])) {
      await rm(path.join(uploads, uploadId), { recursive: true, force: true });
      lines.push(`aborted the unfinished upload ${uploadId} in ${bucket}`);
    }
  }
  return lines;
}

/** Runs `fn` with a started stack and always stops the stack afterwards. */
export async function withLocalStack<T>(
  options: LocalStackOptions,
  fn: (stack: LocalStack) => Promise<T>,
): Promise<T> {
  const stack = await startLocalStack(options);
  try {
    return await fn(stack);
  } finally {
    await stack.stop();
  }
}
