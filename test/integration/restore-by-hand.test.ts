// docs/restore-by-hand.md, followed step by step: a backup the pipeline stored is restored with standard tools only
// (an S3 client, the AWS Encryption SDK library through the document's own decrypt.cjs, zstd, pg_restore), none of
// the project's decryption or restore code, and the database that comes out has every row of the source.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpStep } from '../../functions/core/backup-steps.js';
import { timeOfBackupId } from '../../functions/core/schedule.js';
import { parseConfig } from '../../functions/platform/config.js';
import { localServices } from '../../functions/platform/local-services.js';
import { createLogger } from '../../functions/platform/logger.js';
import { retentionPolicy } from '../../functions/platform/services.js';
import { useTestStack } from '../support/stack.js';
import { tableContents } from '../support/table-contents.js';

const execFileAsync = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');
const ctx = useTestStack();
let work: string;
let decryptScript: string;

/** The decrypt.cjs block of the document, exactly as a reader would copy it. */
async function scriptFromDocument(): Promise<string> {
  const document = await readFile(join(REPO, 'docs/restore-by-hand.md'), 'utf8');
  const block = /```js\n(\/\/ decrypt\.cjs[\s\S]*?)```/.exec(document);
  if (!block) throw new Error('docs/restore-by-hand.md has no ```js block starting with // decrypt.cjs');
  return block[1]!;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Step 1 with a plain S3 client, as `aws s3 ls` / `aws s3 cp` would (the local server's fixed credentials). */
function s3(): S3Client {
  return new S3Client({
    endpoint: ctx.stack.s3Endpoint,
    region: 'eu-west-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function download(client: S3Client, key: string, file: string): Promise<void> {
  const object = await client.send(new GetObjectCommand({ Bucket: ctx.stack.primaryBucket, Key: key }));
  await pipeline(object.Body as NodeJS.ReadableStream, createWriteStream(file));
}

/** libpq's environment for the primary's server (password by PGPASSWORD, not on the command line). */
function libpqEnv(): NodeJS.ProcessEnv {
  const url = new URL(ctx.stack.primaryUrl);
  return {
    ...process.env,
    PGHOST: url.hostname,
    PGPORT: url.port,
    PGUSER: decodeURIComponent(url.username),
    PGPASSWORD: decodeURIComponent(url.password),
  };
}

function databaseUrl(database: string): string {
  const url = new URL(ctx.stack.primaryUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kb-by-hand-'));
  decryptScript = join(work, 'decrypt.cjs');
  await writeFile(decryptScript, await scriptFromDocument());
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe.each([
  { form: 'compressed by the pipeline (zstd)', compression: 'pipeline', backupId: '20260301T0100Z' },
  { form: "compressed by pg_dump's own gzip", compression: 'gzip:6', backupId: '20260301T0200Z' },
])('restoring by hand a backup $form', ({ compression, backupId }) => {
  it('gives a database identical to the source, table by table and row by row', async () => {
    // The backup, taken by the pipeline as the dump Lambda takes it.
    const config = parseConfig({ ...ctx.stack.env(), KB_DUMP_COMPRESSION: compression });
    const services = await localServices(config, createLogger({ silent: true }));
    const { target, schema } = { target: config.KB_TARGETS[0]!.name, schema: config.KB_KEYCLOAK_SCHEMA };
    await dumpStep(services, {
      target,
      backupId,
      tiers: ['hourly'],
      scheduledAt: timeOfBackupId(backupId),
      database: ctx.stack.database,
      schema,
      policy: retentionPolicy(config),
    });
    const dir = await mkdtemp(join(work, `${backupId}-`));
    const file = (name: string) => join(dir, name);

    // 1. Download the manifest and the dump; check the stored checksum.
    const client = s3();
    const listed = await client.send(
      new ListObjectsV2Command({ Bucket: ctx.stack.primaryBucket, Prefix: `${target}/` }),
    );
    const manifestKey = (listed.Contents ?? [])
      .map((object) => object.Key!)
      .find((key) => key.endsWith(`/${backupId}/manifest.json`));
    expect(manifestKey).toBeDefined();
    await download(client, manifestKey!, file('manifest.json'));
    const manifest = JSON.parse(await readFile(file('manifest.json'), 'utf8'));
    await download(client, manifest.dump.key, file('dump.pgdump.enc'));
    client.destroy();
    expect(await sha256File(file('dump.pgdump.enc'))).toBe(manifest.dump.storedSha256);

    // 2. Decrypt with the document's script (the AWS Encryption SDK library) and the local key file.
    await execFileAsync(
      process.execPath,
      [
        decryptScript,
        file('manifest.json'),
        file('dump.pgdump.enc'),
        file('dump.decrypted'),
        '--key-file',
        ctx.stack.keyFile,
      ],
      { env: { ...process.env, NODE_PATH: join(REPO, 'node_modules') } },
    );
    expect(await sha256File(file('dump.decrypted'))).toBe(manifest.dump.plainSha256);

    // 3. Decompress only when the pipeline compressed.
    const compressedBy = manifest.dump.compressedBy ?? 'pg_dump';
    expect(compressedBy).toBe(compression === 'pipeline' ? 'pipeline' : 'pg_dump');
    if (compressedBy === 'pipeline') {
      await execFileAsync('zstd', ['-q', '-d', file('dump.decrypted'), '-o', file('dump.pgdump')]);
      expect((await readFile(file('dump.pgdump'))).length).toBe(manifest.dump.archiveBytes);
    } else {
      await execFileAsync('mv', [file('dump.decrypted'), file('dump.pgdump')]);
    }

    // 4. Restore into an empty database with pg_restore --jobs 2.
    const restored = `by_hand_${backupId.toLowerCase()}`;
    const bin = ctx.stack.binaries.dir;
    await execFileAsync(join(bin, 'createdb'), [restored], { env: libpqEnv() });
    await execFileAsync(
      join(bin, 'pg_restore'),
      ['--no-owner', '--no-acl', '--exit-on-error', '--jobs', '2', '--dbname', restored, file('dump.pgdump')],
      { env: libpqEnv() },
    );

    // 5. Every table: the counts the manifest took in the dump's snapshot, and the source's rows, digest for digest.
    const got = await tableContents(databaseUrl(restored), schema);
    const source = await tableContents(databaseUrl(ctx.stack.database), schema);
    expect(Object.keys(got)).toHaveLength(Object.keys(manifest.contents.tableCounts).length);
    for (const [table, rows] of Object.entries(manifest.contents.tableCounts as Record<string, number>)) {
      expect(got[table]?.split(' ')[0], table).toBe(String(rows));
    }
    expect(got).toEqual(source);
  });
});

describe('the decryption script of the document', () => {
  it('refuses a dump under another backup name, leaving no output', async () => {
    // The two backups above: the second's dump with the first's manifest (its encryption context).
    const client = s3();
    const listed = await client.send(new ListObjectsV2Command({ Bucket: ctx.stack.primaryBucket }));
    const keys = (listed.Contents ?? []).map((object) => object.Key!);
    const manifestKey = keys.find((key) => key.endsWith('/20260301T0100Z/manifest.json'))!;
    const otherDump = keys.find((key) => key.endsWith('/20260301T0200Z/dump.pgdump.enc'))!;
    await download(client, manifestKey, join(work, 'manifest.json'));
    await download(client, otherDump, join(work, 'other.pgdump.enc'));
    client.destroy();

    const failure = await execFileAsync(
      process.execPath,
      [
        decryptScript,
        join(work, 'manifest.json'),
        join(work, 'other.pgdump.enc'),
        join(work, 'other.decrypted'),
        '--key-file',
        ctx.stack.keyFile,
      ],
      { env: { ...process.env, NODE_PATH: join(REPO, 'node_modules') } },
    ).catch((error: unknown) => error as { code: number; stderr: string });

    expect((failure as { code: number }).code).toBe(1);
    expect((failure as { stderr: string }).stderr).toMatch(/encryption context keycloak-backup:backup-id/);
    await expect(readFile(join(work, 'other.decrypted'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
