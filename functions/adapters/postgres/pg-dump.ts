// pg_dump inside an exported snapshot, streamed through encryption into the object store, never buffered whole.
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import {
  ConfigurationError,
  DumpFailedError,
  isKeycloakBackupError,
  TransientError,
} from '../../core/errors.js';
import type { Envelope, ObjectStore } from '../../core/ports.js';
import { assertPgDumpCanDump, type PgVersion } from '../../core/versions.js';
import { FRAME_LENGTH } from '../crypto/envelope.js';
import {
  assertPgDumpHeader,
  coalesce,
  DigestStage,
  holdEndUntil,
  peekHeader,
  STAGE_HIGH_WATER_MARK,
  zstdCompressStage,
} from '../streams.js';
import { connect } from './connect.js';
import { lastLines, readToolVersion, spawnTool, toolConnection } from './pg-process.js';
import { readSourceInfo } from './source-info.js';
import { bufferedStdoutEnv } from './stdout-buffer.js';

export interface DumpToStoreOptions<T> {
  /** postgres:// URL of the endpoint to dump (the read replica). Its password goes to pg_dump by PGPASSWORD only. */
  databaseUrl: string;
  pgDumpPath: string;
  /**
   * KB_DUMP_COMPRESSION: `pipeline` (pg_dump writes an uncompressed archive, this pipeline compresses it with zstd
   * at `zstdLevel`), or what pg_dump itself is told: none, gzip[:0-9], lz4[:level], zstd[:level], a gzip level 0-9.
   */
  compression: string;
  /** KB_DUMP_ZSTD_LEVEL: the pipeline's zstd level; needed when `compression` is `pipeline`. */
  zstdLevel?: number;
  envelope: Envelope;
  store: ObjectStore;
  key: string;
  /** Bound into the encrypted message; decryption checks it. */
  encryptionContext: Record<string, string>;
  /** Runs on the exporting connection, inside the dump's snapshot, while pg_dump runs (the per-table counts). */
  inSnapshot: (client: pg.Client) => Promise<T>;
  retainUntil?: Date;
  /** Write the dump only where its key is free (ObjectExistsError otherwise): it never replaces an object. */
  createOnly?: boolean;
  /** Plain bytes dumped so far, at most once a second. */
  onProgress?: (plainBytes: number) => void;
  /** coreutils' libstdbuf.so: pg_dump then writes 64 KiB at a time instead of 4 KiB (stdout-buffer.ts). */
  stdbufLibrary?: string;
  /** Skips `pg_dump --version` when the caller already knows it. */
  pgDumpVersion?: PgVersion;
  /** Aborting stops pg_dump and the upload (e.g. just before the Lambda time limit). */
  signal?: AbortSignal;
}

export interface DumpResult<T> {
  plainBytes: number;
  plainSha256: string;
  storedBytes: number;
  storedSha256: string;
  durationMs: number;
  pgDumpVersion: string;
  /** The compression, normalised: the pipeline's ('zstd:3') or pg_dump's own ('gzip:6', 'none'). */
  compression: string;
  /** Who compressed: 'pipeline' (zstd around an uncompressed archive) or 'pg_dump' (inside the archive). */
  compressedBy: CompressedBy;
  /** The custom-format archive as pg_dump wrote it (what pg_restore reads); plainBytes when pg_dump compressed. */
  archiveBytes: number;
  serverVersion: string;
  /** True when the endpoint is a standby (the replica), false on a primary. */
  inRecovery: boolean;
  /** Seconds behind the primary at the start of the dump; null on a primary. */
  replicaLagSeconds: number | null;
  snapshotResult: T;
}

export type CompressedBy = 'pipeline' | 'pg_dump';

/** KB_DUMP_COMPRESSION's value for compression by the pipeline (the default). */
export const PIPELINE_COMPRESSION = 'pipeline';

export interface DumpCompression {
  /** Recorded in the manifest: 'zstd:3' (the pipeline's) or pg_dump's own normalised setting. */
  spec: string;
  compressedBy: CompressedBy;
  /** What pg_dump is told: no compression when the pipeline compresses. */
  pgDumpArgs: string[];
  /** Set when the pipeline compresses. */
  zstdLevel?: number;
}

/**
 * What a dump's compression settings mean. `pipeline`: pg_dump writes an uncompressed archive (-Z0, about a sixth
 * of its CPU at -Z6: 1.7 s against 10.5 s for the medium bench database) and zstd compresses it on another core.
 * Anything else is pg_dump's own compression, as before.
 */
