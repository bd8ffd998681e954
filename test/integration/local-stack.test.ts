// The local stack for real: PostgreSQL primary + hot standby from the machine's binaries, WAL archive, s3rver, key file.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureKeyFile, readKeyFile } from '../../functions/adapters/local/key-file.js';
import { isProcessRunning } from '../../functions/adapters/local/postgres-cluster.js';
import { findPgBinaries } from '../../functions/adapters/postgres/binaries.js';
import { S3ObjectStore } from '../../functions/adapters/s3-object-store.js';
import { BinaryNotFoundError, ConfigurationError, RestoreFailedError } from '../../functions/core/errors.js';
import { parseConfig } from '../../functions/platform/config.js';
import { loadKeycloakFixture, SqlDumpFilter } from '../../local/fixture.js';
import { localS3ClientConfig } from '../../local/s3-server.js';
import { startLocalStack } from '../../local/stack.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'kb-stack-test-'));
  stack = await startTestStack();
  console.info(`local stack first start (initdb, fixture, replica): ${stack.startMs} ms`);
});

afterAll(async () => {
  await stack?.remove();
  await rm(scratch, { recursive: true, force: true });
});

const one = async <T extends Record<string, unknown>>(
  cluster: TestStack['primary'],
  sql: string,
  params: unknown[] = [],
): Promise<T> => {
  const [row] = await cluster.query<T>(sql, params, stack.database);
  if (!row) throw new Error(`no row from ${sql}`);
  return row;
};

