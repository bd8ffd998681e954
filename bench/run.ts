// `npm run bench -- --size small|medium|large --json FILE`: the pipeline against raw pg_dump / pg_restore, side by side.
//
// Method
// - Its own local stack (bench/out/stack-<size>, reused across runs), seeded with the Keycloak fixture and grown
//   once with bench/generate.ts; durable (fsync on, the stack's default): the restores write to disk as a real
//   server would, and a restore into a server that skips fsync would flatter neither side in particular but would
//   not be a restore anyone runs. Dumps read the replica after it has replayed the growth.
// - Restores go into a separate, standalone cluster (no WAL archive, no standby) in the same state dir, into a
//   fresh database each time (dropped, re-created and checkpointed, untimed): restoring into the stack's primary
//   would archive and stream every restored byte, which is work no real scratch server does.
// - Each round runs the raw tools and the pipeline back to back, in rotating order, ≥ 3 rounds; medians.
//   What users would run instead (issue 16): `pg_dump -Fc` at its default compression (gzip, bytes counted through a
//   pipe), `pg_dump -Fc -Z0` to /dev/null (the physical limit of producing the archive), and `pg_restore --jobs N`
//   from the default archive on local disk (written once, untimed).
//   Raw dump: `pg_dump -Fc` with the pipeline's pg_dump arguments (-Z0 when the pipeline compresses), stdout to
//   /dev/null. Pipeline dump:
//   dumpStep (what the dump Lambda runs: pg_dump in an exported snapshot on the replica, the table counts,
//   encryption, multipart upload to s3rver, manifest) in a separate node process, run as the Lambdas run it (one
//   esbuild bundle, plain node; --no-bundle runs the sources through tsx); the ratio uses the step's own
//   wall time, with services already built (as in a warm Lambda); the whole process time is recorded too.
//   Raw restore: `pg_restore --jobs N` with the pipeline's flags from the stored archive, decrypted once to disk.
//   Pipeline restore: restoreStep in a separate process; the ratio uses its data path (download, decrypt, spool,
//   pg_restore); the step with its Keycloak checks is recorded too.
// - Environment: the worker, and the raw pg_dump and pg_restore, start with the Lambdas' GLIBC_TUNABLES and NODE_OPTIONS
//   (serverless/runtime.cjs), which the pipeline's own pg_dump and pg_restore inherit.
// - Verification: tools.verifyStored over the stored dump as the steps describe it (stored SHA-256 against the
//   manifest, authenticated decryption), in MiB of stored bytes per second, first pass in a fresh worker (as a
//   Lambda would run it) and a second pass in the same worker; then with pg_restore --list (the verify step).
// - Peak RSS: process.resourceUsage().maxRSS of each worker (pg_dump's and pg_restore's own memory is theirs, not
//   the pipeline's). Flatness: compared with the recorded result of the next smaller size in bench/results/.
// - Compression table: raw pg_dump at each setting, counted through a pipe, one run each.
// - s3rver runs inside this process (the stack's), so its CPU competes with the pipeline on a small machine;
//   on AWS that work is S3's.
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Command, InvalidArgumentError } from 'commander';
import {
  freePort,
  LocalPostgresCluster,
  NON_DURABLE_SETTINGS,
} from '../functions/adapters/local/postgres-cluster.js';
import { compressionArguments, dumpCompression } from '../functions/adapters/postgres/pg-dump.js';
import { toolConnection } from '../functions/adapters/postgres/pg-process.js';
import { S3ObjectStore } from '../functions/adapters/s3-object-store.js';
import { describeError } from '../functions/core/errors.js';
import { backupPrefix, targetPrefix } from '../functions/core/layout.js';
import { backupIdFor } from '../functions/core/schedule.js';
import { STACK_TARGET, startLocalStack } from '../local/stack.js';
import { type BenchSizeName, growKeycloakDatabase, SIZE_PRESETS } from './generate.js';
import type { WorkerJob, WorkerReport } from './pipeline-worker.js';
import { type CpuTimes, cpuDelta, cpuTimes } from './proc-cpu.js';
import {
  type BenchResult,
  type CompressionRow,
  renderSection,
  type Sample,
  updateResults,
} from './report.js';
import {
  evaluateTargets,
  kibToMib,
  lambdaCeiling,
  limitText,
  median,
  mibPerSecond,
  type OtherRun,
  pairedRatios,
  ratio,
  rotation,
  round,
  summarize,
} from './stats.js';

/** The Lambdas' process settings (serverless/runtime.cjs), so the worker runs as they do. */
const lambdaRuntime = createRequire(import.meta.url)('../serverless/runtime.cjs') as {
  glibcTunables: string;
  nodeOptions: string;
};
/**
 * What the worker and the raw tools add to this process's environment: the Lambdas' own settings, which the
 * pipeline's pg_dump and pg_restore inherit from the worker (serverless.yml takes them from the same module).
 */
