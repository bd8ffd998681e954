// Issue 13's fault matrix on one real local stack: faults injected into the object stores (the real S3 adapter over
// the local S3 server, failing at the SDK client), the envelope's streams and the scheduler, each asserting a named
// error, an alert naming target, step and execution, nothing incomplete listed as complete, nothing expired while the
// target fails, and no upload, spool or scratch database left behind.
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable, Transform } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { readOutbox } from '../../functions/adapters/local/outbox-notifier.js';
import { S3ObjectStore } from '../../functions/adapters/s3-object-store.js';
import { storedDump } from '../../functions/core/backup-steps.js';
import { claimKey, dumpKey, manifestKey } from '../../functions/core/layout.js';
import type { Envelope, ObjectStore } from '../../functions/core/ports.js';
import { backupIdFor } from '../../functions/core/schedule.js';
import { readCatalog, readManifest, writeManifest } from '../../functions/core/stored-backups.js';
import { databaseTools } from '../../functions/platform/common-wiring.js';
import { parseConfig } from '../../functions/platform/config.js';
import { localServices } from '../../functions/platform/local-services.js';
import { createLogger } from '../../functions/platform/logger.js';
import type { Services } from '../../functions/platform/services.js';
import { localS3ClientConfig } from '../../local/s3-server.js';
import { REPLICA_SLOT } from '../../local/stack.js';
import { runWorkflow, type WorkflowResult } from '../../local/workflow.js';
import { testEnvelope } from '../support/manifests.js';
import { hourlyRun as run, useTestStack } from '../support/stack.js';
import { sdkError } from '../unit/aws-sdk-errors.js';

const ctx = useTestStack({ seed: false });
const TARGET = 'keycloak';
/** Small parts, so that a dump of a few MiB is a multipart upload with several parts. */
const PART_SIZE = 1024 * 1024;

/** What a fault sees of each S3 call, and how it answers: an error to throw, or a body to hand back instead. */
type Fault = (call: {
  command: string;
  input: { Key?: string; PartNumber?: number };
}) => { throw: Error } | { cutBodyAfter: number; error: Error } | undefined;

const timeout = () => Object.assign(new Error('socket timed out after 120000 ms'), { name: 'TimeoutError' });
const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
const isDump = (key?: string) => key?.endsWith('/dump.pgdump.enc') === true;

/** The real S3 adapter on the local server, its client failing as `fault` says. */
function faultyStore(bucket: string, region: string, fault: Fault): ObjectStore {
  const client = new S3Client(localS3ClientConfig(ctx.stack.env().KB_S3_ENDPOINT!, region));
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const decided = fault({ command: context.commandName ?? '', input: args.input as never });
      if (decided && 'throw' in decided) throw decided.throw;
      const output = await next(args);
      if (decided && 'cutBodyAfter' in decided) {
        const body = (output.output as { Body?: Readable }).Body!;
        (output.output as { Body?: Readable }).Body = cut(body, decided.cutBodyAfter, decided.error);
      }
      return output;
    },
    { step: 'initialize', name: 'faultInjection' },
  );
  return new S3ObjectStore({
    bucket,
    region,
    endpoint: ctx.stack.env().KB_S3_ENDPOINT,
    client,
    partSize: PART_SIZE,
  });
}

/** A body that dies after `bytes`, as a dropped connection does. */
function cut(body: Readable, bytes: number, error: Error): Readable {
  let seen = 0;
  const out = new PassThrough();
  body.on('data', (chunk: Buffer) => {
    if (seen >= bytes) return;
    seen += chunk.length;
    if (seen >= bytes) {
      body.destroy();
      out.destroy(error);
    } else out.write(chunk);
  });
  body.on('end', () => out.end());
  return out;
}

/** A stream stage that fails after `bytes`, as a key file on a failing disk (or a key service) would mid-stream. */
function failingAfter(bytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > bytes) callback(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
      else callback(null, chunk);
    },
  });
}