export function dumpCompression(
  setting: string,
  zstdLevel: number | undefined,
  pgDumpMajor: number,
): DumpCompression {
  if (setting.trim() === PIPELINE_COMPRESSION) {
    if (zstdLevel === undefined || !Number.isInteger(zstdLevel) || zstdLevel < 1 || zstdLevel > 19) {
      throw new ConfigurationError(`KB_DUMP_ZSTD_LEVEL=${zstdLevel ?? '(unset)'} is not a zstd level`, {
        hint: "use a zstd level from 1 to 19 (3 is zstd's own default)",
      });
    }
    return {
      spec: `zstd:${zstdLevel}`,
      compressedBy: 'pipeline',
      pgDumpArgs: compressionArguments('none', pgDumpMajor).args,
      zstdLevel,
    };
  }
  const native = compressionArguments(setting, pgDumpMajor);
  return { spec: native.spec, compressedBy: 'pg_dump', pgDumpArgs: native.args };
}

/** Normalised spec and pg_dump arguments for a compression setting; lz4 and zstd need pg_dump 16 or later. */
export function compressionArguments(setting: string, pgDumpMajor: number): { spec: string; args: string[] } {
  const match = /^(?:(none)|(gzip|lz4|zstd)(?::(\d{1,2}))?|(\d))$/.exec(setting.trim());
  if (!match) {
    throw new ConfigurationError(`KB_DUMP_COMPRESSION=${setting} is not a compression setting`, {
      hint: 'use pipeline (the default), or for pg_dump itself none, gzip[:0-9], lz4[:level], zstd[:level] or a gzip level 0-9',
    });
  }
  const [, none, method, level, bareLevel] = match;
  if (none) return { spec: 'none', args: pgDumpMajor >= 16 ? ['--compress=none'] : ['-Z', '0'] };
  if (bareLevel !== undefined) return { spec: `gzip:${bareLevel}`, args: ['-Z', bareLevel] };
  if (method === 'gzip') {
    const gzipLevel = level ?? '6';
    if (Number(gzipLevel) > 9) {
      throw new ConfigurationError(`KB_DUMP_COMPRESSION=${setting}: gzip levels are 0-9`, {
        hint: 'use gzip:0 to gzip:9',
      });
    }
    return { spec: `gzip:${gzipLevel}`, args: ['-Z', gzipLevel] };
  }
  if (pgDumpMajor < 16) {
    throw new ConfigurationError(
      `KB_DUMP_COMPRESSION=${setting} needs pg_dump 16 or later; this pg_dump is ${pgDumpMajor}`,
      { hint: 'use gzip:N with this pg_dump, or ship a pg_dump 16+ client' },
    );
  }
  const spec = level === undefined ? `${method}` : `${method}:${level}`;
  return { spec, args: [`--compress=${spec}`] };
}

/**
 * Dumps one database to one object: a REPEATABLE READ transaction exports its snapshot, `inSnapshot` and
 * pg_dump --snapshot both read exactly that state, and the transaction stays open until pg_dump has exited.
 * The upload completes only if pg_dump exited 0, wrote a custom archive and `inSnapshot` succeeded;
 * on any failure the multipart upload is aborted and nothing is stored.
 */
