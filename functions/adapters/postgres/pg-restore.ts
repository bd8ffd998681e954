// Reads a stored dump back: checksum, decryption, archive header, then pg_restore (--list, or into a database).
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ChecksumMismatchError,
  DecryptionFailedError,
  isKeycloakBackupError,
  RestoreFailedError,
} from '../../core/errors.js';
import type { Envelope, ObjectStore } from '../../core/ports.js';
import { assertPgRestoreCanRead, type PgVersion, parsePgVersion } from '../../core/versions.js';
import {
  assertZstdHeader,
  checksumMismatch,
  DigestStage,
  discard,
  peekHeader,
  READ_HIGH_WATER_MARK,
  STAGE_HIGH_WATER_MARK,
  ZSTD_MAGIC,
  zstdDecompressStage,
} from '../streams.js';
import { ArchiveSpoolRewriter, type OffsetPatch } from './archive-offsets.js';
import { lastLines, readToolVersion, spawnTool, type ToolProcess, toolConnection } from './pg-process.js';

/** What the custom-format archive says about itself in its first bytes. */
export interface ArchiveHeader {
  /** Archive format version, e.g. '1.14' (PostgreSQL 15), '1.15' (16), '1.16' (17). */
  formatVersion: string;
  database: string;
  /** e.g. '15.18 (Debian 15.18-0+deb12u1)' */
  serverVersion: string;
  pgDumpVersion: PgVersion;
}

/** Enough bytes for the header of any real archive (its strings are a database name and two versions). */
const ARCHIVE_HEADER_PEEK = 4096;

/**
 * Parses the header of a pg_dump custom archive (PGDMP, format version, int and offset sizes, format,
 * compression, creation time, database name, server and pg_dump versions): pg_backup_archiver.c ReadHead.
 */
export function parseArchiveHeader(head: Buffer): ArchiveHeader {
  const fail = (why: string): never => {
    throw new RestoreFailedError(`not a pg_dump custom-format archive: ${why}`, {
      hint: 'the object decrypted, but what it holds is not a custom-format dump',
    });
  };
  if (head.subarray(0, 4).equals(ZSTD_MAGIC)) {
    throw new RestoreFailedError('the decrypted dump is a zstd frame, not a pg_dump custom-format archive', {
      hint: "the pipeline compressed this dump but its manifest does not say so (dump.compressedBy 'pipeline'); decompress it with zstd -d before pg_restore",
    });
  }
  if (head.length < 12 || head.toString('latin1', 0, 5) !== 'PGDMP') fail('no PGDMP magic');
  let at = 5;
  const byte = (): number => {
    if (at >= head.length) fail('header cut short');
    return head[at++]!;
  };
  const vmaj = byte();
  const vmin = byte();
  const vrev = byte();
  const version = (vmaj << 16) | (vmin << 8) | vrev;
  const v = (major: number, minor: number) => (major << 16) | (minor << 8);
  const intSize = byte();
  if (intSize < 1 || intSize > 8) fail(`integer size ${intSize}`);
  const readInt = (): number => {
    const negative = byte() !== 0;
    let value = 0;
    for (let i = 0; i < intSize; i++) value += byte() * 2 ** (8 * i);
    return negative ? -value : value;
  };
  const readString = (): string => {
    const length = readInt();
    if (length < 0) return '';
    if (at + length > head.length) fail('header cut short');
    const text = head.toString('utf8', at, at + length);
    at += length;
    return text;
  };
  if (version >= v(1, 7)) byte(); // offset size
  const format = byte();
  if (format !== 1) fail(`archive format ${format}, expected custom (1)`);
  if (version >= v(1, 15))
    byte(); // compression algorithm
  else if (version >= v(1, 2)) readInt(); // compression level
  if (version >= v(1, 4)) for (let i = 0; i < 7; i++) readInt(); // creation time
  const database = readString();
  const serverVersion = version >= v(1, 10) ? readString() : '';
  const pgDumpVersionText = version >= v(1, 10) ? readString() : '';
  let pgDumpVersion: PgVersion;
  try {
    pgDumpVersion = parsePgVersion(pgDumpVersionText);
  } catch {
    return fail('no pg_dump version in the header');
  }
  return { formatVersion: `${vmaj}.${vmin}`, database, serverVersion, pgDumpVersion };
}