function envelopeFailing(envelope: Envelope, which: 'encryptStream' | 'decryptStream'): Envelope {
  return new Proxy(envelope, {
    get(target, property, receiver) {
      if (property !== which) return Reflect.get(target, property, receiver);
      return (context: Record<string, string>) => {
        const real = target[which](context);
        const failing = failingAfter(256 * 1024);
        // Bytes go through the failing stage and then the real one: written into it, read from the real stream.
        failing.pipe(real);
        failing.on('error', (error) => real.destroy(error));
        return new Proxy(real, {
          get(stream, name, r) {
            if (name === 'write' || name === 'end') return failing[name].bind(failing);
            if (name === 'writable') return failing.writable;
            const value = Reflect.get(stream, name, r);
            return typeof value === 'function' ? value.bind(stream) : value;
          },
        });
      };
    },
  });
}

let base: Services;

async function servicesWith(change: { primary?: Fault; dr?: Fault; envelope?: (e: Envelope) => Envelope }) {
  const services = await localServices(
    parseConfig({ ...ctx.stack.env(), KB_FULL_VERIFY_TIERS: '' }),
    createLogger({ silent: true }),
  );
  const { config } = services;
  const envelope = change.envelope ? change.envelope(services.envelope) : services.envelope;
  // The tools encrypt and decrypt with the envelope they were built with.
  const tools = change.envelope
    ? databaseTools(config, {
        binaries: services.binaries,
        databases: services.databases,
        envelope,
        tempDir: path.join(config.KB_LOCAL_STATE_DIR!, 'tmp'),
      })
    : services.tools;
  return {
    ...services,
    envelope,
    tools,
    primaryStore: faultyStore(
      config.KB_PRIMARY_BUCKET,
      config.KB_PRIMARY_REGION,
      change.primary ?? (() => undefined),
    ),
    drStore: faultyStore(config.KB_DR_BUCKET, config.KB_DR_REGION, change.dr ?? (() => undefined)),
  } as Services;
}

const backup = (services: Services, time: Date) =>
  runWorkflow({ machine: 'backup', input: { time: time.toISOString() }, services, retryIntervalMs: 1 });

/** An expired backup (its retain-until moved into the past and sealed again): only a run that succeeds removes it. */
const EXPIRED = run(3);

/** What every fault must leave: a named alert for this run, its backup not complete, nothing expired, nothing left. */
async function assertContained(
  result: WorkflowResult,
  time: Date,
  step: string | RegExp,
  /** Whose copy must not be listed as verified: both, unless the fault came after the primary's verification. */
  unverifiedIn: readonly ObjectStore[] = [base.primaryStore, base.drStore],
) {
  expect(result.status, result.cause).toBe('FAILED');
  const alerts = (await readOutbox(base.config.KB_OUTBOX_FILE!)).filter(
    (a) => a.execution === result.executionId,
  );
  expect(alerts.length, JSON.stringify(alerts)).toBeGreaterThan(0);
  const alert = alerts.at(-1)!;
  expect(alert.target).toBe(TARGET);
  expect(alert.step).toMatch(step);
  expect(alert.error).toMatch(/^[A-Z][A-Za-z]+Error$/);
  expect(alert.error).not.toBe('UnknownError');
  // Nothing incomplete or unverified listed as complete and verified.
  const backupId = backupIdFor(time);
  for (const store of unverifiedIn) {
    const entry = (await readCatalog(store, base.envelope, TARGET)).find((e) => e.backupId === backupId);
    expect(entry?.manifest?.verified ?? false, `${store.bucket} ${backupId}`).toBe(false);
  }
  // Nothing expired while the target fails.
  expect(await base.primaryStore.head(manifestKey(TARGET, backupIdFor(EXPIRED)))).toBeDefined();
  await assertNothingLeft();
  return alert;
}

async function assertNothingLeft() {
  const { stateDir } = ctx.stack;
  for (const bucket of [base.config.KB_PRIMARY_BUCKET, base.config.KB_DR_BUCKET]) {
    expect(await readdir(path.join(stateDir, 's3', bucket, '._S3rver_uploads')).catch(() => [])).toEqual([]);
  }
  expect(await readdir(path.join(stateDir, 'tmp')).catch(() => [])).toEqual([]);
  const scratch = await ctx.stack.primary.query<{ datname: string }>(
    "select datname from pg_database where datname like 'kb_scratch_%'",
  );
  expect(scratch).toEqual([]);
}