describe('the local stack', () => {
  it('serves the seeded Keycloak database from the primary and from a hot standby in recovery', async () => {
    expect(await one(stack.primary, 'select pg_is_in_recovery() as standby')).toEqual({ standby: false });
    expect(await one(stack.replica, 'select pg_is_in_recovery() as standby')).toEqual({ standby: true });
    expect(await one(stack.replica, 'select count(*)::int as users from user_entity')).toEqual({ users: 5 });
    expect(
      await one(stack.replica, 'select version from migration_model order by update_time desc limit 1'),
    ).toEqual({ version: '26.0.8' });
    expect(await one(stack.replica, "select current_setting('hot_standby_feedback') as feedback")).toEqual({
      feedback: 'on',
    });
    expect(
      await one(stack.primary, "select active from pg_replication_slots where slot_name = 'kb_replica'"),
    ).toEqual({ active: true });
  });

  it('gives an environment the configuration schema accepts', () => {
    const config = parseConfig(stack.env());
    expect(config.KB_RUNTIME).toBe('local');
    expect(config.KB_TARGETS).toEqual([
      { name: 'keycloak', database: 'keycloak', replica: stack.replicaUrl, primary: stack.primaryUrl },
    ]);
    expect(config.KB_S3_ENDPOINT).toBe(stack.s3Endpoint);
    expect(config.KB_PRIMARY_BUCKET).not.toBe(config.KB_DR_BUCKET);
    expect(config.KB_LOCAL_KEY_FILE).toBe(stack.keyFile);
    expect(config.KB_PG_BIN_DIR).toBe(stack.binaries.dir);
  });

  it('shows a write on the primary on the replica once replay caught up, even with commits not waiting for WAL', async () => {
    // The test stack runs with synchronous_commit off: a commit returns before its WAL is written, so "caught up"
    // must mean the WAL inserted so far, not the WAL written so far. Twenty rounds: a race shows in one of them.
    await stack.primary.query(
      'create table if not exists stack_marker (name text primary key)',
      [],
      'keycloak',
    );
    const misses: string[] = [];
    for (let round = 0; round < 20; round++) {
      const marker = `marker-${Date.now()}-${round}`;
      await stack.primary.query('insert into stack_marker values ($1)', [marker], 'keycloak');
      await stack.waitForReplay();
      const { n } = await one<{ n: number }>(
        stack.replica,
        'select count(*)::int as n from stack_marker where name = $1',
        [marker],
      );
      if (n !== 1) misses.push(marker);
    }
    expect(misses).toEqual([]);
  });

  it('archives WAL segments into the WAL archive when the primary switches segments', async () => {
    const { segment } = await one<{ segment: string }>(
      stack.primary,
      'select pg_walfile_name(pg_current_wal_lsn()) as segment',
    );
    await stack.primary.query('insert into stack_marker values ($1)', [`switch-${Date.now()}`], 'keycloak');
    await stack.primary.query('select pg_switch_wal()');
    const archived = path.join(stack.walArchiveDir, segment);
    const deadline = Date.now() + 30_000;
    while (!(await stat(archived).catch(() => undefined)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((await stat(archived)).size).toBe(16 * 1024 * 1024);
    const names = await readdir(stack.walArchiveDir);
    expect(names.some((name) => name.endsWith('.part'))).toBe(false);
    const { failed } = await one<{ failed: string }>(
      stack.primary,
      'select failed_count::text as failed from pg_stat_archiver',
    );
    expect(failed).toBe('0');
  });

  it('loads the fixture into a second database, and fails loudly without leaving half a load behind', async () => {
    await stack.primary.query('create database fixture_again');
    try {
      const url = stack.primary.url('fixture_again');
      await loadKeycloakFixture({ binaries: stack.binaries, url });
      const [loaded] = await stack.primary.query<{ n: number }>(
        'select count(*)::int as n from user_entity',
        [],
        'fixture_again',
      );
      expect(loaded?.n).toBe(5);

      const error = await loadKeycloakFixture({ binaries: stack.binaries, url }).catch(
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(RestoreFailedError);
      expect((error as RestoreFailedError).message).toMatch(/already exists/);
      const [after] = await stack.primary.query<{ n: number }>(
        'select count(*)::int as n from user_entity',
        [],
        'fixture_again',
      );
      expect(after?.n).toBe(5);
    } finally {
      await stack.primary.query('drop database fixture_again');
    }
  });

  it('creates the key file with mode 0600 and 32 bytes, and keeps it across calls', async () => {
    const info = await stat(stack.keyFile);
    expect(info.mode & 0o777).toBe(0o600);
    const key = await readFile(stack.keyFile);
    expect(key.length).toBe(32);
    expect((await ensureKeyFile(stack.keyFile)).equals(key)).toBe(true);
  });

  it('round-trips a multipart upload through s3rver byte for byte, with nothing added to the stored object', async () => {
    const client = new S3Client(localS3ClientConfig(stack.s3Endpoint, 'eu-west-1'));
    const body = randomBytes(10 * 1024 * 1024 + 4321);
    const key = 'keycloak/2026/11/22/20261122T2300Z/dump.pgdump.enc';
    try {
      const upload = new Upload({
        client,
        params: { Bucket: stack.primaryBucket, Key: key, Body: Readable.from([body]) },
        partSize: 5 * 1024 * 1024,
        queueSize: 2,
      });
      const parts: number[] = [];
      upload.on('httpUploadProgress', (progress) => {
        if (progress.part !== undefined) parts.push(progress.part);
      });
      const done = await upload.done();
      expect(new Set(parts).size).toBe(3);
      // S3's multipart ETag: the MD5 of the parts' binary MD5s, then the number of parts.
      const partMd5s = [0, 1, 2].map((i) =>
        createHash('md5')
          .update(body.subarray(i * 5 * 1024 * 1024, (i + 1) * 5 * 1024 * 1024))
          .digest(),
      );
      expect(done.ETag).toBe(`"${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-3"`);

      const got = await client.send(new GetObjectCommand({ Bucket: stack.primaryBucket, Key: key }));
      const hash = createHash('sha256');
      await pipeline(got.Body as Readable, hash);
      expect(hash.digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
      // A range across MiB reads (s3rver's bodies are read in MiBs here) is exactly those bytes.
      const start = 3 * 1024 * 1024 - 17;
      const end = 6 * 1024 * 1024 + 5;
      const ranged = await client.send(
        new GetObjectCommand({ Bucket: stack.primaryBucket, Key: key, Range: `bytes=${start}-${end}` }),
      );
      const rangeBytes = Buffer.from(await ranged.Body!.transformToByteArray());
      expect(rangeBytes.equals(body.subarray(start, end + 1))).toBe(true);

      // What s3rver wrote to disk is the object itself, not the SDK's aws-chunked framing.
      const stored = await readFile(
        path.join(stack.stateDir, 's3', stack.primaryBucket, `${key}._S3rver_object`),
      );
      expect(stored.equals(body)).toBe(true);
    } finally {
      client.destroy();
    }
  });

  it("stores the pipeline's own multipart upload (unsigned payloads, pooled parts) byte for byte", async () => {
    const store = new S3ObjectStore({
      bucket: stack.primaryBucket,
      region: 'eu-west-1',
      endpoint: stack.s3Endpoint,
      partSize: 5 * 1024 * 1024,
      queueSize: 2,
    });
    const body = randomBytes(16 * 1024 * 1024 + 123);
    const key = 'keycloak/store-multipart';

    const { bytes } = await store.putStream(key, Readable.from([body.subarray(0, 7), body.subarray(7)]));

    expect(bytes).toBe(body.length);
    const hash = createHash('sha256');
    await pipeline(await store.getStream(key), hash);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
    await store.deleteObjects([key]);
  });

  it("gives every part its bytes' MD5 as ETag and refuses a part or a completion for an upload that does not exist, as S3 does", async () => {
    const client = new S3Client(localS3ClientConfig(stack.s3Endpoint, 'eu-west-1'));
    const Bucket = stack.primaryBucket;
    const Key = 'keycloak/batched-parts';
    // Parts over the server's 1 MiB write batch, one of them not a whole number of batches.
    const parts = [randomBytes(5 * 1024 * 1024 + 17), randomBytes(2.5 * 1024 * 1024)];
    try {
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
      const sent = await Promise.all(
        parts.map((Body, i) =>
          client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: i + 1, Body })),
        ),
      );
      expect(sent.map((s) => s.ETag)).toEqual(
        parts.map((p) => `"${createHash('md5').update(p).digest('hex')}"`),
      );
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: sent.map((s, i) => ({ PartNumber: i + 1, ETag: s.ETag! })) },
        }),
      );
      const stored = await readFile(path.join(stack.stateDir, 's3', Bucket, `${Key}._S3rver_object`));
      expect(stored.equals(Buffer.concat(parts))).toBe(true);

      await expect(
        client.send(
          new UploadPartCommand({
            Bucket,
            Key,
            UploadId: 'no-such-upload',
            PartNumber: 1,
            Body: randomBytes(1024),
          }),
        ),
      ).rejects.toMatchObject({ name: 'NoSuchUpload' });
      // Nor may a part arrive after the upload completed.
      await expect(
        client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 3, Body: randomBytes(1024) })),
      ).rejects.toMatchObject({ name: 'NoSuchUpload' });
      // Nor may an upload be completed twice.
      await expect(
        client.send(
          new CompleteMultipartUploadCommand({
            Bucket,
            Key,
            UploadId,
            MultipartUpload: { Parts: sent.map((s, i) => ({ PartNumber: i + 1, ETag: s.ETag! })) },
          }),
        ),
      ).rejects.toMatchObject({ name: 'NoSuchUpload' });
    } finally {
      client.destroy();
    }
  });

  it('aborts a multipart upload, its parts removed, and refuses an abort for an upload or key that is not there, as S3 does', async () => {
    const client = new S3Client(localS3ClientConfig(stack.s3Endpoint, 'eu-west-1'));
    const Bucket = stack.primaryBucket;
    const Key = 'keycloak/aborted-multipart';
    const uploads = path.join(stack.stateDir, 's3', Bucket, '._S3rver_uploads');
    try {
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
      await client.send(
        new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: randomBytes(1024) }),
      );
      expect(await readdir(uploads)).toContain(UploadId);

      // Another key's abort does not touch this upload.
      await expect(
        client.send(new AbortMultipartUploadCommand({ Bucket, Key: 'keycloak/other', UploadId })),
      ).rejects.toMatchObject({ name: 'NoSuchUpload' });
      expect(await readdir(uploads)).toContain(UploadId);

      await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
      expect(await readdir(uploads)).not.toContain(UploadId);
      await expect(
        client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 2, Body: randomBytes(1024) })),
      ).rejects.toMatchObject({ name: 'NoSuchUpload' });
      await expect(
        client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })),
      ).rejects.toMatchObject({
        name: 'NoSuchUpload',
      });
      await expect(client.send(new HeadObjectCommand({ Bucket, Key }))).rejects.toMatchObject({
        name: 'NotFound',
      });
    } finally {
      client.destroy();
    }
  });

  it('refuses to complete a multipart upload with a wrong part ETag or parts out of order, as S3 does', async () => {
    const client = new S3Client(localS3ClientConfig(stack.s3Endpoint, 'eu-west-1'));
    const Bucket = stack.primaryBucket;
    const Key = 'keycloak/refused-multipart';
    try {
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
      const sent = await Promise.all(
        [1, 2].map((PartNumber) =>
          client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: randomBytes(1024) })),
        ),
      );
      const complete = (Parts: { PartNumber: number; ETag: string }[]) =>
        client.send(
          new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }),
        );
      await expect(
        complete([
          { PartNumber: 1, ETag: sent[0]!.ETag! },
          { PartNumber: 2, ETag: '"00000000000000000000000000000000"' },
        ]),
      ).rejects.toMatchObject({ name: 'InvalidPart' });
      await expect(
        complete([
          { PartNumber: 2, ETag: sent[1]!.ETag! },
          { PartNumber: 1, ETag: sent[0]!.ETag! },
        ]),
      ).rejects.toMatchObject({ name: 'InvalidPartOrder' });
      await expect(client.send(new HeadObjectCommand({ Bucket, Key }))).rejects.toMatchObject({
        name: 'NotFound',
      });

      // The refusals left the parts in place: the right list still completes.
      await complete([
        { PartNumber: 1, ETag: sent[0]!.ETag! },
        { PartNumber: 2, ETag: sent[1]!.ETag! },
      ]);
      expect((await client.send(new HeadObjectCommand({ Bucket, Key }))).ContentLength).toBe(2048);
    } finally {
      client.destroy();
    }
  });
});

