// One pipeline operation in its own process, so its peak memory is its own: prints one JSON line on stdout.
//
//   node --import tsx bench/pipeline-worker.ts '{"mode":"dump","backupId":"20250101T0000Z"}'
//
// The environment is the local stack's (stack.env()); the worker builds the same Services the CLI and the local
// workflow use, and calls the same steps the Lambda handlers call.
import { performance } from 'node:perf_hooks';
import { writeStoredArchive } from '../functions/adapters/postgres/pg-restore.js';
import { encryptionContextFor } from '../functions/core/backup.js';
import { dumpStep, restoreStep } from '../functions/core/backup-steps.js';
import { describeError } from '../functions/core/errors.js';
import { dumpKey } from '../functions/core/layout.js';
import { compressedBy } from '../functions/core/manifest.js';
import type { StoredDump } from '../functions/core/ports.js';
import { timeOfBackupId } from '../functions/core/schedule.js';
import { readManifest } from '../functions/core/stored-backups.js';
import { parseConfig } from '../functions/platform/config.js';
import { localServices } from '../functions/platform/local-services.js';
import { createLogger } from '../functions/platform/logger.js';
import { retentionPolicy, targetConfig } from '../functions/platform/services.js';

export type WorkerJob =
  | { mode: 'baseline' }
  | { mode: 'dump'; target: string; backupId: string }
  | { mode: 'restore'; target: string; backupId: string; databaseUrl: string; jobs: number }
  | { mode: 'verify'; target: string; backupId: string }
  | { mode: 'fetch'; target: string; backupId: string; file: string };

/** What every worker reports: its own timings and memory. */
export interface WorkerReport {
  mode: WorkerJob['mode'];
  /** Time of the operation itself, services already built (what a warm Lambda would spend). */
  durationMs: number;
  /** From process start to the report: module loading and services included. */
  processMs: number;
  /** process.resourceUsage().maxRSS: the process's peak resident set, in KiB. */
  maxRssKib: number;
  /** Peak RSS before the operation started (modules loaded, services built), in KiB. */
  baselineRssKib: number;
  /** Peaks of V8's heap and of memory outside it (Buffers), sampled every 100 ms, in KiB. */
  sampled: { heapUsedKib: number; externalKib: number; arrayBuffersKib: number; rssKib: number };
  /** CPU seconds of this process (user and system), over the whole process. */
  cpu: { userS: number; systemS: number };
  details: Record<string, unknown>;
}

const processStart = performance.timeOrigin;

async function run(job: WorkerJob): Promise<WorkerReport> {
  const sampled = { heapUsedKib: 0, externalKib: 0, arrayBuffersKib: 0, rssKib: 0 };
  const sample = () => {
    const usage = process.memoryUsage();
    sampled.heapUsedKib = Math.max(sampled.heapUsedKib, Math.round(usage.heapUsed / 1024));
    sampled.externalKib = Math.max(sampled.externalKib, Math.round(usage.external / 1024));
    sampled.arrayBuffersKib = Math.max(sampled.arrayBuffersKib, Math.round(usage.arrayBuffers / 1024));
    sampled.rssKib = Math.max(sampled.rssKib, Math.round(usage.rss / 1024));
  };
  const config = parseConfig({ ...process.env });
  const services = await localServices(config, createLogger({ silent: true }));
  const baselineRssKib = process.resourceUsage().maxRSS;
  const sampler = setInterval(sample, 100);
  const started = performance.now();
  let details: Record<string, unknown> = {};
  try {
    details = await operate(job, services);
  } finally {
    clearInterval(sampler);
  }
  const durationMs = performance.now() - started;
  sample();
  const usage = process.resourceUsage();
  return {
    mode: job.mode,
    durationMs: Math.round(durationMs),
    processMs: Math.round(Date.now() - processStart),
    maxRssKib: usage.maxRSS,
    baselineRssKib,
    sampled,
    cpu: { userS: usage.userCPUTime / 1e6, systemS: usage.systemCPUTime / 1e6 },
    details,
  };
}

type Services = Awaited<ReturnType<typeof localServices>>;

