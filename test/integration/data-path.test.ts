// The data path end to end: the local stack (PostgreSQL primary and hot standby with the Keycloak fixture,
// s3rver), real pg_dump/pg_restore, real encryption. Dumps are taken from the standby, as in production.

import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EsdkEnvelope } from '../../functions/adapters/crypto/envelope.js';
import { localKeyFingerprint } from '../../functions/adapters/local/key-file.js';
import { localKeyring } from '../../functions/adapters/local/raw-aes-keyring.js';
import {
  ArchiveSpoolRewriter,
  readTocOffsets,
  TOC_OFFSET_NO_DATA,
  TOC_OFFSET_NOT_SET,
  TOC_OFFSET_SET,
} from '../../functions/adapters/postgres/archive-offsets.js';
import { dumpToStore } from '../../functions/adapters/postgres/pg-dump.js';
import { spawnTool, toolConnection } from '../../functions/adapters/postgres/pg-process.js';
import {
  hashObject,
  readArchiveList,
  restoreFromStore,
  verifyStoredObject,
  writeStoredArchive,
} from '../../functions/adapters/postgres/pg-restore.js';
import {
  bufferedStdoutEnv,
  findStdbufLibrary,
  stdbufCandidates,
} from '../../functions/adapters/postgres/stdout-buffer.js';
import { S3ObjectStore } from '../../functions/adapters/s3-object-store.js';
import { zstdDecompressStage } from '../../functions/adapters/streams.js';
import {
  ChecksumMismatchError,
  ConfigurationError,
  DatabaseUnavailableError,
  DecryptionFailedError,
  DumpFailedError,
  RestoreFailedError,
  TransientError,
  VersionMismatchError,
} from '../../functions/core/errors.js';
import { localS3ClientConfig } from '../../local/s3-server.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const context = { target: 'kc', backupId: '20260101T0000Z' };
const execFileAsync = promisify(execFile);

let stack: TestStack;
let store: S3ObjectStore;
let sentCommands: string[];
let pgDump: string;
let pgRestore: string;
/** The machine's libstdbuf.so: the dumps here write 64 KiB at a time, as the Lambdas' do. */
let stdbufLibrary: string | undefined;
const key = randomBytes(32);
const envelope = new EsdkEnvelope({
  keyring: localKeyring(key),
  keyIds: ['keycloak-backup/local-key'],
  fingerprint: localKeyFingerprint(key),
});

/** The URL of another database (or role) on the same server as `url`. */
function withDatabase(url: string, database: string, user?: { name: string; password: string }): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  if (user !== undefined) {
    parsed.username = user.name;
    parsed.password = user.password;
  }
  return parsed.toString();
}

async function onPrimary(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: withDatabase(stack.primaryUrl, 'postgres') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Row counts of every base table in the public schema, read in one snapshot. */
async function countTables(client: pg.Client): Promise<Record<string, number>> {
  const { rows } = await client.query<{ name: string }>(
    `select table_name as name from information_schema.tables
      where table_schema = 'public' and table_type = 'BASE TABLE' order by 1`,
  );
  const counts: Record<string, number> = {};
  for (const { name } of rows) {
    const result = await client.query<{ n: string }>(
      `select count(*) as n from public.${pg.escapeIdentifier(name)}`,
    );
    counts[name] = Number(result.rows[0]!.n);
  }
  return counts;
}

async function countsOf(url: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await countTables(client);
  } finally {
    await client.end();
  }
}