beforeAll(async () => {
  // A few MiB that do not compress away: several parts per upload.
  await ctx.stack.primary.query(
    'create table filler as select g as id, md5(random()::text) || md5(random()::text) || md5(random()::text) as a from generate_series(1, 60000) g',
    [],
    'keycloak',
  );
  await ctx.stack.waitForReplay();
  base = await servicesWith({});
  for (const time of [EXPIRED, run(2)]) {
    const result = await backup(base, time);
    expect(result.status, result.cause).toBe('SUCCEEDED');
  }
  const manifest = await readManifest(base.primaryStore, base.envelope, TARGET, backupIdFor(EXPIRED));
  await writeManifest(base.primaryStore, base.envelope, {
    ...manifest,
    retainUntil: new Date(Date.now() - 60_000).toISOString(),
  });
}, 300_000);

describe('the object store', () => {
  it('refusing the dump upload (AccessDenied): ConfigurationError at dump, the upload aborted', async () => {
    const services = await servicesWith({
      primary: ({ command, input }) =>
        command === 'UploadPartCommand' && isDump(input.Key) && input.PartNumber === 2
          ? { throw: sdkError('AccessDenied', 403, 'Access Denied') }
          : undefined,
    });
    const time = run(4);
    const alert = await assertContained(await backup(services, time), time, 'dump');
    expect(alert.error).toBe('ConfigurationError');
    expect(alert.cause).toContain('Access Denied');
  });

  it('timing out mid-upload: TransientError at dump, retried, then alerted', async () => {
    const services = await servicesWith({
      primary: ({ command, input }) =>
        command === 'UploadPartCommand' && isDump(input.Key) && input.PartNumber === 3
          ? { throw: timeout() }
          : undefined,
    });
    const time = run(5);
    const result = await backup(services, time);
    const alert = await assertContained(result, time, 'dump');
    expect(alert.error).toBe('TransientError');
    expect(result.events.some((e) => e.type === 'StateRetried')).toBe(true);
  });

  it("dying at the upload's completion (connection reset): TransientError at dump, parts removed", async () => {
    const services = await servicesWith({
      primary: ({ command, input }) =>
        command === 'CompleteMultipartUploadCommand' && isDump(input.Key) ? { throw: reset() } : undefined,
    });
    const time = run(6);
    const alert = await assertContained(await backup(services, time), time, 'dump');
    expect(alert.error).toBe('TransientError');
    expect(await base.primaryStore.head(dumpKey(TARGET, backupIdFor(time)))).toBeUndefined();
  });

  it('refusing the download at verification: the backup is recorded as failing verification, alerted', async () => {
    const services = await servicesWith({
      primary: ({ command, input }) =>
        command === 'GetObjectCommand' && isDump(input.Key)
          ? { throw: sdkError('AccessDenied', 403, 'Access Denied') }
          : undefined,
    });
    const time = run(7);
    const alert = await assertContained(await backup(services, time), time, /verify/);
    expect(alert.error).toBe('VerificationFailedError');
  });

  it('timing out during the download: TransientError at verification, not verified', async () => {
    const services = await servicesWith({
      primary: ({ command, input }) =>
        command === 'GetObjectCommand' && isDump(input.Key) ? { throw: timeout() } : undefined,
    });
    const time = run(8);
    const alert = await assertContained(await backup(services, time), time, /verify/);
    expect(alert.error).toBe('TransientError');
  });

  it('dying mid-download (connection reset after 1 MiB): a named error at verification, not verified', async () => {
    const services = await servicesWith({
      primary: ({ command, input }) =>
        command === 'GetObjectCommand' && isDump(input.Key)
          ? { cutBodyAfter: 1024 * 1024, error: reset() }
          : undefined,
    });
    const time = run(9);
    await assertContained(await backup(services, time), time, /verify/);
  });
});