const LAMBDA_ENV = { GLIBC_TUNABLES: lambdaRuntime.glibcTunables, NODE_OPTIONS: lambdaRuntime.nodeOptions };
const execFileAsync = promisify(execFile);
const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(BENCH_DIR, '..');
const WORKER = path.join(BENCH_DIR, 'pipeline-worker.ts');
const RESTORE_DATABASE = 'kb_bench_restore';
const SIZES: readonly BenchSizeName[] = ['small', 'medium', 'large'];
/** Backup ids of the bench's own dumps: fixed times, so a rerun replaces rather than accumulates. */
const FIRST_BACKUP_TIME = Date.UTC(2025, 0, 1);

interface Options {
  size: BenchSizeName;
  json?: string;
  pairs: number;
  jobs: number;
  stateDir?: string;
  compression: string;
  zstdLevel: number;
  seed: number;
  table: boolean;
  results: string;
  profile: boolean;
  clean: boolean;
  only: string;
  s3Nice: number;
  bundle: boolean;
}

const PHASES = ['dump', 'restore', 'verify', 'table'] as const;

const liveChildren = new Set<number>();
const say = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

function positive(name: string, min = 1) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

async function main(): Promise<number> {
  const program = new Command('bench')
    .description('dump and restore speed and memory of the pipeline against raw pg_dump / pg_restore')
    .option(
      '--size <size>',
      'small | medium | large',
      (value: string) => {
        if (!SIZES.includes(value as BenchSizeName)) throw new InvalidArgumentError('small, medium or large');
        return value as BenchSizeName;
      },
      'small',
    )
    .option('--json <file>', 'where the result goes (default bench/results/<size>.json)')
    .option(
      '--pairs <n>',
      'raw/pipeline pairs per measurement (the issue asks for at least 3)',
      positive('--pairs'),
      3,
    )
    .option('--jobs <n>', 'pg_restore --jobs on both sides', positive('--jobs'), 2)
    .option('--state-dir <dir>', 'the bench stack (default bench/out/stack-<size>)')
    .option(
      '--compression <setting>',
      'KB_DUMP_COMPRESSION of the pipeline (the raw side gets its pg_dump arguments)',
      'pipeline',
    )
    .option('--zstd-level <n>', 'KB_DUMP_ZSTD_LEVEL of the pipeline', positive('--zstd-level'), 1)
    .option('--seed <n>', 'generator seed', positive('--seed', 0), 1)
    .option('--no-table', 'skip the compression table')
    .option(
      '--only <phases>',
      `run only these phases (${PHASES.join(',')}) for diagnosis; nothing is recorded`,
      PHASES.join(','),
    )
    .option('--results <file>', 'markdown summary to update', path.join(BENCH_DIR, 'RESULTS.md'))
    .option('--profile', 'write CPU profiles of the workers (--cpu-prof) into <state-dir>/bench-prof', false)
    .option(
      '--s3-nice <n>',
      "run this process (it hosts s3rver) at this niceness, its children at 0: a diagnosis of how much s3rver, whose work is S3's on AWS, takes from pg_dump on a small machine",
      positive('--s3-nice', 0),
      0,
    )
    .option(
      '--no-bundle',
      'run the worker through tsx as a loader instead of as the esbuild bundle with plain node that the Lambdas run',
    )
    .option(
      '--clean',
      'stop and delete the bench stack at the end (default: keep it for the next run)',
      false,
    );
  program.parse();
  const options = program.opts<Options>();
  const phases = new Set(options.only.split(',').map((p) => p.trim()));
  const unknown = [...phases].filter((p) => !(PHASES as readonly string[]).includes(p));
  if (unknown.length > 0) throw new Error(`--only: unknown phase ${unknown.join(', ')}`);
  const partial = PHASES.some((p) => !phases.has(p) && (p !== 'table' || options.table));
  const started = performance.now();
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
  const root = path.resolve(options.stateDir ?? path.join(BENCH_DIR, 'out', `stack-${options.size}`));
  const jsonFile = path.resolve(options.json ?? path.join(BENCH_DIR, 'results', `${options.size}.json`));
  const notes: string[] = [];
  if (options.pairs < 3) notes.push(`only ${options.pairs} pair(s): the issue asks for at least 3`);

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
    for (const pid of liveChildren) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
  };
  process.on('exit', stopAtExit);
  const work = path.join(root, 'bench-work');
  const store = new S3ObjectStore({
    bucket: stack.primaryBucket,
    region: 'eu-west-1',
    endpoint: stack.s3Endpoint,
  });
  try {
    // -- database ---------------------------------------------------------------------------------------------
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
    const sizeBytes = Number(sizeRow!.bytes);
    const sourceUsers = Number(sizeRow!.users);

    await startRestoreCluster(restoreCluster, durable);
    // Only now: the PostgreSQL servers above were started from this thread and keep niceness 0.
    if (options.s3Nice > 0) os.setPriority(0, options.s3Nice);
    await mkdir(work, { recursive: true });
    await clearBucket(store);

    const pgDump = stack.binaries.path('pg_dump');
    const pgRestore = stack.binaries.path('pg_restore');
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
    const sameArgs = [
      '--format=custom',
      '--no-password',
      ...pipelinePgDumpArgs,
      '--dbname',
      stack.replicaUrl,
    ];
    // What a user runs: pg_dump -Fc, no compression option (gzip at zlib's default level).
    const defaultArgs = ['--format=custom', '--no-password', '--dbname', stack.replicaUrl];
    const uncompressedArgs = dumpArgs('none');
    const rawIsUncompressed = sameArgs.join(' ') === uncompressedArgs.join(' ');
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
    const worker = (job: WorkerJob) => runWorker(job, workerEnv, profileDir, workerEntry);

    // Reads every page once on the replica (its cache, its hint bits) so the first timed dump is not the odd one.
    say('warm-up: pg_dump -Z 0 to /dev/null');
    await timeProcess(pgDump, dumpArgs('gzip:0'), 'null');

    // -- dump -------------------------------------------------------------------------------------------------
    const dumpSamples: Sample[] = [];
    const dumpReports: WorkerReport[] = [];
    let reference: string | undefined;
    for (let pair = 0; pair < (phases.has('dump') ? options.pairs : 0); pair++) {
      const sides = rotation(
        pair,
        rawIsUncompressed
          ? (['raw', 'default', 'pipeline', 'piped'] as const)
          : (['raw', 'default', 'uncompressed', 'pipeline', 'piped'] as const),
      );
      for (const [index, side] of sides.entries()) {
        const load1 = os.loadavg()[0]!;
        const position = index + 1;
        const replicaPid = await stack.replica.pid();
        if (side !== 'pipeline') {
          const args =
            side === 'default' ? defaultArgs : side === 'uncompressed' ? uncompressedArgs : sameArgs;
          const counted = side === 'default' || side === 'piped';
          const {
            result: raw,
            main,
            server,
          } = await withCpu(replicaPid, () => timeProcess(pgDump, args, counted ? 'count' : 'null'));
          const cpu = breakdown({
            tool: main?.children,
            consumer: counted ? main?.self : undefined,
            server,
          });
          dumpSamples.push({
            pair,
            position,
            side,
            ms: raw.ms,
            load1,
            cpu,
            bytes: counted ? raw.bytes : undefined,
          });
          const label = {
            raw: 'raw pg_dump (pipeline arguments)',
            default: 'raw pg_dump -Fc (default compression)',
            uncompressed: 'raw pg_dump -Z0',
            piped: 'pg_dump | node',
          }[side];
          say(`dump round ${pair + 1}: ${label} ${(raw.ms / 1000).toFixed(2)} s`);
        } else {
          const backupId = backupIdFor(new Date(FIRST_BACKUP_TIME + pair * 60_000));
          const {
            result: report,
            main,
            server,
          } = await withCpu(replicaPid, () => worker({ mode: 'dump', target: STACK_TARGET, backupId }));
          dumpReports.push(report);
          const cpu = workerBreakdown(report, main, server);
          dumpSamples.push({
            pair,
            position,
            side,
            ms: report.durationMs,
            load1,
            storedBytes: Number(report.details.storedBytes),
            dataPathMs: report.details.dumpMs,
            processMs: report.processMs,
            maxRssMib: kibToMib(report.maxRssKib),
            cpu,
          });
          say(
            `dump round ${pair + 1}: pipeline ${(report.durationMs / 1000).toFixed(2)} s (data path ${(Number(report.details.dumpMs) / 1000).toFixed(2)} s), peak RSS ${kibToMib(report.maxRssKib)} MiB`,
          );
          // Keep only the newest dump: it is the one the restores and verifications read.
          if (reference) await deletePrefix(store, backupPrefix(STACK_TARGET, reference));
          reference = backupId;
        }
      }
    }
    if (!reference) {
      reference = backupIdFor(new Date(FIRST_BACKUP_TIME));
      say('one untimed pipeline dump for the restores and verifications');
      await worker({ mode: 'dump', target: STACK_TARGET, backupId: reference });
    }

    // -- restore ----------------------------------------------------------------------------------------------
    const archive = path.join(work, 'archive.pgdump');
    const defaultArchive = path.join(work, 'default.pgdump');
    if (phases.has('restore')) {
      say('decrypting the stored archive once to disk for the raw pg_restore');
      await rm(archive, { force: true }); // left by a run that was killed: the worker writes a new file only
      await worker({ mode: 'fetch', target: STACK_TARGET, backupId: reference, file: archive });
      say('writing the default pg_dump -Fc archive once to disk for the raw pg_restore from it');
      await timeProcess(
        pgDump,
        [...defaultArgs.slice(0, -2), '--file', defaultArchive, ...defaultArgs.slice(-2)],
        'null',
      );
    }
    const restoreUrl = restoreCluster.url(RESTORE_DATABASE);
    const freshDatabase = async () => {
      await restoreCluster.query(`drop database if exists ${RESTORE_DATABASE} with (force)`);
      await restoreCluster.query(`create database ${RESTORE_DATABASE}`);
      await restoreCluster.query('checkpoint');
    };
    const restoredUsers = async () => {
      const [row] = await restoreCluster.query<{ n: string }>(
        'select count(*)::text as n from public.user_entity',
        [],
        RESTORE_DATABASE,
      );
      return Number(row?.n);
    };
    const restoreSamples: Sample[] = [];
    const restoreReports: WorkerReport[] = [];
    for (let pair = 0; pair < (phases.has('restore') ? options.pairs : 0); pair++) {
      for (const [index, side] of rotation(pair, ['raw', 'default', 'pipeline'] as const).entries()) {
        await freshDatabase();
        const load1 = os.loadavg()[0]!;
        const position = index + 1;
        const serverPid = await restoreCluster.pid();
        if (side !== 'pipeline') {
          const restoreArgs = ['--no-owner', '--no-acl', '--exit-on-error', '--no-password'];
          const file = side === 'raw' ? archive : defaultArchive;
          const {
            result: raw,
            main,
            server,
          } = await withCpu(serverPid, () =>
            timeProcess(
              pgRestore,
              [...restoreArgs, `--jobs=${options.jobs}`, '--dbname', restoreUrl, file],
              'null',
            ),
          );
          const cpu = breakdown({ tool: main?.children, server });
          restoreSamples.push({ pair, position, side, ms: raw.ms, load1, cpu });
          say(
            `restore round ${pair + 1}: raw pg_restore from ${side === 'raw' ? "the pipeline's archive" : 'the default archive'} ${(raw.ms / 1000).toFixed(2)} s`,
          );
        } else {
          const {
            result: report,
            main,
            server,
          } = await withCpu(serverPid, () =>
            worker({
              mode: 'restore',
              target: STACK_TARGET,
              backupId: reference!,
              databaseUrl: restoreUrl,
              jobs: options.jobs,
            }),
          );
          const cpu = workerBreakdown(report, main, server);
          if (!report.details.checksPassed) {
            notes.push(
              `pipeline restore ${pair + 1}: Keycloak checks failed: ${JSON.stringify(report.details.failedChecks)}`,
            );
          }
          restoreReports.push(report);
          restoreSamples.push({
            pair,
            position,
            side,
            ms: Number(report.details.restoreMs),
            load1,
            stepMs: report.durationMs,
            processMs: report.processMs,
            maxRssMib: kibToMib(report.maxRssKib),
            cpu,
          });
          say(
            `restore pair ${pair + 1}: pipeline ${(Number(report.details.restoreMs) / 1000).toFixed(2)} s (step ${(report.durationMs / 1000).toFixed(2)} s), peak RSS ${kibToMib(report.maxRssKib)} MiB`,
          );
        }
        const users = await restoredUsers();
        if (users !== sourceUsers)
          throw new Error(`the ${side} restore holds ${users} users, the source ${sourceUsers}`);
      }
    }
    await restoreCluster.query(`drop database if exists ${RESTORE_DATABASE} with (force)`);
    await rm(archive, { force: true });
    await rm(defaultArchive, { force: true });

    // -- verification and memory baseline ----------------------------------------------------------------------
    const verifyReports: WorkerReport[] = [];
    for (let run = 0; run < (phases.has('verify') ? options.pairs : 0); run++) {
      const report = await worker({ mode: 'verify', target: STACK_TARGET, backupId: reference });
      verifyReports.push(report);
      say(
        `verify ${run + 1}: ${mibPerSecond(Number(report.details.storedBytes), Number(report.details.verifyMs))} MiB/s, second pass ${mibPerSecond(Number(report.details.storedBytes), Number(report.details.verifyWarmMs))} MiB/s, with --list ${mibPerSecond(Number(report.details.storedBytes), Number(report.details.listMs))} MiB/s`,
      );
    }
    const baseline = await worker({ mode: 'baseline' });

    // -- compression table ------------------------------------------------------------------------------------
    const rows: CompressionRow[] = [];
    const settings = ['gzip:0', 'gzip:1', 'gzip:6', 'gzip:9'];
    const modern = pgDumpVersion.major >= 16;
    if (modern) settings.push('lz4', 'zstd:3', 'zstd:9');
    const compressionNote = modern
      ? `pg_dump ${pgDumpVersion.full} supports lz4 and zstd; one run per setting, through a pipe.`
      : `lz4 and zstd are not in the table: pg_dump ${pgDumpVersion.full} supports only gzip (lz4/zstd need pg_dump 16 or later). One run per setting, through a pipe.`;
    if (options.table && phases.has('table')) {
      for (const setting of settings) {
        const args = dumpArgs(setting);
        const measured = await timeProcess(pgDump, args, 'count');
        rows.push({
          setting,
          args: compressionArguments(setting, pgDumpVersion.major).args,
          ms: measured.ms,
          bytes: measured.bytes,
          share: round(measured.bytes / sizeBytes, 4),
        });
        say(
          `compression ${setting}: ${(measured.ms / 1000).toFixed(2)} s, ${(measured.bytes / 1048576).toFixed(1)} MiB`,
        );
      }
    }

    // -- result -----------------------------------------------------------------------------------------------
    if (partial) {
      say(`partial run (--only ${options.only}): nothing recorded; samples follow`);
      for (const sample of [...dumpSamples, ...restoreSamples])
        process.stdout.write(`${JSON.stringify(sample)}\n`);
      return 0;
    }
    const lastDump = dumpReports.at(-1)!;
    const side = (samples: Sample[], which: Sample['side']) =>
      samples.filter((s) => s.side === which).map((s) => s.ms);
    const dumpRaw = summarize(side(dumpSamples, 'raw'));
    const dumpPipeline = summarize(side(dumpSamples, 'pipeline'));
    const restoreRaw = summarize(side(restoreSamples, 'raw'));
    const restorePipeline = summarize(side(restoreSamples, 'pipeline'));
    const verifyMBps = summarize(
      verifyReports.map((r) => mibPerSecond(Number(r.details.storedBytes), Number(r.details.verifyMs))),
    );
    const warmMBps = summarize(
      verifyReports.map((r) => mibPerSecond(Number(r.details.storedBytes), Number(r.details.verifyWarmMs))),
    );
    const listMBps = summarize(
      verifyReports.map((r) => mibPerSecond(Number(r.details.storedBytes), Number(r.details.listMs))),
    );
    const rss = (reports: WorkerReport[]) => summarize(reports.map((r) => kibToMib(r.maxRssKib)));
    const dumpRss = rss(dumpReports);
    const restoreRss = rss(restoreReports);
    const dumpRatios = summarize(pairedRatios(dumpSamples));
    const restoreRatios = summarize(pairedRatios(restoreSamples));
    const uncompressedSide = rawIsUncompressed ? 'raw' : 'uncompressed';
    const dumpVsDefault = summarize(pairedRatios(dumpSamples, 'pipeline', 'default'));
    const dumpVsUncompressed = summarize(pairedRatios(dumpSamples, 'pipeline', uncompressedSide));
    const restoreVsDefault = summarize(pairedRatios(restoreSamples, 'pipeline', 'default'));
    const bytesOf = (which: Sample['side'], field: string) =>
      median(dumpSamples.filter((s) => s.side === which).map((s) => Number(s[field])));
    const defaultBytes = bytesOf('default', 'bytes');
    const storedBytes = bytesOf('pipeline', 'storedBytes');
    const figures = {
      dumpVsPgDumpDefault: dumpVsDefault.median,
      dumpVsUncompressed: dumpVsUncompressed.median,
      storedVsPgDumpDefault: ratio(storedBytes, defaultBytes),
      restoreVsPgRestoreDefault: restoreVsDefault.median,
      dumpRatio: dumpRatios.median,
      restoreRatio: restoreRatios.median,
      verifyMBps: verifyMBps.median,
      // The peak over every run: memory is judged by its worst case.
      dumpPeakRssMb: dumpRss.max,
      restorePeakRssMb: restoreRss.max,
    };
    const smaller = await readSmallerRun(options.size, path.dirname(jsonFile));
    const targets = evaluateTargets(figures, smaller);
    if (options.s3Nice > 0) {
      notes.push(
        `diagnostic run: the bench process, which hosts s3rver, ran at niceness ${options.s3Nice} (children at 0), so s3rver's CPU yields to pg_dump and the pipeline`,
      );
    }
    if (options.size !== 'medium')
      notes.push('the issue sets its targets at medium (memory flatness: medium to large)');
    const loads = [...dumpSamples, ...restoreSamples].map((s) => s.load1);
    if (Math.max(...loads) > os.cpus().length) {
      notes.push(
        `the machine was shared: one-minute load average up to ${Math.max(...loads).toFixed(1)} on ${os.cpus().length} cores during the samples (median ${median(loads).toFixed(1)}); sides alternate and medians are reported`,
      );
    }
    const dumpCpu = {
      raw: cpuMedians(dumpSamples, 'raw'),
      pipeline: cpuMedians(dumpSamples, 'pipeline'),
      piped: cpuMedians(dumpSamples, 'piped'),
      default: cpuMedians(dumpSamples, 'default'),
    };
    const ceiling = lambdaCeiling({
      sizeBytes,
      pipelineCpu: dumpCpu.pipeline,
      pipelineWallMs: dumpPipeline.median,
      defaultCpu: dumpCpu.default,
    });
    const result: BenchResult = {
      size: options.size,
      command,
      date: new Date().toISOString(),
      machine: {
        cores: os.cpus().length,
        cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
        memoryMib: Math.round(os.totalmem() / 1048576),
        kernel: os.release(),
        loadAverage: { start: loadStart.map((l) => round(l, 2)), end: os.loadavg().map((l) => round(l, 2)) },
      },
      versions,
      revision: await revision(),
      settings: {
        pairs: options.pairs,
        jobs: options.jobs,
        compression: options.compression,
        zstdLevel: options.zstdLevel,
        durable,
        seed: options.seed,
        worker: `${options.bundle ? 'esbuild bundle, plain node' : 'tsx loader'}, GLIBC_TUNABLES=${lambdaRuntime.glibcTunables}, NODE_OPTIONS=${lambdaRuntime.nodeOptions}`,
        restoreServer:
          'a standalone local cluster of the same PostgreSQL (no WAL archive, no standby), fresh database per run',
      },
      sizeBytes,
      ...figures,
      ...(ceiling ? { lambdaCeiling: ceiling } : {}),
      dump: {
        raw: dumpRaw,
        pipeline: dumpPipeline,
        piped: summarize(side(dumpSamples, 'piped')),
        default: summarize(side(dumpSamples, 'default')),
        uncompressed: summarize(side(dumpSamples, uncompressedSide)),
        vsDefaultRatios: dumpVsDefault,
        vsUncompressedRatios: dumpVsUncompressed,
        defaultBytes,
        archiveBytes: Number(lastDump.details.archiveBytes ?? lastDump.details.plainBytes),
        ratios: dumpRatios,
        ratioOfMedians: ratio(dumpPipeline.median, dumpRaw.median),
        pipedRatios: summarize(pairedRatios(dumpSamples, 'piped', 'raw')),
        cpu: dumpCpu,
        pipelineDataPath: summarize(dumpReports.map((r) => Number(r.details.dumpMs))),
        pipelineProcess: summarize(dumpReports.map((r) => r.processMs)),
        plainBytes: Number(lastDump.details.plainBytes),
        storedBytes: Number(lastDump.details.storedBytes),
        samples: dumpSamples,
      },
      restore: {
        raw: restoreRaw,
        pipeline: restorePipeline,
        ratios: restoreRatios,
        ratioOfMedians: ratio(restorePipeline.median, restoreRaw.median),
        default: summarize(side(restoreSamples, 'default')),
        vsDefaultRatios: restoreVsDefault,
        cpu: {
          raw: cpuMedians(restoreSamples, 'raw'),
          pipeline: cpuMedians(restoreSamples, 'pipeline'),
          default: cpuMedians(restoreSamples, 'default'),
        },
        pipelineStep: summarize(restoreReports.map((r) => r.durationMs)),
        samples: restoreSamples,
      },
      verify: {
        MBps: verifyMBps,
        warmMBps,
        listMBps,
        storedBytes: Number(verifyReports[0]?.details.storedBytes),
        samples: verifyReports.map((r) => ({
          ...r.details,
          maxRssMib: kibToMib(r.maxRssKib),
          cpuS: round(r.cpu.userS + r.cpu.systemS, 2),
        })),
      },
      memory: {
        baselineRssMb: kibToMib(baseline.maxRssKib),
        baselineCpuS: round(baseline.cpu.userS + baseline.cpu.systemS, 2),
        dumpRssMb: dumpRss,
        restoreRssMb: restoreRss,
        verifyRssMb: rss(verifyReports),
        dumpHeapMb: kibToMib(Math.max(...dumpReports.map((r) => r.sampled.heapUsedKib))),
        dumpExternalMb: kibToMib(Math.max(...dumpReports.map((r) => r.sampled.externalKib))),
        restoreHeapMb: kibToMib(Math.max(...restoreReports.map((r) => r.sampled.heapUsedKib))),
        restoreExternalMb: kibToMib(Math.max(...restoreReports.map((r) => r.sampled.externalKib))),
      },
      compression: { rows, note: compressionNote },
      targets,
      passed: targets.every((t) => t.verdict !== 'FAIL'),
      notes,
      durationS: Math.round((performance.now() - started) / 1000),
    };

    await mkdir(path.dirname(jsonFile), { recursive: true });
    await writeFile(jsonFile, `${JSON.stringify(result, null, 2)}\n`);
    const existing = await readFile(options.results, 'utf8').catch(() => undefined);
    await writeFile(options.results, updateResults(existing, options.size, renderSection(result)));

    process.stdout.write(`\nbench ${options.size}: database ${(sizeBytes / 1048576).toFixed(0)} MiB\n`);
    for (const t of targets) {
      const measured = t.measured === null ? '–' : `${t.measured} ${t.unit}`;
      process.stdout.write(
        `  ${t.verdict.padEnd(4)} ${t.name.padEnd(20)} ${measured.padStart(12)}  (${limitText(t)}) ${t.description}\n`,
      );
    }
    process.stdout.write(
      `results: ${path.relative(REPO, jsonFile)}, ${path.relative(REPO, options.results)}\n`,
    );
    return result.passed ? 0 : 1;
  } finally {
    await clearBucket(store).catch(() => undefined);
    await rm(work, { recursive: true, force: true });
    await restoreCluster
      .stop()
      .catch((error: unknown) => say(`bench-restore did not stop: ${describeError(error)}`));
    await stack.stop();
    process.off('exit', stopAtExit);
    if (options.clean) {
      say(`removing ${root}`);
      await rm(root, { recursive: true, force: true });
    }
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

/** Children run at normal priority even when this process (s3rver's) was niced with --s3-nice. */
function unniceChild(pid: number | undefined): void {
  if (pid === undefined || os.getPriority(0) === 0) return;
  try {
    os.setPriority(pid, 0);
  } catch {
    // not allowed (not root): the child keeps this process's niceness
  }
}

/** Runs `run`, with the CPU this process (s3rver, reaped children) and the server's postmaster tree used meanwhile. */
async function withCpu<T>(serverPid: number | undefined, run: () => Promise<T>) {
  const before = await Promise.all([cpuTimes('self'), serverPid ? cpuTimes(serverPid) : undefined]);
  const result = await run();
  // A backend exits just after its client disconnects, and the postmaster reaps it a moment later.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const after = await Promise.all([cpuTimes('self'), serverPid ? cpuTimes(serverPid) : undefined]);
  return { result, main: cpuDelta(before[0], after[0]), server: cpuDelta(before[1], after[1]) };
}

/** CPU seconds of one run by who spent them; the server's are its backends' (reaped by the postmaster). */
function breakdown(parts: {
  tool: number | undefined;
  worker?: number;
  s3rver?: number;
  consumer?: number;
  server: CpuTimes | undefined;
}): Record<string, number> {
  const named: Record<string, number | undefined> = {
    tool: parts.tool,
    worker: parts.worker,
    s3rver: parts.s3rver,
    consumer: parts.consumer,
    server: parts.server ? parts.server.self + parts.server.children : undefined,
  };
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(named)) if (value !== undefined) out[name] = round(value, 2);
  out.total = round(
    Object.values(out).reduce((a, b) => a + b, 0),
    2,
  );
  return out;
}