export async function dumpToStore<T>(options: DumpToStoreOptions<T>): Promise<DumpResult<T>> {
  const started = performance.now();
  const tool = options.pgDumpVersion ?? (await readToolVersion(options.pgDumpPath));
  const compression = dumpCompression(options.compression, options.zstdLevel, tool.major);
  const { dbname, env } = toolConnection(options.databaseUrl);
  const client = await connect(options.databaseUrl, 'keycloak-backup-dump');
  // The server may end this connection while it waits idle in its snapshot (a recovery conflict on the standby
  // terminates it); the next query then fails only with "not queryable", and this keeps why.
  let connectionLost: Error | undefined;
  client.on('error', (error) => {
    connectionLost ??= error;
  });
  let inTransaction = false;
  try {
    const source = await readSourceInfo(client);
    assertPgDumpCanDump({ pgDump: tool, server: { major: source.serverMajor, full: source.serverVersion } });
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    inTransaction = true;
    // The counts run beside pg_dump's own backend: one process, not a parallel scan whose workers would take
    // the replica's cores from the dump (the planner chose one for a 600,000-row table).
    await client.query('SET LOCAL max_parallel_workers_per_gather = 0');
    const { rows } = await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id');
    const snapshotId = rows[0]!.id;

    const dump = spawnTool(
      options.pgDumpPath,
      [
        '--format=custom',
        `--snapshot=${snapshotId}`,
        '--no-password',
        ...compression.pgDumpArgs,
        '--dbname',
        dbname,
      ],
      {
        env: options.stdbufLibrary ? bufferedStdoutEnv(env, options.stdbufLibrary) : env,
        stdin: 'ignore',
        stdout: 'pipe',
      },
    );
    // The archive as pg_dump wrote it (counted), and what the encryption protects (counted and hashed): the same
    // bytes when pg_dump compressed, the zstd frame around the archive when the pipeline does.
    const archive = new DigestStage({ hash: false, onProgress: options.onProgress });
    const plain = new DigestStage();
    const stored = new DigestStage();
    const compress =
      compression.zstdLevel === undefined
        ? []
        : // zstd gives 100-300 KiB slices of its output buffer; the encryption runs faster per whole frame.
          [zstdCompressStage(compression.zstdLevel), coalesce(FRAME_LENGTH)];
    let settled: PromiseSettledResult<T> | undefined;
    try {
      const dumpSucceeded = async () => {
        const exit = await dump.exit;
        if (exit.code !== 0) throw dumpFailure(exit, dump.stderrTail());
      };
      // Started through a promise so that a synchronous throw in the callback is a rejection like any other.
      const snapshotWork = Promise.resolve().then(() => options.inSnapshot(client));
      snapshotWork.catch(() => undefined);

      const tail = new PassThrough({ highWaterMark: STAGE_HIGH_WATER_MARK });
      const flow = pipeline(
        [
          dump.child.stdout!,
          // pg_dump writes 4 or 64 KiB at a time: gather whole frames first, so every later stage runs per MiB.
          // Not when the pipeline compresses: zstd takes pg_dump's chunks as they come (its output is gathered
          // instead), and the 626 MiB of fresh 1 MiB buffers per medium dump that gathering the uncompressed archive
          // made, garbage waiting for V8's next collection, cost 20 MiB of peak RSS (181-188 MiB against 158-168 MiB
          // in two medium bench rounds each, at a load of 25) for no CPU saved (worker 7.1-7.7 s against 7.3 s).
          ...(compression.zstdLevel === undefined ? [coalesce(FRAME_LENGTH)] : []),
          peekHeader(5, assertPgDumpHeader),
          // The archive's last bytes go on only once pg_dump exited 0 and the counts are taken.
          holdEndUntil(() => Promise.all([dumpSucceeded(), snapshotWork])),
          archive,
          ...compress,
          plain,
          options.envelope.encryptStream(options.encryptionContext),
          stored,
          tail,
        ],
        options.signal ? { signal: options.signal } : {},
      );
      const upload = options.store.putStream(options.key, tail, {
        retainUntil: options.retainUntil,
        createOnly: options.createOnly,
      });
      const stopDump = () => dump.stop();
      flow.catch(stopDump);
      upload.catch((error: unknown) => {
        // The dump does not rely on the store ending the body it gave up on (the S3 adapter does; ObjectStore does
        // not promise it): left unread, the stages stay full, pg_dump blocks on its pipe and the dump waits forever.
        tail.destroy(error as Error);
        stopDump();
      });
      snapshotWork.catch(stopDump);

      const [flowResult, uploadResult, snapshotResult] = await Promise.allSettled([
        flow,
        upload,
        snapshotWork,
      ]);
      const exit = await dump.exit.catch((error: unknown) => error);
      const stderr = dump.stderrTail();
      const failure = firstFailure({
        exit,
        stderr,
        stoppedByUs: dump.stoppedByUs && isOurStop(stderr),
        signal: options.signal,
        results: [snapshotResult, flowResult, uploadResult],
      });
      if (failure !== undefined) throw failure;
      settled = snapshotResult;
    } finally {
      // Whatever went wrong above, pg_dump does not outlive this call.
      dump.stop();
    }

    const head = await options.store.head(options.key);
    if (head === undefined || head.size !== stored.bytes) {
      throw new DumpFailedError(
        `stored object ${options.key} has ${head?.size ?? 'no'} bytes, ${stored.bytes} were written`,
        { hint: 'the stored object is not what was written: run the backup again and check the bucket' },
      );
    }
    // pg_dump exited 0 having read everything in the snapshot, and the counts are taken: the snapshot has served.
    // A standby that ends this read-only transaction now (a recovery conflict terminates the idle connection) takes
    // nothing from the dump, so its COMMIT failing does not fail the dump (a retry would find its own complete,
    // create-only object and stop with ObjectExistsError); a warning says it happened.
    await client.query('COMMIT').catch((error: unknown) => {
      const reason = connectionLost ?? (error as Error);
      process.emitWarning(
        `the dump's snapshot connection ended after the dump had finished: ${reason.message}`,
      );
    });
    inTransaction = false;
    return {
      plainBytes: plain.bytes,
      plainSha256: plain.digestHex(),
      storedBytes: stored.bytes,
      storedSha256: stored.digestHex(),
      durationMs: Math.round(performance.now() - started),
      pgDumpVersion: tool.full,
      compression: compression.spec,
      compressedBy: compression.compressedBy,
      archiveBytes: archive.bytes,
      serverVersion: source.serverVersion,
      inRecovery: source.inRecovery,
      replicaLagSeconds: source.replicaLagSeconds,
      snapshotResult: (settled as PromiseFulfilledResult<T>).value,
    };
  } finally {
    if (inTransaction) await client.query('ROLLBACK').catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}

/** Which failure explains a failed dump: pg_dump's own exit first, then the caller's abort, then the rest. */
function firstFailure(outcome: {
  exit: unknown;
  stderr: string;
  /** We stopped pg_dump (SIGTERM) after another part had failed, and pg_dump said nothing but that it was stopped. */
  stoppedByUs: boolean;
  signal: AbortSignal | undefined;
  results: PromiseSettledResult<unknown>[];
}): unknown {
  const { exit, stderr, stoppedByUs, signal, results } = outcome;
  if (isKeycloakBackupError(exit)) return exit; // pg_dump could not start
  const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected.length === 0) return undefined;
  const toolExit = exit as { code: number | null; signal: NodeJS.Signals | null };
  // A non-zero exit code is pg_dump's own verdict, unless we stopped it: pg_dump answers our SIGTERM with
  // "terminated by user" and exit code 1, after another part had failed (an upload refused, the counts' query), and
  // that part's error says why. pg_dump failing to write its output likewise only follows a later stage's failure.
  const outputClosed = /could not write|broken pipe/i.test(stderr);
  if (toolExit.code !== null && toolExit.code !== 0 && !outputClosed && !stoppedByUs) {
    return dumpFailure(toolExit, stderr);
  }
  if (signal?.aborted) return signal.reason ?? rejected[0]!.reason;
  const named = rejected.find((r) => isKeycloakBackupError(r.reason));
  const reason = (named ?? rejected[0]!).reason;
  return isKeycloakBackupError(reason) ? reason : translateSnapshotError(reason);
}