describe('the DR store', () => {
  it('unavailable during the copy (503 on every call): TransientError at the copy, no DR copy recorded', async () => {
    const services = await servicesWith({
      // Every write to the DR bucket (retention's reads there are another step).
      dr: ({ command }) =>
        /^(PutObject|CreateMultipartUpload|UploadPart|CompleteMultipartUpload)Command$/.test(command)
          ? { throw: sdkError('ServiceUnavailable', 503, 'Service Unavailable') }
          : undefined,
    });
    const time = run(10);
    const alert = await assertContained(await backup(services, time), time, 'copy', [base.drStore]);
    expect(alert.error).toBe('TransientError');
    const manifest = await readManifest(base.primaryStore, base.envelope, TARGET, backupIdFor(time));
    expect(manifest.copies).toEqual([]);
    expect(await base.drStore.head(manifestKey(TARGET, backupIdFor(time)))).toBeUndefined();
  });
});

describe('the key failing mid-stream', () => {
  it('while the dump is encrypted: DumpFailedError at dump, the upload aborted, no manifest', async () => {
    const services = await servicesWith({ envelope: (e) => envelopeFailing(e, 'encryptStream') });
    const time = run(11);
    const alert = await assertContained(await backup(services, time), time, 'dump');
    expect(alert.error).toBe('DumpFailedError');
    expect(alert.cause).toContain('EIO');
    expect(await base.primaryStore.head(dumpKey(TARGET, backupIdFor(time)))).toBeUndefined();
    expect(await base.primaryStore.head(manifestKey(TARGET, backupIdFor(time)))).toBeUndefined();
  });

  it('while the dump is decrypted at verification: a named error at verification, not verified', async () => {
    const services = await servicesWith({ envelope: (e) => envelopeFailing(e, 'decryptStream') });
    const time = run(12);
    await assertContained(await backup(services, time), time, /verify/);
  });
});

describe('another key', () => {
  it('configured over existing backups: refused at plan with KeyMismatchError naming both fingerprints, nothing dumped', async () => {
    const other = testEnvelope();
    const services = await servicesWith({ envelope: () => other });
    const time = run(16);
    const before = base.primaryStore.list(`${TARGET}/`);
    const keysBefore: string[] = [];
    for await (const object of before) keysBefore.push(object.key);

    const result = await backup(services, time);

    expect(result.status).toBe('FAILED');
    const alert = (await readOutbox(base.config.KB_OUTBOX_FILE!))
      .filter((a) => a.execution === result.executionId)
      .at(-1);
    expect(alert).toMatchObject({ step: 'plan', error: 'KeyMismatchError' });
    expect(alert?.cause).toContain(base.envelope.keyFingerprint());
    expect(alert?.cause).toContain(other.keyFingerprint());
    const keysAfter: string[] = [];
    for await (const object of base.primaryStore.list(`${TARGET}/`)) keysAfter.push(object.key);
    expect(keysAfter).toEqual(keysBefore);
    await assertNothingLeft();
  });
});