/**
 * CPU seconds of a pipeline run: the worker's own (from its report), the tools it started (this process's reaped
 * children less the worker), s3rver (this process itself) and the server's backends.
 */
function workerBreakdown(
  report: WorkerReport,
  main: CpuTimes | undefined,
  server: CpuTimes | undefined,
): Record<string, number> {
  const workerS = report.cpu.userS + report.cpu.systemS;
  return breakdown({
    tool: main ? main.children - workerS : undefined,
    worker: workerS,
    s3rver: main?.self,
    server,
  });
}

/** Median CPU seconds per part over the samples of one side. */
function cpuMedians(samples: Sample[], side: Sample['side']): Record<string, number> {
  const parts = new Map<string, number[]>();
  for (const sample of samples.filter((s) => s.side === side)) {
    for (const [name, value] of Object.entries((sample.cpu ?? {}) as Record<string, number>)) {
      parts.set(name, [...(parts.get(name) ?? []), value]);
    }
  }
  return Object.fromEntries([...parts].map(([name, values]) => [name, round(median(values), 2)]));
}

/** HEAD, and the data-path files that differ from it (other sessions may be changing them while we measure). */
async function revision(): Promise<{ commit: string; dirty: string[] }> {
  const git = async (...args: string[]) => (await execFileAsync('git', args, { cwd: REPO })).stdout.trim();
  try {
    const commit = await git('rev-parse', 'HEAD');
    const dirty = (await git('status', '--porcelain', '--', 'functions', 'cli'))
      .split('\n')
      .filter(Boolean)
      .map((line) => line.slice(3));
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: [] };
  }
}