async function readObject(objectKey: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.getStream(objectKey)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The archive pg_dump wrote, from the stored object: decrypted and, when the pipeline compressed, decompressed. */
async function plainArchive(objectKey: string, compressedBy: 'pipeline' | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const collect = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  const stages = [
    envelope.decryptStream(context),
    ...(compressedBy === 'pipeline' ? [zstdDecompressStage()] : []),
  ];
  await pipeline([await store.getStream(objectKey), ...stages, collect]);
  return Buffer.concat(chunks);
}

/**
 * What pg_restore makes of an archive file as a script (`-f -`): every statement and every row of COPY data; the
 * psql \restrict key that pg_restore 15.14 and later draws anew for every script is left out.
 */
async function restoreScript(file: string): Promise<string> {
  const { stdout } = await execFileAsync(pgRestore, ['--file', '-', file], { maxBuffer: 512 * 1024 * 1024 });
  return stdout.replace(/^\\(un)?restrict .*$/gm, '');
}

/** The chunk lengths of the data block at `offset` (after its type and dump id; large objects' oids skipped). */
function chunkLengths(bytes: Buffer, offset: number): number[] {
  const lengths: number[] = [];
  const blobs = bytes[offset] === 3;
  let at = offset + 6;
  for (;;) {
    if (blobs) {
      const oid = bytes.readUInt32LE(at + 1);
      at += 5;
      if (oid === 0) return lengths;
    }
    for (;;) {
      const length = bytes.readUInt32LE(at + 1);
      at += 5;
      if (length === 0) break;
      lengths.push(length);
      at += length;
    }
    if (!blobs) return lengths;
  }
}

async function dump(objectKey: string, databaseUrl = stack.replicaUrl, compression = 'gzip:6') {
  return dumpToStore({
    databaseUrl,
    pgDumpPath: pgDump,
    stdbufLibrary,
    compression,
    zstdLevel: 3,
    envelope,
    store,
    key: objectKey,
    encryptionContext: context,
    inSnapshot: countTables,
  });
}

beforeAll(async () => {
  stack = await startTestStack();
  pgDump = stack.binaries.path('pg_dump');
  pgRestore = stack.binaries.path('pg_restore');
  stdbufLibrary = await findStdbufLibrary(stdbufCandidates(stack.binaries.dir));
  const client = new S3Client(localS3ClientConfig(stack.s3Endpoint, 'eu-west-1'));
  sentCommands = [];
  client.middlewareStack.add(
    (next, middlewareContext) => async (args) => {
      sentCommands.push(middlewareContext.commandName ?? '');
      return next(args);
    },
    { step: 'initialize', name: 'recordCommands' },
  );
  store = new S3ObjectStore({
    client,
    bucket: stack.primaryBucket,
    region: 'eu-west-1',
    endpoint: stack.s3Endpoint,
  });
});

afterAll(async () => {
  await stack?.remove();
});

/**
 * Both stored forms: the pipeline's zstd around an uncompressed archive (the default since issue 16), and pg_dump's
 * own gzip, read as a dump stored before issue 16 is read: its manifest says nothing of who compressed.
 */
const forms = [
  { form: 'compressed by the pipeline', setting: 'pipeline', spec: 'zstd:3', compressedBy: 'pipeline' },
  {
    form: 'compressed by pg_dump (stored before issue 16)',
    setting: 'gzip:6',
    spec: 'gzip:6',
    compressedBy: undefined,
  },
] as const;

describe.each(forms)('dump, store, verify and restore: $form', ({ setting, spec, compressedBy }) => {
  const objectKey = `kc/2026/01/01/20260101T0000Z-${setting}/dump.pgdump.enc`;
  let result: Awaited<ReturnType<typeof dump>>;

  beforeAll(async () => {
    result = await dump(objectKey, stack.replicaUrl, setting);
  });

  it('stores an encrypted archive whose size and SHA-256 are what the dump reported', async () => {
    const stored = await readObject(objectKey);
    expect(stored.length).toBe(result.storedBytes);
    expect(await hashObject(store, objectKey)).toBe(result.storedSha256);
    expect(result.plainBytes).toBeGreaterThan(10_000);
    expect(result.plainSha256).not.toBe(result.storedSha256);
    expect(result.pgDumpVersion).toMatch(/^\d+\.\d+/);
    expect(result.compression).toBe(spec);
    expect(result.compressedBy).toBe(compressedBy ?? 'pg_dump');
    if (compressedBy === 'pipeline') {
      // pg_dump wrote the archive uncompressed; zstd made it several times smaller before the encryption.
      expect(result.archiveBytes).toBeGreaterThan(3 * result.plainBytes);
      expect(result.storedBytes).toBeLessThan(result.archiveBytes / 3);
    } else {
      expect(result.archiveBytes).toBe(result.plainBytes);
    }
    // taken from the hot standby, which reports how far it is behind
    expect(result.inRecovery).toBe(true);
    expect(result.replicaLagSeconds === null || result.replicaLagSeconds >= 0).toBe(true);
  });

  it('stores nothing readable: no PGDMP header and no SQL text', async () => {
    const stored = await readObject(objectKey);
    expect(stored.subarray(0, 5).toString('latin1')).not.toBe('PGDMP');
    expect(stored.includes(Buffer.from('CREATE TABLE'))).toBe(false);
    expect(stored.includes(Buffer.from('user_entity'))).toBe(false);
  });

  it('counts every table inside the dump snapshot', async () => {
    const source = await countsOf(stack.primaryUrl);
    expect(Object.keys(result.snapshotResult)).toHaveLength(87);
    expect(result.snapshotResult).toEqual(source);
  });

  it('lists the archive table of contents through pg_restore --list', async () => {
    const listed = await readArchiveList({
      store,
      key: objectKey,
      expectedSha256: result.storedSha256,
      expectedPlainSha256: result.plainSha256,
      envelope,
      encryptionContext: context,
      compressedBy,
      pgRestorePath: pgRestore,
    });
    expect(listed.tocEntries).toBeGreaterThan(87);
    expect(listed.storedBytes).toBe(result.storedBytes);
    expect(listed.plainBytes).toBe(result.plainBytes);
    expect(listed.archiveBytes).toBe(result.archiveBytes);
    expect(listed.archive.database).toBe('keycloak');
    expect(listed.archive.pgDumpVersion.full).toBe(result.pgDumpVersion);
  });

  it('verifies the stored object by re-reading, hashing and decrypting it', async () => {
    const verified = await verifyStoredObject({
      store,
      key: objectKey,
      expectedSha256: result.storedSha256,
      envelope,
      encryptionContext: context,
      compressedBy,
    });
    expect(verified.storedBytes).toBe(result.storedBytes);
    expect(verified.plainBytes).toBe(result.plainBytes);
    expect(verified.MBps).toBeGreaterThan(0);
  });

  it('writes the plain archive to a file only its owner can read, as pg_restore reads it best (data offsets filled in, rows in large chunks)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kb-archive-'));
    try {
      const file = join(dir, 'archive.pgdump');
      const write = () =>
        writeStoredArchive({
          store,
          key: objectKey,
          expectedSha256: result.storedSha256,
          envelope,
          encryptionContext: context,
          compressedBy,
          file,
        });
      const written = await write();
      const bytes = await readFile(file);
      expect(bytes.subarray(0, 5).toString('latin1')).toBe('PGDMP');
      // pg_dump wrote to a pipe and could not fill in where each table's data starts; the file says it, as pg_dump
      // writing to a file would: every entry with data points at its own data block.
      const offsets = readTocOffsets(bytes)!;
      const withData = offsets.filter((entry) => entry.flag !== TOC_OFFSET_NO_DATA);
      expect(withData.length).toBeGreaterThan(10);
      let chunks = 0;
      for (const entry of withData) {
        expect(entry.flag, `entry ${entry.dumpId}`).toBe(TOC_OFFSET_SET);
        expect([1, 3]).toContain(bytes[entry.offset]);
        expect(bytes[entry.offset + 1], 'sign of the dump id').toBe(0);
        expect(bytes.readUInt32LE(entry.offset + 2), 'the block of its own entry').toBe(entry.dumpId);
        chunks += chunkLengths(bytes, entry.offset).length;
      }
      // The archive pg_dump wrote, as it was stored (decrypted, decompressed): pg_restore reads the same script
      // from the file.
      const original = await plainArchive(objectKey, compressedBy);
      expect(original.length).toBe(result.archiveBytes);
      await writeFile(join(dir, 'original.pgdump'), original);
      const script = await restoreScript(join(dir, 'original.pgdump'));
      expect(script).toContain('COPY public.user_entity');
      expect(await restoreScript(file)).toBe(script);
      if (compressedBy === 'pipeline') {
        // Uncompressed, pg_dump wrote one chunk per row; the file holds a table's rows in chunks of up to 256 KiB,
        // and each chunk it no longer has took a length of 5 bytes.
        const pgDumpChunks = chunks + (original.length - bytes.length) / 5;
        expect(Number.isInteger(pgDumpChunks)).toBe(true);
        expect(chunks * 10).toBeLessThan(pgDumpChunks);
      } else {
        // gzip's chunks are left as they are: with the offsets unset again, the file is the decrypted bytes.
        const unset = Buffer.from(bytes);
        for (const entry of withData) {
          unset[entry.flagAt] = TOC_OFFSET_NOT_SET;
          unset.fill(0, entry.flagAt + 1, entry.flagAt + 9);
        }
        expect(createHash('sha256').update(unset).digest('hex')).toBe(result.plainSha256);
      }
      // Wherever the stream's chunks end (3 bytes: every int and block header split), the same script is read.
      for (const size of [3, 4099, 65536]) {
        const rewriter = new ArchiveSpoolRewriter();
        const out: Buffer[] = [];
        for (let at = 0; at < original.length; at += size) {
          out.push(...rewriter.update(Buffer.from(original.subarray(at, at + size))));
        }
        const { rest, patches } = rewriter.finish();
        const patched = Buffer.concat([...out, ...rest]);
        for (const patch of patches) patch.bytes.copy(patched, patch.position);
        expect(patches.length, `chunks of ${size} bytes`).toBe(withData.length);
        const again = join(dir, `chunks-${size}.pgdump`);
        await writeFile(again, patched);
        expect(await restoreScript(again), `chunks of ${size} bytes`).toBe(script);
      }
      expect(written.plainBytes).toBe(result.plainBytes);
      expect(written.storedBytes).toBe(result.storedBytes);
      expect(written.archive.pgDumpVersion.full).toBe(result.pgDumpVersion);
      expect((await stat(file)).mode & 0o777).toBe(0o600);

      // A file that is there already is neither overwritten (it would keep its own mode) nor removed.
      await writeFile(file, 'someone else');
      const again = await write().catch((e: unknown) => e);
      expect((again as NodeJS.ErrnoException).code).toBe('EEXIST');
      expect(await readFile(file, 'utf8')).toBe('someone else');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([1, 2])('restores into a new database with identical table counts (jobs=%i)', async (jobs) => {
    const database = `restored_${jobs}_${setting.replace(/\W/g, '')}`;
    await onPrimary(`create database ${database}`);
    const restored = await restoreFromStore({
      store,
      key: objectKey,
      expectedSha256: result.storedSha256,
      envelope,
      encryptionContext: context,
      compressedBy,
      pgRestorePath: pgRestore,
      databaseUrl: withDatabase(stack.primaryUrl, database),
      jobs,
      archivePgDumpVersion: result.pgDumpVersion,
    });
    expect(restored.jobs).toBe(jobs);
    expect(restored.storedBytes).toBe(result.storedBytes);
    expect(restored.archiveBytes).toBe(result.archiveBytes);
    expect(await countsOf(withDatabase(stack.primaryUrl, database))).toEqual(result.snapshotResult);
  });

  it("fails a parallel restore whose schema cannot be created with pg_restore's own message, loading nothing and leaving no spool", async () => {
    const database = `restored_clash_${setting.replace(/\W/g, '')}`;
    await onPrimary(`create database ${database}`);
    const url = withDatabase(stack.primaryUrl, database);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('create table public.realm (id int)');
    } finally {
      await client.end();
    }
    const tempDir = await mkdtemp(join(tmpdir(), 'kb-clash-'));
    try {
      const failure = await restoreFromStore({
        store,
        key: objectKey,
        expectedSha256: result.storedSha256,
        envelope,
        encryptionContext: context,
        compressedBy,
        pgRestorePath: pgRestore,
        databaseUrl: url,
        jobs: 2,
        tempDir,
      }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(RestoreFailedError);
      expect((failure as Error).message).toMatch(/pg_restore: error: .*relation "realm" already exists/);
      // The schema went in as one transaction: nothing of it is left, and no data was loaded.
      const counts = new pg.Client({ connectionString: url });
      await counts.connect();
      try {
        const { rows } = await counts.query<{ n: number }>(
          "select count(*)::int as n from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r'",
        );
        expect(rows[0]!.n).toBe(1);
      } finally {
        await counts.end();
      }
      expect(await readdir(tempDir)).toEqual([]);
    } finally {
      await rm(tempDir, { recursive: true, force: true });
    }
  });

  it('refuses to restore with a pg_restore older than the pg_dump that wrote the archive', async () => {
    const failure = await restoreFromStore({
      store,
      key: objectKey,
      expectedSha256: result.storedSha256,
      envelope,
      encryptionContext: context,
      pgRestorePath: pgRestore,
      databaseUrl: withDatabase(stack.primaryUrl, 'postgres'),
      archivePgDumpVersion: '99.1',
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(VersionMismatchError);
  });

  it.runIf(compressedBy === 'pipeline')(
    'says what is wrong when a manifest does not say that the pipeline compressed the dump',
    async () => {
      const failure = await verifyStoredObject({
        store,
        key: objectKey,
        expectedSha256: result.storedSha256,
        envelope,
        encryptionContext: context,
      }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(RestoreFailedError);
      expect((failure as Error).message).toMatch(/zstd frame/);
    },
  );

  describe('with one byte of the stored object flipped', () => {
    const tamperedKey = `kc/2026/01/01/20260101T0000Z-${setting}/tampered.pgdump.enc`;

    beforeAll(async () => {
      const bytes = await readObject(objectKey);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x40;
      await store.putStream(tamperedKey, Readable.from([bytes]));
    });

    const read = () => ({
      store,
      key: tamperedKey,
      expectedSha256: result.storedSha256,
      envelope,
      encryptionContext: context,
      compressedBy,
    });

    it('fails the archive listing with ChecksumMismatchError naming the key', async () => {
      const failure = await readArchiveList({ ...read(), pgRestorePath: pgRestore }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(ChecksumMismatchError);
      expect((failure as Error).message).toContain(tamperedKey);
      expect((failure as Error).message).toContain(result.storedSha256);
    });

    it('fails the verification with ChecksumMismatchError', async () => {
      await expect(verifyStoredObject(read())).rejects.toBeInstanceOf(ChecksumMismatchError);
    });

    it('fails writing the archive file with ChecksumMismatchError and leaves no partial file', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'kb-archive-'));
      try {
        const file = join(dir, 'archive.pgdump');
        const failure = await writeStoredArchive({ ...read(), file }).catch((e: unknown) => e);
        expect(failure).toBeInstanceOf(ChecksumMismatchError);
        expect(existsSync(file)).toBe(false);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('fails the restore with ChecksumMismatchError', async () => {
      const database = `restored_tampered_${setting.replace(/\W/g, '')}`;
      await onPrimary(`create database ${database}`);
      const failure = await restoreFromStore({
        ...read(),
        pgRestorePath: pgRestore,
        databaseUrl: withDatabase(stack.primaryUrl, database),
      }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(ChecksumMismatchError);
    });
  });

  it('fails with DecryptionFailedError under a different key', async () => {
    const strangerKey = randomBytes(32);
    const stranger = new EsdkEnvelope({
      keyring: localKeyring(strangerKey),
      keyIds: ['other'],
      fingerprint: localKeyFingerprint(strangerKey),
    });
    const failure = await verifyStoredObject({
      store,
      key: objectKey,
      expectedSha256: result.storedSha256,
      envelope: stranger,
      encryptionContext: context,
    }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(DecryptionFailedError);
  });
});

describe("pg_dump's writes", () => {
  /** Runs pg_dump of the fixture to a pipe and returns the sizes of the chunks node read. */
  async function chunkSizes(env: NodeJS.ProcessEnv): Promise<number[]> {
    // The local servers admit only SCRAM: the password goes in PGPASSWORD, as the pipeline passes it.
    const connection = toolConnection(stack.replicaUrl);
    const tool = spawnTool(
      pgDump,
      ['--format=custom', '-Z', '0', '--no-password', '--dbname', connection.dbname],
      {
        env: { ...env, ...connection.env },
        stdin: 'ignore',
        stdout: 'pipe',
      },
    );
    const sizes: number[] = [];
    for await (const chunk of tool.child.stdout!) sizes.push((chunk as Buffer).length);
    expect((await tool.exit).code).toBe(0);
    return sizes;
  }

  it('come 64 KiB at a time with libstdbuf preloaded (this machine has coreutils)', async () => {
    expect(stdbufLibrary).toBeDefined();
    const sizes = await chunkSizes(bufferedStdoutEnv(process.env, stdbufLibrary!));
    const bytes = sizes.reduce((sum, size) => sum + size, 0);
    expect(bytes).toBeGreaterThan(4 * 65536);
    // Every read but the last ends on a 64 KiB write (a read may take several, never part of one here).
    expect(sizes.slice(0, -1).every((size) => size % 65536 === 0)).toBe(true);
  });

  it('get the preload from dumpToStore: pg_dump starts with libstdbuf and a 64 KiB buffer', async () => {
    // The real pg_dump, behind a wrapper that writes down the preload it was started with.
    const dir = await mkdtemp(join(tmpdir(), 'kb-pg-dump-env-'));
    const seen = join(dir, 'seen');
    const wrapper = join(dir, 'pg_dump');
    await writeFile(
      wrapper,
      ['#!/bin/sh', `printf '%s|%s' "$LD_PRELOAD" "$_STDBUF_O" > '${seen}'`, `exec '${pgDump}' "$@"`].join(
        '\n',
      ),
      { mode: 0o755 },
    );
    const objectKey = 'kc/2026/01/01/preload/dump.pgdump.enc';
    try {
      const result = await dumpToStore({
        databaseUrl: stack.replicaUrl,
        pgDumpPath: wrapper,
        pgDumpVersion: await stack.binaries.version('pg_dump'),
        stdbufLibrary,
        compression: 'gzip:1',
        envelope,
        store,
        key: objectKey,
        encryptionContext: context,
        inSnapshot: countTables,
      });
      expect(result.storedBytes).toBeGreaterThan(0);
      expect(await readFile(seen, 'utf8')).toBe(`${stdbufLibrary}|65536`);
    } finally {
      await store.deleteObjects([objectKey]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the snapshot the counts are taken in', () => {
  it('takes the counts in a read-only repeatable-read snapshot without parallel workers beside pg_dump', async () => {
    const result = await dumpToStore({
      databaseUrl: stack.replicaUrl,
      pgDumpPath: pgDump,
      compression: 'gzip:1',
      envelope,
      store,
      key: 'kc/2026/01/01/settings/dump.pgdump.enc',
      encryptionContext: context,
      inSnapshot: async (client) => {
        const { rows } = await client.query<Record<string, string>>(
          `select current_setting('max_parallel_workers_per_gather') as parallel,
                  current_setting('transaction_isolation') as isolation,
                  current_setting('transaction_read_only') as read_only`,
        );
        return rows[0]!;
      },
    });

    expect(result.snapshotResult).toEqual({ parallel: '0', isolation: 'repeatable read', read_only: 'on' });
    await store.deleteObjects(['kc/2026/01/01/settings/dump.pgdump.enc']);
  });
});

describe('failures while writing', () => {
  const uploadsLeft = async () => {
    const uploads = join(stack.stateDir, 's3', stack.primaryBucket, '._S3rver_uploads');
    return existsSync(uploads) ? await readdir(uploads) : [];
  };

  it('refuses a database it cannot connect to with DatabaseUnavailableError and stores nothing', async () => {
    const objectKey = 'kc/2026/01/01/nodb/dump.pgdump.enc';
    const failure = await dump(objectKey, withDatabase(stack.replicaUrl, 'no_such_database')).catch(
      (e: unknown) => e,
    );

    expect(failure).toBeInstanceOf(DatabaseUnavailableError);
    expect(await store.head(objectKey)).toBeUndefined();
    expect(await uploadsLeft()).toEqual([]);
  });

  it('turns a failing pg_dump into DumpFailedError with its message and stores nothing', async () => {
    // A role that may connect but not read Keycloak's tables: pg_dump itself fails on its locks.
    await onPrimary("create role dumper login password 'dumper-secret'");
    await stack.waitForReplay();
    const objectKey = 'kc/2026/01/01/denied/dump.pgdump.enc';
    const failure = await dumpToStore({
      databaseUrl: withDatabase(stack.replicaUrl, stack.database, {
        name: 'dumper',
        password: 'dumper-secret',
      }),
      pgDumpPath: pgDump,
      compression: 'gzip:6',
      envelope,
      store,
      key: objectKey,
      encryptionContext: context,
      inSnapshot: async () => ({}),
    }).catch((e: unknown) => e);

    expect(failure, String(failure)).toBeInstanceOf(DumpFailedError);
    expect((failure as Error).message).toMatch(/permission denied/);
    expect(await store.head(objectKey)).toBeUndefined();
    expect(await uploadsLeft()).toEqual([]);
  });

  describe('with a pg_dump that writes 24 MB and then fails', () => {
    let fakeDir: string;
    const fakeDump = (stderr: string) =>
      ['#!/bin/sh', 'printf PGDMP', 'head -c 24000000 /dev/zero', `echo "${stderr}" >&2`, 'exit 1'].join(
        '\n',
      );

    beforeAll(async () => {
      fakeDir = await mkdtemp(join(tmpdir(), 'kb-fake-pg-'));
      await writeFile(join(fakeDir, 'pg_dump_fails'), fakeDump('pg_dump: error: the disk caught fire'), {
        mode: 0o755,
      });
      await writeFile(
        join(fakeDir, 'pg_dump_conflict'),
        fakeDump('pg_dump: error: canceling statement due to conflict with recovery'),
        { mode: 0o755 },
      );
    });
    afterAll(async () => {
      if (fakeDir) await rm(fakeDir, { recursive: true, force: true });
    });

    const fakeRun = (program: string, objectKey: string, compression = 'gzip:6') =>
      dumpToStore({
        databaseUrl: stack.replicaUrl,
        pgDumpPath: join(fakeDir, program),
        pgDumpVersion: { major: 15, full: '15.18' },
        compression,
        zstdLevel: 3,
        envelope,
        store,
        key: objectKey,
        encryptionContext: context,
        inSnapshot: async () => ({}),
      });

    it('aborts the upload after parts were sent and reports DumpFailedError with the stderr tail', async () => {
      const objectKey = 'kc/2026/01/01/late/dump.pgdump.enc';
      sentCommands.length = 0;
      const failure = await fakeRun('pg_dump_fails', objectKey).catch((e: unknown) => e);

      expect(failure).toBeInstanceOf(DumpFailedError);
      expect((failure as Error).message).toContain('the disk caught fire');
      expect(sentCommands).toContain('UploadPartCommand');
      expect(sentCommands).toContain('AbortMultipartUploadCommand');
      expect(sentCommands).not.toContain('CompleteMultipartUploadCommand');
      expect(await store.head(objectKey)).toBeUndefined();
      expect(await uploadsLeft()).toEqual([]);
    });

    it('stores no zstd frame either when the pipeline compresses: the frame ends only after pg_dump exited 0', async () => {
      const objectKey = 'kc/2026/01/01/late-zstd/dump.pgdump.enc';
      const failure = await fakeRun('pg_dump_fails', objectKey, 'pipeline').catch((e: unknown) => e);

      expect(failure).toBeInstanceOf(DumpFailedError);
      expect((failure as Error).message).toContain('the disk caught fire');
      expect(await store.head(objectKey)).toBeUndefined();
      expect(await uploadsLeft()).toEqual([]);
    });

    it('reports a recovery conflict as TransientError', async () => {
      const failure = await fakeRun('pg_dump_conflict', 'kc/2026/01/01/conflict/dump.pgdump.enc').catch(
        (e: unknown) => e,
      );
      expect(failure).toBeInstanceOf(TransientError);
      expect((failure as Error).message).toMatch(/conflict with recovery/);
    });
  });

  it("reports the upload's own error, not pg_dump's answer to being stopped, when the upload fails mid-dump", async () => {
    // A database big enough that pg_dump is still writing (blocked on its full pipe) when the upload gives up: the
    // pipeline then stops pg_dump (SIGTERM), and pg_dump answers "terminated by user" with exit code 1.
    await onPrimary('create database mid_dump');
    const midDumpUrl = withDatabase(stack.primaryUrl, 'mid_dump');
    const client = new pg.Client({ connectionString: midDumpUrl });
    await client.connect();
    try {
      await client.query(
        'create table filler as select g as id, md5(g::text) || md5((g * 7)::text) as body from generate_series(1, 400000) g',
      );
    } finally {
      await client.end();
    }
    await stack.waitForReplay();
    // What the S3 adapter makes of S3's AccessDenied.
    const denied = new ConfigurationError('upload refused: AccessDenied', {
      hint: 'grant this role the S3 permissions on the bucket',
    });
    // The real adapter in front of a refusing server destroys the body as it fails, and pg_dump then races our
    // SIGTERM to its failing write: the old code lost that race now and then. This store refuses and leaves the body
    // alone, so the signal comes first every time (and a dump that waited for the body to end would hang).
    let bodyWaiting = false;
    const refusingStore: typeof store = Object.assign(Object.create(store) as typeof store, {
      putStream: async (_key: string, body: Readable) => {
        // The body is never read: pg_dump fills its pipe and blocks, as behind a stalled upload.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        bodyWaiting = body.readableLength > 0;
        throw denied;
      },
    });
    const objectKey = 'kc/2026/01/01/refused/dump.pgdump.enc';

    const failure = await dumpToStore({
      databaseUrl: withDatabase(stack.replicaUrl, 'mid_dump'),
      pgDumpPath: pgDump,
      stdbufLibrary,
      compression: 'pipeline',
      zstdLevel: 3,
      envelope,
      store: refusingStore,
      key: objectKey,
      encryptionContext: context,
      inSnapshot: async () => ({}),
    }).catch((e: unknown) => e);

    expect(bodyWaiting).toBe(true);
    expect(failure).toBe(denied);
    expect(await store.head(objectKey)).toBeUndefined();
  });

  it('aborts the multipart upload when the stream fails after parts were sent', async () => {
    const objectKey = 'kc/2026/01/01/broken/dump.pgdump.enc';
    const broken = new Error('producer died');
    const part = randomBytes(1024 * 1024);
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent < 40) {
          sent += 1;
          this.push(part);
        } else this.destroy(broken);
      },
    });
    sentCommands.length = 0;

    const failure = await store.putStream(objectKey, body).catch((e: unknown) => e);

    expect(failure).toBe(broken);
    expect(sentCommands).toContain('UploadPartCommand');
    expect(sentCommands).toContain('AbortMultipartUploadCommand');
    expect(sentCommands).not.toContain('CompleteMultipartUploadCommand');
    expect(await store.head(objectKey)).toBeUndefined();
  });
});