describe('restarting the local stack', () => {
  it('stops every server it started, then comes back on the same ports with the same data', async () => {
    const pids = [await stack.primary.pid(), await stack.replica.pid()];
    const ports = [stack.primary.port, stack.replica.port];
    expect(pids.every((pid) => pid !== undefined && isProcessRunning(pid))).toBe(true);

    await stack.stop();
    await stack.stop();
    expect(pids.some((pid) => isProcessRunning(pid!))).toBe(false);
    expect((await stack.primary.status()).state).toBe('stopped');
    await expect(fetch(stack.s3Endpoint)).rejects.toThrow();

    const started = Date.now();
    const again = await startLocalStack({ stateDir: stack.stateDir, durable: false, seed: true });
    try {
      console.info(`local stack warm restart: ${Date.now() - started} ms`);
      expect([again.primary.port, again.replica.port]).toEqual(ports);
      const [row] = await again.replica.query<{ n: number }>(
        'select count(*)::int as n from user_entity',
        [],
        'keycloak',
      );
      expect(row?.n).toBe(5);
      const [marker] = await again.replica.query<{ n: number }>(
        'select count(*)::int as n from stack_marker',
        [],
        'keycloak',
      );
      expect(marker?.n).toBeGreaterThanOrEqual(2);
    } finally {
      await again.stop();
    }
  });

  it('starts again after a crash that left postmaster.pid behind', async () => {
    const first = await startLocalStack({ stateDir: stack.stateDir, durable: false });
    const crashed = [await first.primary.pid(), await first.replica.pid()];
    for (const pid of crashed) process.kill(pid!, 'SIGKILL');
    for (let i = 0; i < 100 && crashed.some((pid) => isProcessRunning(pid!)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const lockFile = path.join(first.primary.dataDir, 'postmaster.pid');
    expect((await stat(lockFile)).isFile()).toBe(true);
    await first.stop();

    const second = await startLocalStack({ stateDir: stack.stateDir, durable: false });
    try {
      const [row] = await second.primary.query<{ n: number }>(
        'select count(*)::int as n from user_entity',
        [],
        'keycloak',
      );
      expect(row?.n).toBe(5);
      await second.waitForReplay();
      expect(
        (await second.replica.query<{ standby: boolean }>('select pg_is_in_recovery() as standby'))[0],
      ).toEqual({
        standby: true,
      });
    } finally {
      await second.stop();
    }
  });

  it('stops a server once when two stop it at the same time (a command and its Ctrl-C cleanup)', async () => {
    const logs: string[] = [];
    const again = await startLocalStack({
      stateDir: stack.stateDir,
      durable: false,
      log: (line) => logs.push(line),
    });
    const primaryPid = await again.primary.pid();
    await Promise.all([again.primary.stop(), again.primary.stop(), again.stop(), again.stop()]);
    expect(logs.filter((line) => line === 'primary: stopped')).toHaveLength(1);
    expect(logs.filter((line) => line === 'local stack stopped')).toHaveLength(1);
    expect(isProcessRunning(primaryPid!)).toBe(false);
  });

  it('fails its stop, naming the replica, instead of saying "local stack stopped" while a hung replica runs', async () => {
    const logs: string[] = [];
    const hung = await startLocalStack({
      stateDir: stack.stateDir,
      durable: false,
      handleSignals: false,
      stopTimeoutSeconds: 2,
      log: (line) => logs.push(line),
    });
    const replicaPid = (await hung.replica.pid())!;
    const primaryPid = (await hung.primary.pid())!;
    process.kill(replicaPid, 'SIGSTOP');
    try {
      await expect(hung.stop()).rejects.toThrow(`the local replica cluster (pid ${replicaPid}) did not stop`);
      expect(logs).not.toContain('local stack stopped');
      expect(isProcessRunning(replicaPid)).toBe(true);
      // The rest still stops: the primary is not left running because the replica hung.
      expect(isProcessRunning(primaryPid)).toBe(false);
    } finally {
      // Continued, it finds the SIGQUIT the failed stop sent and exits (an immediate shutdown).
      process.kill(replicaPid, 'SIGCONT');
      for (let i = 0; i < 200 && isProcessRunning(replicaPid); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // The failed stop kept the folder's lock (ours): later tests here start the stack again.
      await rm(path.join(stack.stateDir, 'stack.lock'), { force: true });
    }
    expect(isProcessRunning(replicaPid)).toBe(false);
  });

  it('refuses to share a state directory with another running process', async () => {
    await writeFile(path.join(stack.stateDir, 'stack.lock'), `${process.ppid}\n`);
    try {
      await expect(startLocalStack({ stateDir: stack.stateDir, durable: false })).rejects.toThrow(
        /in use by process/,
      );
    } finally {
      await rm(path.join(stack.stateDir, 'stack.lock'), { force: true });
    }
  });
});

describe('the key file', () => {
  it('refuses a key file that group or others can read, saying how to fix it', async () => {
    const file = path.join(scratch, 'open.key');
    await ensureKeyFile(file);
    await chmod(file, 0o644);
    const error = await readKeyFile(file).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).hint).toContain(`chmod 600 ${file}`);
    await expect(ensureKeyFile(file)).rejects.toThrow(ConfigurationError);
  });

  it('gives every concurrent first caller the same key', async () => {
    const file = path.join(scratch, 'keys', 'race.key');
    const keys = await Promise.all(Array.from({ length: 8 }, () => ensureKeyFile(file)));
    expect(new Set(keys.map((key) => key.toString('hex'))).size).toBe(1);
    expect((await readdir(path.dirname(file))).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });
});

describe('finding the PostgreSQL programs', () => {
  it('reads the versions of the programs it found', async () => {
    const binaries = await findPgBinaries(undefined, { server: true });
    const [pgDump, server] = await Promise.all([binaries.version('pg_dump'), binaries.version('postgres')]);
    expect(pgDump.major).toBe(server.major);
    expect(pgDump.full).toMatch(/^\d+\.\d+/);
    expect(binaries.path('pg_restore')).toBe(path.join(binaries.dir, 'pg_restore'));
  });

  it('says to install PostgreSQL when the machine has no server programs', async () => {
    const error = await findPgBinaries(undefined, {
      server: true,
      usePgConfig: false,
      packageRoot: scratch,
      searchPath: [scratch],
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BinaryNotFoundError);
    expect((error as BinaryNotFoundError).message).toMatch(
      /postgres, initdb, pg_ctl, pg_basebackup, pg_dump/,
    );
    expect((error as BinaryNotFoundError).hint).toContain('apt-get install postgresql');
  });

  it('names the missing programs and the fix when KB_PG_BIN_DIR holds none', async () => {
    const error = await findPgBinaries(scratch, { server: true }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BinaryNotFoundError);
    expect((error as BinaryNotFoundError).message).toContain('initdb');
    expect((error as BinaryNotFoundError).hint).toContain('KB_PG_BIN_DIR');
  });
});

describe('preparing a plain-SQL dump for an older server', () => {
  const filter = async (chunks: Buffer[], serverMajor: number) => {
    const out: Buffer[] = [];
    await pipeline(
      Readable.from(chunks),
      new SqlDumpFilter({ serverMajor }),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          out.push(chunk);
          callback();
        },
      }),
    );
    return Buffer.concat(out).toString('utf8');
  };

  it('drops the byte-order mark even when split across chunks, and SET transaction_timeout before 17', async () => {
    const bytes = Buffer.from('\ufeffSET a = 0;\nSET transaction_timeout = 0;\nSET b = 1;\n');
    const chunks = [bytes.subarray(0, 1), bytes.subarray(1, 20), bytes.subarray(20)];
    expect(await filter(chunks, 15)).toBe('SET a = 0;\nSET b = 1;\n');
    expect(await filter([bytes], 17)).toBe('SET a = 0;\nSET transaction_timeout = 0;\nSET b = 1;\n');
  });

  it('leaves COPY data untouched', async () => {
    const sql =
      'COPY public.t (a) FROM stdin;\nSET transaction_timeout = 0;\n\\.\nSET transaction_timeout = 0;\n';
    expect(await filter([Buffer.from(sql)], 15)).toBe(
      'COPY public.t (a) FROM stdin;\nSET transaction_timeout = 0;\n\\.\n',
    );
  });
});