/** The recorded result of the next smaller size, if any, for the memory flatness verdict. */
async function readSmallerRun(size: BenchSizeName, dir: string): Promise<OtherRun | undefined> {
  const index = SIZES.indexOf(size);
  for (let i = index - 1; i >= 0; i--) {
    try {
      const other = JSON.parse(await readFile(path.join(dir, `${SIZES[i]}.json`), 'utf8')) as BenchResult;
      // Flatness is a statement about sizes from medium up; small's figures are still shown when that is all there is.
      return {
        size: other.size,
        dumpPeakRssMb: other.dumpPeakRssMb,
        restorePeakRssMb: other.restorePeakRssMb,
      };
    } catch {
      // not recorded
    }
  }
  return undefined;
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

async function deletePrefix(store: S3ObjectStore, prefix: string): Promise<void> {
  const keys: string[] = [];
  for await (const object of store.list(prefix)) keys.push(object.key);
  if (keys.length > 0) await store.deleteObjects(keys);
}

/** The local clusters' URLs carry their password: it goes to the program by PGPASSWORD, never in its argv. */
function passwordsOutOfArgs(args: string[]): { args: string[]; password?: string } {
  let password: string | undefined;
  const stripped = args.map((arg) => {
    if (!/^postgres(ql)?:\/\//.test(arg)) return arg;
    const connection = toolConnection(arg);
    password = connection.env.PGPASSWORD ?? password;
    return connection.dbname;
  });
  return password === undefined ? { args: stripped } : { args: stripped, password };
}

/** Runs a program to completion: wall time, and the bytes of its stdout when counted. */
async function timeProcess(
  file: string,
  args: string[],
  stdout: 'null' | 'count',
): Promise<{ ms: number; bytes: number }> {
  const devNull = stdout === 'null' ? openSync('/dev/null', 'w') : undefined;
  const { args: argv, password } = passwordsOutOfArgs(args);
  const started = performance.now();
  const child = spawn(file, argv, {
    stdio: ['ignore', devNull ?? 'pipe', 'pipe'],
    env: { ...process.env, ...LAMBDA_ENV, ...(password === undefined ? {} : { PGPASSWORD: password }) },
  });
  unniceChild(child.pid);
  if (child.pid) liveChildren.add(child.pid);
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    stderr = (stderr + text).slice(-8192);
  });
  let bytes = 0;
  const counted =
    stdout === 'count'
      ? pipeline(
          child.stdout!,
          new Writable({
            highWaterMark: 1 << 20,
            write(chunk: Buffer, _encoding, callback) {
              bytes += chunk.length;
              callback();
            },
          }),
        )
      : Promise.resolve();
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  try {
    const [{ code, signal }] = await Promise.all([exit, counted]);
    const ms = Math.round(performance.now() - started);
    if (code !== 0)
      throw new Error(
        `${path.basename(file)} ${code !== null ? `exited with ${code}` : `was killed by ${signal}`}: ${stderr.trim()}`,
      );
    return { ms, bytes };
  } finally {
    if (child.pid) liveChildren.delete(child.pid);
    if (devNull !== undefined) closeSync(devNull);
  }
}