/**
 * pg_dump's answer to our SIGTERM is "terminated by user" (its cancel handler, exit code 1). Alone, that is our stop;
 * beside an error of its own ("pg_dump: error: ..."), pg_dump was failing by itself and our signal came as it exited.
 */
function isOurStop(stderr: string): boolean {
  return /terminated by user/i.test(stderr) && !/error:/i.test(stderr);
}

function dumpFailure(exit: { code: number | null; signal: NodeJS.Signals | null }, stderr: string): Error {
  const how = exit.code !== null ? `exited with code ${exit.code}` : `was killed by ${exit.signal}`;
  const tail = lastLines(stderr);
  if (/conflict with recovery/i.test(stderr)) {
    return new TransientError(
      `pg_dump ${how}: cancelled by a conflict with recovery on the standby: ${tail}`,
      {
        hint: 'set hot_standby_feedback = on (or raise max_standby_streaming_delay) on the replica; the dump is retried',
      },
    );
  }
  return new DumpFailedError(`pg_dump ${how}${tail ? `: ${tail}` : ''}`, {
    hint: 'nothing was stored; read the pg_dump message above',
  });
}

/** Errors of the exporting connection (the counts): a recovery conflict is worth a retry. */
function translateSnapshotError(error: unknown): unknown {
  const e = error as { code?: string; message?: string };
  if (e?.code === '40001' || /conflict with recovery/i.test(e?.message ?? '')) {
    return new TransientError(`the dump's snapshot was cancelled by a conflict with recovery: ${e.message}`, {
      cause: error,
      hint: 'set hot_standby_feedback = on on the replica; the dump is retried',
    });
  }
  // node-postgres' own words for a connection the server ended (a standby terminating it on a recovery conflict):
  // the next query on it fails with no SQLSTATE.
  const lost = /not queryable|Connection terminated/i.test(e?.message ?? '');
  if (lost || (typeof e?.code === 'string' && /^(08|57P)/.test(e.code))) {
    return new TransientError(`the connection to the database was lost during the dump: ${e.message}`, {
      cause: error,
    });
  }
  // Anything else that stopped the stream (a stage of the pipeline failing mid-stream: the key file's disk, a
  // program of ours) is still a dump that failed, by name: the alert and the state machine see DumpFailedError.
  const message = error instanceof Error ? error.message : String(error);
  return new DumpFailedError(`the dump stopped mid-stream: ${message}`, {
    cause: error,
    hint: 'nothing was stored (the upload was aborted); the next run dumps again. If it repeats, look at the cause',
  });
}