async function operate(job: WorkerJob, services: Services): Promise<Record<string, unknown>> {
  switch (job.mode) {
    case 'baseline':
      return {};
    case 'dump': {
      const target = targetConfig(services.config, job.target);
      const result = await dumpStep(services, {
        target: job.target,
        backupId: job.backupId,
        tiers: ['hourly'],
        scheduledAt: timeOfBackupId(job.backupId),
        database: target.database,
        schema: services.config.KB_KEYCLOAK_SCHEMA,
        policy: retentionPolicy(services.config),
      });
      if (result.reused) throw new Error(`backup ${job.backupId} existed already: nothing was dumped`);
      const { dump, source } = result.manifest;
      return {
        key: dump.key,
        plainBytes: dump.plainBytes,
        archiveBytes: dump.archiveBytes ?? dump.plainBytes,
        storedBytes: dump.storedBytes,
        compression: dump.compression,
        compressedBy: dump.compressedBy,
        /** The dump's own measurement (pg_dump start to upload complete), without the manifest around it. */
        dumpMs: dump.durationMs,
        pgDumpVersion: source.pgDumpVersion,
        serverVersion: source.serverVersion,
        endpointRole: source.endpointRole,
      };
    }
    case 'restore': {
      const result = await restoreStep(services, {
        target: job.target,
        backupId: job.backupId,
        databaseUrl: job.databaseUrl,
        jobs: job.jobs,
      });
      return {
        /** Download, decrypt, pg_restore: the data path alone (restoreStep then runs the Keycloak checks). */
        restoreMs: result.durationMs,
        plainBytes: result.manifest.dump.plainBytes,
        storedBytes: result.manifest.dump.storedBytes,
        checksPassed: result.report.passed,
        failedChecks: result.report.checks.filter((c) => c.status === 'fail').map((c) => c.name),
      };
    }
    case 'verify': {
      const stored = await storedDumpOf(services, job.target, job.backupId);
      const verified = await services.tools.verifyStored(stored);
      // A second pass in the same process: without the first use of the read path's modules and a cold JIT.
      const warm = await services.tools.verifyStored(stored);
      const listStarted = performance.now();
      const listed = await services.tools.listArchive(stored);
      return {
        storedBytes: verified.storedBytes,
        plainBytes: verified.plainBytes,
        verifyMs: verified.durationMs,
        verifyWarmMs: warm.durationMs,
        /** The archive verification the verify step runs: the same pass plus pg_restore --list. */
        listMs: Math.round(performance.now() - listStarted),
        tocEntries: listed.tocEntries,
      };
    }
    case 'fetch': {
      // The same archive the pipeline stored, decrypted once to disk, for the raw pg_restore side.
      const stored = await storedDumpOf(services, job.target, job.backupId);
      const written = await writeStoredArchive({
        store: stored.store,
        key: stored.key,
        expectedSha256: stored.storedSha256,
        envelope: services.envelope,
        encryptionContext: stored.encryptionContext,
        compressedBy: stored.compressedBy,
        file: job.file,
      });
      return { file: job.file, plainBytes: written.plainBytes };
    }
  }
}

/** A stored dump as the backup steps describe it from its manifest (backup-steps.ts storedDump). */
async function storedDumpOf(services: Services, target: string, backupId: string): Promise<StoredDump> {
  const manifest = await readManifest(services.primaryStore, services.envelope, target, backupId);
  return {
    store: services.primaryStore,
    key: dumpKey(target, backupId),
    storedSha256: manifest.dump.storedSha256,
    encryptionContext: encryptionContextFor(target, backupId),
    pgDumpVersion: manifest.source.pgDumpVersion,
    compressedBy: compressedBy(manifest.dump),
  };
}

const argument = process.argv[2];
if (!argument) {
  process.stderr.write('usage: pipeline-worker.ts <job as JSON>\n');
  process.exit(2);
}
run(JSON.parse(argument) as WorkerJob).then(
  (report) => {
    // Pipes are written synchronously on Linux; exit at once rather than wait for the SDK's idle sockets.
    process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exit(0);
  },
  (error: unknown) => {
    process.stderr.write(`${describeError(error)}\n`);
    process.exitCode = 1;
  },
);