describe('concurrency', () => {
  // Known gap: the two runs both dump to the backup's one key, so one run's dump can replace the other's after that
  // run wrote its manifest; a run can then end SUCCEEDED while a later verification write of the other marks the
  // backup failed. What holds today, and is asserted: every failure is named and alerted, the backup is listed as
  // verified only when its manifest matches the stored dump, and nothing is left behind.
  it('two runs of the same scheduled time at once: the first holds the backup id, the second stores nothing, recorded and not paged', async () => {
    const time = run(13);
    const backupId = backupIdFor(time);
    // The first run's dump waits (pg_dump held by backpressure) until the second run has ended: the second comes
    // while the first holds the id and has not written its dump.
    let dumping!: () => void;
    const firstDumps = new Promise<void>((resolve) => {
      dumping = resolve;
    });
    let release!: () => void;
    const secondEnded = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = await servicesWith({});
    const store = first.primaryStore;
    first.primaryStore = new Proxy(store, {
      get(target, property, receiver) {
        if (property !== 'putStream') return Reflect.get(target, property, receiver);
        return async (key: string, body: Readable, options: object) => {
          if (isDump(key)) {
            dumping();
            await secondEnded;
          }
          return target.putStream(key, body, options);
        };
      },
    });
    const secondWrites: string[] = [];
    const second = await servicesWith({
      primary: ({ command, input }) => {
        if (/Put|Upload/.test(command)) secondWrites.push(`${command} ${input.Key}`);
        return undefined;
      },
    });

    const firstRunning = backup(first, time);
    await firstDumps;
    const secondRun = await backup(second, time).finally(release);
    const firstRun = await firstRunning;

    expect(firstRun.status, firstRun.cause).toBe('SUCCEEDED');
    expect(secondRun.status, secondRun.cause).toBe('SUCCEEDED');
    const held = (secondRun.output as { results: { dump: { held?: boolean; cause?: string } }[] }).results[0]!
      .dump;
    expect(held.held).toBe(true);
    expect(held.cause).toContain(
      `held by another run of the same scheduled time (execution ${firstRun.executionId}`,
    );
    // The second run's one write under the backup was its claim, refused; nobody was paged for it.
    expect(secondWrites.filter((w) => w.includes(`/${backupId}/`))).toEqual([
      `PutObjectCommand ${claimKey(TARGET, backupId)}`,
    ]);
    const alerts = await readOutbox(base.config.KB_OUTBOX_FILE!);
    expect(alerts.filter((a) => a.execution === secondRun.executionId)).toEqual([]);
    expect(alerts.filter((a) => a.execution === firstRun.executionId)).toEqual([]);

    // The first run's backup, whole: its manifest, its dump (the checksum it recorded), its DR copy.
    const manifest = await readManifest(base.primaryStore, base.envelope, TARGET, backupId);
    expect(manifest.execution).toBe(firstRun.executionId);
    for (const region of [base.primaryStore, base.drStore]) {
      const stored = createHash('sha256');
      for await (const chunk of await region.getStream(dumpKey(TARGET, backupId))) stored.update(chunk);
      expect(stored.digest('hex'), region.bucket).toBe(manifest.dump.storedSha256);
    }
    const entry = (await readCatalog(base.primaryStore, base.envelope, TARGET)).find(
      (e) => e.backupId === backupId,
    );
    expect(entry?.manifest?.verified).toBe(true);
    expect(entry?.keys.sort()).toEqual(
      [claimKey(TARGET, backupId), dumpKey(TARGET, backupId), manifestKey(TARGET, backupId)].sort(),
    );
    await assertNothingLeft();
  });

  it('two runs of the same scheduled time racing freely: one dump stored, its manifest matching it, nobody paged', async () => {
    const time = run(17);
    const backupId = backupIdFor(time);
    const results = await Promise.all([backup(base, time), backup(base, time)]);

    for (const result of results) expect(result.status, result.cause).toBe('SUCCEEDED');
    const alerts = await readOutbox(base.config.KB_OUTBOX_FILE!);
    expect(alerts.filter((a) => results.some((r) => r.executionId === a.execution))).toEqual([]);
    // One holds the backup; the other found it held (while it was made) or complete (reused): never a second dump.
    const manifest = await readManifest(base.primaryStore, base.envelope, TARGET, backupId);
    expect(results.map((r) => r.executionId)).toContain(manifest.execution);
    const stored = createHash('sha256');
    for await (const chunk of await base.primaryStore.getStream(dumpKey(TARGET, backupId)))
      stored.update(chunk);
    expect(stored.digest('hex')).toBe(manifest.dump.storedSha256);
    const entry = (await readCatalog(base.primaryStore, base.envelope, TARGET)).find(
      (e) => e.backupId === backupId,
    );
    expect(entry?.manifest?.verified).toBe(true);
    await assertNothingLeft();
  });

  it('a backup during a restore: both complete, the restored copy whole', async () => {
    const source = await readManifest(base.primaryStore, base.envelope, TARGET, backupIdFor(run(2)));
    await ctx.stack.primary.query('create database restored_during_backup');
    const url = new URL(ctx.stack.primaryUrl);
    url.pathname = '/restored_during_backup';
    const time = run(14);

    const [restored, result] = await Promise.all([
      base.tools.restore(storedDump(base.primaryStore, source), url.toString(), 2),
      backup(base, time),
    ]);

    expect(result.status, result.cause).toBe('SUCCEEDED');
    expect(restored.durationMs).toBeGreaterThan(0);
    const rows = await ctx.stack.primary.query<{ n: string }>(
      'select count(*)::text as n from filler',
      [],
      'restored_during_backup',
    );
    expect(rows[0]?.n).toBe('60000');
    const manifest = await readManifest(base.primaryStore, base.envelope, TARGET, backupIdFor(time));
    expect(manifest.contents.tableCounts.filler).toBe(60000);
    await ctx.stack.primary.query('drop database restored_during_backup');
    await assertNothingLeft();
  });
});