/** Bundles the worker as serverless.yml bundles the Lambdas (esbuild, ESM, require() banner, no pg-native). */
async function bundleWorker(dir: string): Promise<string> {
  const esbuild = await import('esbuild');
  const outfile = path.join(dir, 'pipeline-worker.mjs');
  await esbuild.build({
    entryPoints: [WORKER],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    banner: {
      js: "import { createRequire as kbCreateRequire } from 'node:module'; const require = kbCreateRequire(import.meta.url);",
    },
    external: ['pg-native'],
    logLevel: 'error',
  });
  say(`worker bundled into ${path.relative(REPO, outfile)}`);
  return outfile;
}

/**
 * Runs the pipeline worker in its own node process and reads its report: tsx as a loader (one process), or the
 * bundle from bundleWorker with plain node.
 */
async function runWorker(
  job: WorkerJob,
  env: NodeJS.ProcessEnv,
  profileDir: string | undefined,
  bundle: string | undefined,
): Promise<WorkerReport> {
  const nodeArgs = bundle ? [] : ['--import', 'tsx'];
  // One directory per run: node writes one profile per thread (tsx's loader has its own), named by pid and thread.
  if (profileDir) {
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', path.join(profileDir, `${job.mode}-${Date.now()}`));
  }
  const child = execFileAsync(process.execPath, [...nodeArgs, bundle ?? WORKER, JSON.stringify(job)], {
    cwd: REPO,
    env,
    maxBuffer: 1 << 20,
  });
  if (child.child.pid) liveChildren.add(child.child.pid);
  unniceChild(child.child.pid);
  try {
    const { stdout } = await child;
    const line = stdout.trim().split('\n').at(-1) ?? '';
    return JSON.parse(line) as WorkerReport;
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? '').trim();
    throw new Error(`the ${job.mode} worker failed: ${stderr || (error as Error).message}`);
  } finally {
    if (child.child.pid) liveChildren.delete(child.child.pid);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench failed: ${describeError(error)}\n`);
    process.exitCode = 2;
  },
);
