// The bench's set-up and tear-down: its stack and scratch restore cluster, the database grown to the size, the
// programs, their arguments and the worker.
import { mkdir, rm, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  freePort,
  LocalPostgresCluster,
  NON_DURABLE_SETTINGS,
} from '../functions/adapters/local/postgres-cluster.js';
import { compressionArguments, dumpCompression } from '../functions/adapters/postgres/pg-dump.js';
import { S3ObjectStore } from '../functions/adapters/s3-object-store.js';
import { describeError } from '../functions/core/errors.js';
import { targetPrefix } from '../functions/core/layout.js';
import type { PgVersion } from '../functions/core/versions.js';
import { type LocalStack, STACK_TARGET, startLocalStack } from '../local/stack.js';
import { type BenchSizeName, growKeycloakDatabase, SIZE_PRESETS } from './generate.js';
import type { BenchRun } from './options.js';
import type { WorkerJob, WorkerReport } from './pipeline-worker.js';
import { bundleWorker, LAMBDA_ENV, runWorker, say, stopChildrenSync, timeProcess } from './processes.js';

/** The servers a bench runs on, from startBench to stopBench. */
export interface BenchServers {
  stack: LocalStack;
  /** The standalone cluster the restores go into (see the method at the top of run.ts). */
  restoreCluster: LocalPostgresCluster;
  /** The stack's primary bucket, where the pipeline's dumps go. */
  store: S3ObjectStore;
  /** Scratch files (archives on disk), removed at the end. */
  work: string;
  /** fsync on, the stack's default: restores write to disk as a real server would. */
  durable: boolean;
  loadStart: number[];
  stopAtExit: () => void;
}

/** The database as measured and what every phase runs against it. */
export interface BenchSource {
  sizeBytes: number;
  sourceUsers: number;
  versions: { node: string; pgDump: string; pgRestore: string; postgres: string };
  pgDump: string;
  pgRestore: string;
  pgDumpVersion: PgVersion;
  /** pg_dump's arguments at a compression setting (the compression table's). */
  dumpArgs: (setting: string) => string[];
  /** What the pipeline's pg_dump gets: -Z0 when the pipeline compresses. */
  sameArgs: string[];
  /** What a user runs: pg_dump -Fc, no compression option. */
  defaultArgs: string[];
  uncompressedArgs: string[];
  /** sameArgs are the uncompressed ones already (the pipeline compresses outside pg_dump). */
  rawIsUncompressed: boolean;
  worker: (job: WorkerJob) => Promise<WorkerReport>;
}

/** Starts the bench's stack (made on the first run, reused after) and describes its scratch restore cluster. */
export async function startBench({ options, root }: BenchRun): Promise<BenchServers> {
  await mkdir(root, { recursive: true });
  await checkDisk(root, options.size);
  const loadStart = os.loadavg();
  say(`bench ${options.size} in ${root} (load average ${loadStart.map((l) => l.toFixed(1)).join(' ')})`);

  const durable = true;
  const stack = await startLocalStack({
    stateDir: root,
    seed: true,
    durable,
    log: (line) => say(`stack: ${line}`),
  });
  const restoreCluster = new LocalPostgresCluster({
    name: 'bench-restore',
    baseDir: path.join(root, 'bench-restore'),
    binaries: stack.binaries,
    port: await freePort(),
    portFlexible: true,
    // The stack's password, which outlives this run: a fresh one per run locked the next run out of the cluster.
    password: stack.primary.password,
    log: (line) => say(`stack: ${line}`),
  });
  const stopAtExit = () => {
    restoreCluster.signalStopSync();
    stopChildrenSync();
  };
  process.on('exit', stopAtExit);
  return {
    stack,
    restoreCluster,
    store: new S3ObjectStore({
      bucket: stack.primaryBucket,
      region: 'eu-west-1',
      endpoint: stack.s3Endpoint,
    }),
    work: path.join(root, 'bench-work'),
    durable,
    loadStart,
    stopAtExit,
  };
}

/**
 * The database grown to the size (only the missing rows) and replayed on the replica, the restore cluster started,
 * the bucket emptied, the programs and their arguments, the worker, and one warm-up dump.
 */