export interface ReadStoredOptions {
  store: ObjectStore;
  key: string;
  /** SHA-256 of the stored (encrypted) bytes, from the manifest. */
  expectedSha256: string;
  envelope: Envelope;
  /** Entries that must be in the message's encryption context (the backup's own). */
  encryptionContext: Record<string, string>;
  /**
   * 'pipeline': the decrypted bytes are a zstd frame around the archive (manifest dump.compressedBy), decompressed
   * on the way to pg_restore. Absent or 'pg_dump': the decrypted bytes are the archive (pg_dump compressed inside).
   */
  compressedBy?: 'pipeline' | 'pg_dump';
  /** SHA-256 of the decrypted bytes (the manifest's plainSha256): checked too when given. The pipeline does not give
   * it: the stored SHA-256 and the authenticated decryption already prove the plaintext, and one more pass would
   * cost ~15 % of the verification CPU. It lets a test prove that the recorded plain digest is right. */
  expectedPlainSha256?: string;
  /** Stored bytes read so far, at most once a second. */
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

export interface VerifyResult {
  storedBytes: number;
  /** Decrypted bytes (the zstd frame when the pipeline compressed). */
  plainBytes: number;
  /** Archive bytes after the pipeline's decompression; plainBytes when pg_dump compressed; 0 when not decompressed. */
  archiveBytes: number;
  durationMs: number;
  /** Stored megabytes (MiB) per second for read + SHA-256 + decryption. */
  MBps: number;
}

/**
 * The fast verification pass: re-read, SHA-256 against the manifest, decrypt every frame, discard. A zstd frame is
 * not decompressed here (the authenticated decryption already proves it is the frame that was written; only its
 * magic is checked): readArchiveList and the restore decompress it.
 */
export async function verifyStoredObject(options: ReadStoredOptions): Promise<VerifyResult> {
  const started = performance.now();
  const read = readStages(options, undefined, { decompress: false });
  await runRead(options, read, async (source) => {
    await pipeline([source, ...read.stages, discard()], signalOption(options));
  });
  return read.result(started);
}

export interface ArchiveListResult extends VerifyResult {
  /** TOC entries pg_restore --list printed. */
  tocEntries: number;
  archive: ArchiveHeader;
  pgRestoreVersion: string;
}

/**
 * Verifies the object as verifyStoredObject does and, in the same pass, has `pg_restore --list` read the
 * archive's table of contents from stdin. pg_restore stops reading after the TOC; the rest is still decrypted
 * (and so authenticated) to the end.
 */
export async function readArchiveList(
  options: ReadStoredOptions & { pgRestorePath: string; pgRestoreVersion?: PgVersion },
): Promise<ArchiveListResult> {
  const started = performance.now();
  const tool = options.pgRestoreVersion ?? (await readToolVersion(options.pgRestorePath));
  const read = readStages(options, tool);
  const list = spawnTool(options.pgRestorePath, ['--list'], {
    env: process.env,
    stdin: 'pipe',
    stdout: 'pipe',
  });
  const counter = new TocCounter();
  const listed = pipeline(list.child.stdout!, counter);
  listed.catch(() => undefined);
  try {
    await runRead(options, read, async (source) => {
      await pipeline([source, ...read.stages, feedThenDiscard(list)], signalOption(options));
    });
    await listed;
    const exit = await list.exit;
    if (exit.code !== 0) {
      throw new RestoreFailedError(
        `pg_restore --list ${describeExit(exit)}: ${lastLines(list.stderrTail())}`,
        {
          hint: 'the archive decrypted but pg_restore cannot read its table of contents: do not rely on this backup',
        },
      );
    }
  } finally {
    list.stop();
  }
  if (counter.entries === 0) {
    throw new RestoreFailedError('pg_restore --list found no entries in the archive', {
      hint: 'the dump is empty: do not rely on this backup',
    });
  }
  return {
    ...read.result(started),
    tocEntries: counter.entries,
    archive: read.header(),
    pgRestoreVersion: tool.full,
  };
}

export interface RestoreOptions extends ReadStoredOptions {
  pgRestorePath: string;
  pgRestoreVersion?: PgVersion;
  /** postgres:// URL of the (empty, scratch) database to restore into. */
  databaseUrl: string;
  /** 1: pg_restore reads stdin as the object streams. >1: the archive goes to a temp file first (parallel restore needs to seek). */
  jobs?: number;
  /** Where the temp file goes for jobs > 1 (default os.tmpdir()); it holds the plain dump and is removed after. */
  tempDir?: string;
  /** The pg_dump version the manifest recorded; the archive header is checked as well. */
  archivePgDumpVersion?: string;
}

export interface RestoreResult extends VerifyResult {
  archive: ArchiveHeader;
  pgRestoreVersion: string;
  jobs: number;
}

/**
 * Restores a stored dump into a database with --no-owner --no-acl --exit-on-error. The checksum is part of
 * the verdict: a mismatch found only at the end of the stream fails the restore even if pg_restore exited 0.
 */
export async function restoreFromStore(options: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const jobs = Math.max(1, Math.floor(options.jobs ?? 1));
  const tool = options.pgRestoreVersion ?? (await readToolVersion(options.pgRestorePath));
  if (options.archivePgDumpVersion !== undefined) {
    assertPgRestoreCanRead({
      pgRestore: tool,
      archiveDumpedBy: parsePgVersion(options.archivePgDumpVersion),
    });
  }
  const read = readStages(options, tool);
  const { dbname, env } = toolConnection(options.databaseUrl);
  const restoreArgs = ['--no-owner', '--no-acl', '--exit-on-error', '--no-password', '--dbname', dbname];

  if (jobs === 1) {
    const restore = spawnTool(options.pgRestorePath, restoreArgs, { env, stdin: 'pipe', stdout: 'ignore' });
    try {
      await runRead(options, read, async (source) => {
        const flow = pipeline([source, ...read.stages, restore.child.stdin!], signalOption(options));
        const [flowResult, exitResult] = await Promise.allSettled([flow, restore.exit]);
        // Our own verdict on the bytes comes first; pg_restore failing on cut-off input is only a symptom.
        if (flowResult.status === 'rejected' && !isBrokenPipe(flowResult.reason)) throw flowResult.reason;
        if (exitResult.status === 'rejected') throw exitResult.reason;
        if (exitResult.value.code !== 0) throw restoreFailure(restore, exitResult.value);
        if (flowResult.status === 'rejected') throw flowResult.reason;
      });
    } finally {
      restore.stop();
    }
  } else {
    const dir = await mkdtemp(join(options.tempDir ?? tmpdir(), 'kb-restore-'));
    const schema = new SchemaFirst(options.pgRestorePath, restoreArgs, env, dir);
    try {
      const file = join(dir, 'archive.pgdump');
      await spool({ ...options, signal: schema.signal(options.signal) }, read, file, (toc) =>
        schema.start(toc),
      );
      // The schema's restore ran beside the spool; only the data and what follows it are left.
      const sections = (await schema.finished()) ? ['--section=data', '--section=post-data'] : [];
      const restore = spawnTool(
        options.pgRestorePath,
        [...restoreArgs, ...sections, `--jobs=${jobs}`, file],
        {
          env,
          stdin: 'ignore',
          stdout: 'ignore',
        },
      );
      const exit = await restore.exit;
      if (exit.code !== 0) throw restoreFailure(restore, exit);
    } catch (error) {
      throw (await schema.failure()) ?? error;
    } finally {
      schema.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }
  return { ...read.result(started), archive: read.header(), pgRestoreVersion: tool.full, jobs };
}

/**
 * The schema (pg_restore --section=pre-data) restored from the archive's table of contents while its data is still
 * being spooled: creating some hundred tables, sequences and functions one committed statement at a time waits on
 * the server's WAL flushes, not on a CPU, and the spool needs the CPU. It runs as one transaction, from a file that
 * holds only the header and the TOC (pre-data reads no data). pg_restore --section=data --section=post-data --jobs
 * then restores the rest, as a single run would (pg_restore's documented sections). Medium bench: see RESULTS.md,
 * eighth round.
 */
class SchemaFirst {
  private tool: ToolProcess | undefined;
  private starting: Promise<void> | undefined;
  private readonly abort = new AbortController();

  constructor(
    private readonly pgRestorePath: string,
    private readonly restoreArgs: readonly string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly dir: string,
  ) {}

  /** The spool's signal: the caller's, and this restore's failing (no use spooling the rest). */
  signal(outer: AbortSignal | undefined): AbortSignal {
    return outer ? AbortSignal.any([outer, this.abort.signal]) : this.abort.signal;
  }

  /** Starts the schema's restore from `toc` (header and TOC); called once the spool has read them. */
  start(toc: Buffer): void {
    this.starting = (async () => {
      const file = join(this.dir, 'toc.pgdump');
      await writeFile(file, toc, { mode: 0o600, flag: 'wx' });
      const tool = spawnTool(
        this.pgRestorePath,
        [...this.restoreArgs, '--section=pre-data', '--single-transaction', file],
        { env: this.env, stdin: 'ignore', stdout: 'ignore' },
      );
      this.tool = tool;
      tool.exit.then(
        (exit) => {
          if (exit.code !== 0) this.abort.abort();
        },
        () => this.abort.abort(),
      );
    })();
    this.starting.catch(() => this.abort.abort());
  }

  /** Waits for the schema's restore: true when it ran and succeeded, false when it never started; throws its failure. */
  async finished(): Promise<boolean> {
    if (!this.starting) return false;
    await this.starting;
    const tool = this.tool!;
    const exit = await tool.exit;
    if (exit.code !== 0) throw restoreFailure(tool, exit);
    return true;
  }

  /** The schema restore's own failure, which explains a spool it stopped; undefined when it did not fail. */
  async failure(): Promise<Error | undefined> {
    if (!this.abort.signal.aborted || !this.starting) return undefined;
    try {
      await this.finished();
      return undefined;
    } catch (error) {
      return error as Error;
    }
  }

  stop(): void {
    this.tool?.stop();
  }
}

export interface StoredArchiveFile extends VerifyResult {
  archive: ArchiveHeader;
}

/**
 * Writes the plain archive of a stored dump to `file`, read and checked as a restore reads it (SHA-256 of the
 * stored bytes, authenticated decryption, archive header). The file must not exist yet: it is created with mode
 * 0600, and on any later failure it is removed, so no partial archive is left to be taken for a whole one. For
 * tools that read the archive themselves, such as the benchmark's raw pg_restore.
 */
export async function writeStoredArchive(
  options: ReadStoredOptions & { file: string },
): Promise<StoredArchiveFile> {
  const started = performance.now();
  const read = readStages(options);
  await spool(options, read, options.file);
  return { ...read.result(started), archive: read.header() };
}

/**
 * Reads the object through `read`'s stages into `file`, created anew with mode 0600 (an existing file would keep
 * its own mode, and this one holds the plain dump: password hashes, keys); removed again if anything fails. The
 * sink takes 1 MiB at a time: at 64 KiB every chunk waited for its own write. The file is the archive as
 * archive-offsets.ts rewrites it: an uncompressed table's rows in chunks of 256 KiB instead of one per row, so
 * pg_restore sends the server that many CopyData messages (eighth round), and once whole, the data offsets pg_dump
 * could not write to a pipe, so pg_restore --jobs seeks to each table's data instead of every worker reading the
 * archive from the start: 0.85-0.94 CPU s of pg_restore at medium against 3.4-3.7 s (bench/RESULTS.md, seventh
 * round).
 */
async function spool(
  options: ReadStoredOptions,
  read: ReturnType<typeof readStages>,
  file: string,
  onToc?: (toc: Buffer) => void,
): Promise<void> {
  const handle = await open(file, 'wx', 0o600);
  try {
    const rewrite = new ArchiveSpoolRewriter();
    let patches: readonly OffsetPatch[] = [];
    await runRead(options, read, async (source) => {
      const sink = handle.createWriteStream({ highWaterMark: STAGE_HIGH_WATER_MARK });
      const stage = rewriteStage(rewrite, onToc, (found) => {
        patches = found;
      });
      await pipeline([source, ...read.stages, stage, sink], signalOption(options));
    });
    await writeOffsets(file, patches);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(file, { force: true });
    throw error;
  }
}

/**
 * Passes the archive on as `rewrite` rewrites it; hands over its header and TOC once read, and at its end the data
 * offsets to fill in.
 */
function rewriteStage(
  rewrite: ArchiveSpoolRewriter,
  onToc: ((toc: Buffer) => void) | undefined,
  onPatches: (patches: OffsetPatch[]) => void,
): Transform {
  let tocGiven = onToc === undefined;
  const giveToc = () => {
    if (tocGiven || !rewrite.tocBytes) return;
    tocGiven = true;
    onToc?.(rewrite.tocBytes);
  };
  return new Transform({
    highWaterMark: STAGE_HIGH_WATER_MARK,
    transform(chunk: Buffer, _encoding, callback) {
      for (const piece of rewrite.update(chunk)) this.push(piece);
      giveToc();
      callback();
    },
    flush(callback) {
      const { rest, patches } = rewrite.finish();
      for (const piece of rest) this.push(piece);
      giveToc(); // an archive shorter than its TOC's first read: the schema still goes first, as one transaction
      onPatches(patches);
      callback();
    },
  });
}

/** Writes the TOC's data offsets into the spooled archive, in place (their bytes were reserved by pg_dump). */
async function writeOffsets(file: string, patches: readonly OffsetPatch[]): Promise<void> {
  if (patches.length === 0) return;
  const handle = await open(file, 'r+');
  try {
    for (const patch of patches) {
      const { bytesWritten } = await handle.write(patch.bytes, 0, patch.bytes.length, patch.position);
      if (bytesWritten !== patch.bytes.length) throw new Error(`short write of a data offset into ${file}`);
    }
  } finally {
    await handle.close();
  }
}

/**
 * The stages every read shares: hash the stored bytes, decrypt, count (and when asked hash) the decrypted bytes,
 * decompress the pipeline's zstd frame, check the archive header and version. With `decompress: false` a zstd
 * frame is only checked for its magic and there is no archive header to read.
 */
function readStages(options: ReadStoredOptions, pgRestore?: PgVersion, { decompress = true } = {}) {
  // The socket's own 16-64 KiB reads go straight on, and every stage holds at most 64 KiB of them
  // (READ_HIGH_WATER_MARK): gathering them into 1 MiB buffers first (as the dump does with pg_dump's output), or
  // letting each stage hold 1 MiB, kept buffers alive across scavenges while the decryption holds a frame, and V8
  // ran a full mark-compact every 40-60 ms; it doubled the CPU of a verification pass (bench/RESULTS.md).
  const highWaterMark = READ_HIGH_WATER_MARK;
  const stored = new DigestStage({
    expectSha256: options.expectedSha256,
    objectKey: options.key,
    onProgress: options.onProgress,
    highWaterMark,
  });
  // The authenticated decryption already proves the plaintext; its hash is only worth a pass when asked for.
  const plain = new DigestStage(
    options.expectedPlainSha256 === undefined
      ? { hash: false, highWaterMark }
      : { expectSha256: options.expectedPlainSha256, objectKey: `${options.key} (decrypted)`, highWaterMark },
  );
  let header: ArchiveHeader | undefined;
  const checkArchive = peekHeader(
    ARCHIVE_HEADER_PEEK,
    (head) => {
      header = parseArchiveHeader(head);
      if (pgRestore) assertPgRestoreCanRead({ pgRestore, archiveDumpedBy: header.pgDumpVersion });
    },
    highWaterMark,
  );
  const zstd = options.compressedBy === 'pipeline';
  // Counts the archive after decompression (the decompressor's output is 1 MiB chunks: the spool's size).
  const archive = zstd && decompress ? new DigestStage({ hash: false }) : undefined;
  const stages = [
    stored,
    options.envelope.decryptStream(options.encryptionContext),
    plain,
    ...(!zstd
      ? [checkArchive]
      : decompress
        ? [peekHeader(4, assertZstdHeader, highWaterMark), zstdDecompressStage(), archive!, checkArchive]
        : [peekHeader(4, assertZstdHeader, highWaterMark)]),
  ];
  return {
    stages,
    stored,
    header: (): ArchiveHeader => header!,
    result: (started: number): VerifyResult => {
      const durationMs = performance.now() - started;
      return {
        storedBytes: stored.bytes,
        plainBytes: plain.bytes,
        archiveBytes: !zstd ? plain.bytes : (archive?.bytes ?? 0),
        durationMs: Math.round(durationMs),
        MBps: Math.round((stored.bytes / 1048576 / Math.max(durationMs, 1)) * 1000 * 10) / 10,
      };
    },
  };
}

/**
 * Opens the object and runs `consume`; on failure, names the cause. Any failure before the whole object was
 * hashed (a flipped byte fails decryption first) is checked against a fresh hash of the object: tampering
 * is reported as ChecksumMismatchError, not as a key or archive problem.
 */
async function runRead(
  options: ReadStoredOptions,
  read: { stored: DigestStage },
  consume: (source: Readable) => Promise<void>,
): Promise<void> {
  const source = await options.store.getStream(options.key);
  try {
    await consume(source);
  } catch (error) {
    if (error instanceof ChecksumMismatchError) throw error;
    if (!read.stored.complete && !options.signal?.aborted && couldBeTampering(error)) {
      const actual = await hashObject(options.store, options.key).catch(() => undefined);
      if (actual !== undefined && actual !== options.expectedSha256.toLowerCase()) {
        const mismatch = checksumMismatch(options.key, options.expectedSha256, actual);
        throw Object.assign(mismatch, { cause: error });
      }
    }
    throw namedReadError(error, options.key);
  } finally {
    if (!source.destroyed) source.destroy();
  }
}

/** Failures that changed bytes can cause; a version, setting or availability problem is reported as it is. */
function couldBeTampering(error: unknown): boolean {
  if (error instanceof DecryptionFailedError || error instanceof RestoreFailedError) return true;
  return !isKeycloakBackupError(error);
}

/** SHA-256 of a stored object, read whole. */
export async function hashObject(store: ObjectStore, key: string): Promise<string> {
  const digest = new DigestStage();
  await pipeline(await store.getStream(key), digest, discard());
  return digest.digestHex();
}

function namedReadError(error: unknown, key: string): unknown {
  if (isKeycloakBackupError(error)) return error;
  if ((error as { name?: string })?.name === 'AbortError') return error;
  return new RestoreFailedError(`reading ${key} failed: ${(error as Error)?.message ?? String(error)}`, {
    cause: error,
    hint: 'the object could not be read to the end; try again, then use another backup',
  });
}

function restoreFailure(restore: ToolProcess, exit: { code: number | null; signal: string | null }): Error {
  // pg_restore prints the statement after the server's error: a CREATE TABLE's 20 last lines hid the error itself.
  const tail = restore.stderrTail();
  const errors = tail.split('\n').filter((line) => line.startsWith('pg_restore: error:'));
  const said = errors.length > 0 ? errors.slice(-3).join('\n') : lastLines(tail);
  return new RestoreFailedError(`pg_restore ${describeExit(exit)}: ${said}`, {
    hint: 'the archive decrypted and matched its checksum, but PostgreSQL refused part of it; read the message',
  });
}

function describeExit(exit: { code: number | null; signal: string | null }): string {
  return exit.code !== null ? `exited with code ${exit.code}` : `was killed by ${exit.signal}`;
}

function isBrokenPipe(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

function signalOption(options: { signal?: AbortSignal }): { signal?: AbortSignal } {
  return options.signal ? { signal: options.signal } : {};
}

/**
 * Writes into a child's stdin while it reads, then throws the rest away: pg_restore --list closes stdin after
 * the table of contents, and the rest of the archive must still flow to be authenticated.
 */
function feedThenDiscard(tool: ToolProcess): Writable {
  const stdin = tool.child.stdin!;
  let open = true;
  let waiting: (() => void) | undefined;
  const release = () => {
    const resume = waiting;
    waiting = undefined;
    resume?.();
  };
  const closed = () => {
    open = false;
    release();
  };
  // EPIPE here is the expected end of pg_restore's interest, not a failure; its exit code is the verdict.
  stdin.on('error', closed);
  stdin.on('close', closed);
  stdin.on('drain', release);
  return new Writable({
    highWaterMark: STAGE_HIGH_WATER_MARK,
    write(chunk: Buffer, _encoding, callback) {
      if (!open) {
        callback();
        return;
      }
      if (stdin.write(chunk)) {
        callback();
        return;
      }
      waiting = () => callback();
    },
    final(callback) {
      if (open) stdin.end();
      callback();
    },
    destroy(error, callback) {
      if (open) stdin.destroy();
      callback(error);
    },
  });
}

/** Counts the TOC entries in pg_restore --list output (lines that are neither blank nor ';' comments). */
class TocCounter extends Writable {
  entries = 0;
  private partial = '';

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.count(line);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.count(this.partial);
    this.partial = '';
    callback();
  }

  private count(line: string): void {
    const text = line.trim();
    if (text !== '' && !text.startsWith(';')) this.entries += 1;
  }
}