describe('the replica', () => {
  it('a recovery conflict on the standby: a dump it cancels is retried (TransientError), a dump already read stands as of its snapshot', async () => {
    const replica = ctx.stack.replica;
    const setting = async (sql: string) => {
      await replica.query(sql);
      await replica.query('select pg_reload_conf()');
    };
    await ctx.stack.primary.query(
      'create table churn as select g as id, md5(g::text) as a from generate_series(1, 20000) g',
      [],
      'keycloak',
    );
    await ctx.stack.waitForReplay();
    // Without feedback and with no delay allowed, the standby cancels a query that still sees removed rows.
    await setting('alter system set hot_standby_feedback = off');
    await setting('alter system set max_standby_streaming_delay = 0');
    // The reload reaches the walreceiver when it next looks: until it tells the primary, the replica's slot keeps the
    // removed rows, vacuum leaves them and nothing conflicts (the case failed so when another file loaded the machine).
    const slotXmin = async () =>
      (
        await ctx.stack.primary.query<{ xmin: string | null }>(
          'select xmin::text as xmin from pg_replication_slots where slot_name = $1',
          [REPLICA_SLOT],
        )
      )[0]?.xmin ?? null;
    for (let waited = 0; (await slotXmin()) !== null; waited += 100) {
      if (waited > 30_000)
        throw new Error("the replica's slot still holds an xmin 30 s after feedback was turned off");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    let xminAtDelete: string | null = null;
    let conflicted = false;
    const services = await servicesWith({});
    const store = services.primaryStore;
    services.primaryStore = new Proxy(store, {
      get(target, property, receiver) {
        if (property !== 'putStream') return Reflect.get(target, property, receiver);
        return async (key: string, body: Readable, options: object) => {
          if (!conflicted && isDump(key)) {
            conflicted = true;
            xminAtDelete = await slotXmin();
            // pg_dump is held by backpressure, its snapshot open on the standby, while the primary removes rows.
            await ctx.stack.primary.query('delete from churn', [], 'keycloak');
            await ctx.stack.primary.query('vacuum churn', [], 'keycloak');
            await ctx.stack.waitForReplay();
            await new Promise((resolve) => setTimeout(resolve, 1000));
          }
          return target.putStream(key, body, options);
        };
      },
    });
    const time = run(15);
    try {
      const result = await backup(services, time);

      expect(conflicted).toBe(true);
      expect(result.status, result.cause).toBe('SUCCEEDED');
      const retried = result.events.filter((e) => e.type === 'StateRetried' && e.state === 'DumpDatabase');
      const manifest = await readManifest(base.primaryStore, base.envelope, TARGET, backupIdFor(time));
      if (retried.length > 0) {
        // The conflict cancelled pg_dump inside its snapshot: retried, and the retry's snapshot has the rows gone.
        expect(retried[0]).toMatchObject({ error: 'TransientError' });
        expect(retried[0]!.cause).toMatch(/conflict with recovery/);
        expect(manifest.contents.tableCounts.churn).toBe(0);
      } else {
        // pg_dump had read its whole snapshot before the rows went away (on some runs the dump path's buffers hold
        // the whole archive; slot xmin at the delete: see the message): the conflict ended only the idle snapshot
        // connection, and the dump stands as of its snapshot, the rows still there.
        expect(manifest.contents.tableCounts.churn, `slot xmin at the delete: ${xminAtDelete}`).toBe(20000);
      }
      await assertNothingLeft();
    } finally {
      await setting('alter system reset max_standby_streaming_delay');
      await setting('alter system reset hot_standby_feedback');
    }
  });
});

describe('after the faults', () => {
  it('a run that succeeds expires what the failing runs kept', async () => {
    const result = await backup(base, run(1));
    expect(result.status, result.cause).toBe('SUCCEEDED');
    expect(await base.primaryStore.head(manifestKey(TARGET, backupIdFor(EXPIRED)))).toBeUndefined();
  });
});