export async function prepareSource(run: BenchRun, servers: BenchServers): Promise<BenchSource> {
  const { options, root } = run;
  const { stack, restoreCluster, store, work, durable } = servers;
  say(`growing the database to ${options.size} (seed ${options.seed}; only the missing rows)`);
  const growth = await growKeycloakDatabase({
    url: stack.primaryUrl,
    size: options.size,
    seed: options.seed,
    log: {
      info: (message, ...attributes) =>
        say(`generate: ${message} ${JSON.stringify(Object.assign({}, ...attributes))}`),
    },
  });
  say(
    `database ${(growth.databaseBytes / 1048576).toFixed(0)} MiB, grown in ${(growth.durationMs / 1000).toFixed(0)} s; waiting for the replica`,
  );
  await stack.waitForReplay(30 * 60_000);
  const [sizeRow] = await stack.replica.query<{ bytes: string; version: string; users: string }>(
    `select pg_database_size(current_database())::text as bytes, current_setting('server_version') as version,
            (select count(*) from public.user_entity)::text as users`,
    [],
    stack.database,
  );

  await startRestoreCluster(restoreCluster, durable);
  // Only now: the PostgreSQL servers above were started from this thread and keep niceness 0.
  if (options.s3Nice > 0) os.setPriority(0, options.s3Nice);
  await mkdir(work, { recursive: true });
  await clearBucket(store);

  const pgDump = stack.binaries.path('pg_dump');
  const pgDumpVersion = await stack.binaries.version('pg_dump');
  const versions = {
    node: process.version,
    pgDump: pgDumpVersion.full,
    pgRestore: (await stack.binaries.version('pg_restore')).full,
    postgres: sizeRow!.version,
  };
  const dumpArgs = (setting: string) => [
    '--format=custom',
    '--no-password',
    ...compressionArguments(setting, pgDumpVersion.major).args,
    '--dbname',
    stack.replicaUrl,
  ];
  // The raw side gets what the pipeline's pg_dump gets: -Z0 when the pipeline compresses.
  const pipelinePgDumpArgs = dumpCompression(
    options.compression,
    options.zstdLevel,
    pgDumpVersion.major,
  ).pgDumpArgs;
  const sameArgs = ['--format=custom', '--no-password', ...pipelinePgDumpArgs, '--dbname', stack.replicaUrl];
  // What a user runs: pg_dump -Fc, no compression option (gzip at zlib's default level).
  const defaultArgs = ['--format=custom', '--no-password', '--dbname', stack.replicaUrl];
  const uncompressedArgs = dumpArgs('none');
  const workerEnv = {
    ...process.env,
    ...stack.env(),
    KB_DUMP_COMPRESSION: options.compression,
    KB_DUMP_ZSTD_LEVEL: String(options.zstdLevel),
    KB_RESTORE_JOBS: String(options.jobs),
    KB_LOG_LEVEL: 'ERROR',
    ...LAMBDA_ENV,
  };
  const profileDir = options.profile ? path.join(root, 'bench-prof') : undefined;
  if (profileDir) await mkdir(profileDir, { recursive: true });
  const workerEntry = options.bundle ? await bundleWorker(path.join(root, 'bench-worker')) : undefined;

  // Reads every page once on the replica (its cache, its hint bits) so the first timed dump is not the odd one.
  say('warm-up: pg_dump -Z 0 to /dev/null');
  await timeProcess(pgDump, dumpArgs('gzip:0'), 'null');
  return {
    sizeBytes: Number(sizeRow!.bytes),
    sourceUsers: Number(sizeRow!.users),
    versions,
    pgDump,
    pgRestore: stack.binaries.path('pg_restore'),
    pgDumpVersion,
    dumpArgs,
    sameArgs,
    defaultArgs,
    uncompressedArgs,
    rawIsUncompressed: sameArgs.join(' ') === uncompressedArgs.join(' '),
    worker: (job) => runWorker(job, workerEnv, profileDir, workerEntry),
  };
}

/** Empties the bucket and the scratch files, stops what startBench started; with --clean, deletes the stack. */
export async function stopBench({ options, root }: BenchRun, servers: BenchServers): Promise<void> {
  await clearBucket(servers.store).catch(() => undefined);
  await rm(servers.work, { recursive: true, force: true });
  await servers.restoreCluster
    .stop()
    .catch((error: unknown) => say(`bench-restore did not stop: ${describeError(error)}`));
  await servers.stack.stop();
  process.off('exit', servers.stopAtExit);
  if (options.clean) {
    say(`removing ${root}`);
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * Starts the scratch restore cluster, made anew when it does not exist or does not admit the stack's password (one
 * made by an earlier bench under a password of its own): it only ever holds the bench's throwaway restores.
 */
async function startRestoreCluster(cluster: LocalPostgresCluster, durable: boolean): Promise<void> {
  const settings = durable ? {} : NON_DURABLE_SETTINGS;
  if (await cluster.isInitialized()) {
    await cluster.writeSettings(settings);
    await cluster.start();
    const admitted = await cluster.query('select 1').then(
      () => true,
      (error: unknown) => {
        // query() wraps the connection's failure; 28P01 is PostgreSQL's invalid_password.
        if ((error as { cause?: { code?: string } }).cause?.code !== '28P01') throw error;
        return false;
      },
    );
    if (admitted) return;
    say(`stack: ${cluster.name} refuses the stack's password (made by an earlier bench): making it anew`);
    await cluster.stop();
    await rm(cluster.baseDir, { recursive: true, force: true });
  }
  await cluster.initdb({ durable });
  await cluster.writeSettings(settings);
  await cluster.start();
}

/** Refuses to start a size the disk cannot hold: stack, replica, WAL archive, restore cluster and archives. */
async function checkDisk(dir: string, size: BenchSizeName): Promise<void> {
  const preset = SIZE_PRESETS[size];
  const approxBytes = { small: 0.22e9, medium: 1.05e9, large: 5.2e9 }[size];
  const needed = approxBytes * 6;
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  say(
    `disk: ${(free / 1e9).toFixed(0)} GB free, about ${(needed / 1e9).toFixed(0)} GB needed for ${size} (${preset.users} users)`,
  );
  if (free < needed) {
    throw new Error(
      `not enough disk in ${dir}: ${(free / 1e9).toFixed(1)} GB free, about ${(needed / 1e9).toFixed(1)} GB needed`,
    );
  }
}

async function clearBucket(store: S3ObjectStore): Promise<void> {
  await deletePrefix(store, targetPrefix(STACK_TARGET));
}

export async function deletePrefix(store: S3ObjectStore, prefix: string): Promise<void> {
  const keys: string[] = [];
  for await (const object of store.list(prefix)) keys.push(object.key);
  if (keys.length > 0) await store.deleteObjects(keys);
}
