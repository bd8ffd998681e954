// The bench's measured phases: dumps and restores (raw tools and the pipeline side by side, in rotating order),
// verification with the memory baseline, and the compression table.
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { compressionArguments } from '../functions/adapters/postgres/pg-dump.js';
import { backupPrefix } from '../functions/core/layout.js';
import { backupIdFor } from '../functions/core/schedule.js';
import { STACK_TARGET } from '../local/stack.js';
import type { BenchRun } from './options.js';
import type { WorkerReport } from './pipeline-worker.js';
import type { CpuTimes } from './proc-cpu.js';
import { say, timeProcess, withCpu } from './processes.js';
import type { CompressionRow, Sample } from './report.js';
import type { BenchServers, BenchSource } from './setup.js';
import { deletePrefix } from './setup.js';
import { kibToMib, mibPerSecond, rotation, round } from './stats.js';

const RESTORE_DATABASE = 'kb_bench_restore';
/** Backup ids of the bench's own dumps: fixed times, so a rerun replaces rather than accumulates. */
const FIRST_BACKUP_TIME = Date.UTC(2025, 0, 1);

export interface Measured {
  samples: Sample[];
  reports: WorkerReport[];
}

/**
 * Each pair: raw pg_dump with the pipeline's arguments, pg_dump's default, -Z0 (unless that is the raw side), the
 * pipeline's dump step and pg_dump through a pipe into node. Returns the samples and the backup id the later phases
 * read: the newest pipeline dump, or one untimed when the phase did not run.
 */
export async function measureDumps(
  { options, phases }: BenchRun,
  { stack, store }: BenchServers,
  source: BenchSource,
): Promise<Measured & { reference: string }> {
  const { pgDump, defaultArgs, uncompressedArgs, sameArgs, worker } = source;
  const samples: Sample[] = [];
  const reports: WorkerReport[] = [];
  let reference: string | undefined;
  for (let pair = 0; pair < (phases.has('dump') ? options.pairs : 0); pair++) {
    const sides = rotation(
      pair,
      source.rawIsUncompressed
        ? (['raw', 'default', 'pipeline', 'piped'] as const)
        : (['raw', 'default', 'uncompressed', 'pipeline', 'piped'] as const),
    );
    for (const [index, side] of sides.entries()) {
      const load1 = os.loadavg()[0]!;
      const position = index + 1;
      const replicaPid = await stack.replica.pid();
      if (side !== 'pipeline') {
        const args = side === 'default' ? defaultArgs : side === 'uncompressed' ? uncompressedArgs : sameArgs;
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
        samples.push({
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
        reports.push(report);
        const cpu = workerBreakdown(report, main, server);
        samples.push({
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
  return { samples, reports, reference };
}

/**
 * Each pair, into a fresh database of the restore cluster: raw pg_restore from the pipeline's archive decrypted to
 * disk, raw pg_restore from pg_dump's default archive, and the pipeline's restore step; each restore must hold the
 * source's users. A pipeline restore whose Keycloak checks fail is noted in `notes`.
 */
export async function measureRestores(
  { options, phases }: BenchRun,
  { restoreCluster, work }: BenchServers,
  source: BenchSource,
  reference: string,
  notes: string[],
): Promise<Measured> {
  const { pgDump, pgRestore, defaultArgs, worker, sourceUsers } = source;
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
  const samples: Sample[] = [];
  const reports: WorkerReport[] = [];
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
        samples.push({ pair, position, side, ms: raw.ms, load1, cpu });
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
            backupId: reference,
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
        reports.push(report);
        samples.push({
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
  return { samples, reports };
}

/** Verification passes of the stored dump, each in a fresh worker, then a worker that does nothing (the baseline). */
export async function measureVerification(
  { options, phases }: BenchRun,
  { worker }: BenchSource,
  reference: string,
): Promise<{ reports: WorkerReport[]; baseline: WorkerReport }> {
  const reports: WorkerReport[] = [];
  for (let run = 0; run < (phases.has('verify') ? options.pairs : 0); run++) {
    const report = await worker({ mode: 'verify', target: STACK_TARGET, backupId: reference });
    reports.push(report);
    say(
      `verify ${run + 1}: ${mibPerSecond(Number(report.details.storedBytes), Number(report.details.verifyMs))} MiB/s, second pass ${mibPerSecond(Number(report.details.storedBytes), Number(report.details.verifyWarmMs))} MiB/s, with --list ${mibPerSecond(Number(report.details.storedBytes), Number(report.details.listMs))} MiB/s`,
    );
  }
  const baseline = await worker({ mode: 'baseline' });
  return { reports, baseline };
}

/** Raw pg_dump at each compression setting it supports, through a pipe, one run each. */
export async function compressionTable(
  { options, phases }: BenchRun,
  { pgDump, pgDumpVersion, dumpArgs, sizeBytes }: BenchSource,
): Promise<{ rows: CompressionRow[]; note: string }> {
  const rows: CompressionRow[] = [];
  const settings = ['gzip:0', 'gzip:1', 'gzip:6', 'gzip:9'];
  const modern = pgDumpVersion.major >= 16;
  if (modern) settings.push('lz4', 'zstd:3', 'zstd:9');
  const note = modern
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
  return { rows, note };
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
