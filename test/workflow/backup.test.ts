// Executes statemachines/backup.asl.json on a real local stack (PostgreSQL primary + replica, s3rver, AES keyring).
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { readOutbox } from '../../functions/adapters/local/outbox-notifier.js';
import { TransientError } from '../../functions/core/errors.js';
import { dumpKey } from '../../functions/core/layout.js';
import { backupIdFor } from '../../functions/core/schedule.js';
import { readCatalog, readManifest } from '../../functions/core/stored-backups.js';
import type { LambdaEntry } from '../../functions/handlers/index.js';
import { parseConfig } from '../../functions/platform/config.js';
import { localServices } from '../../functions/platform/local-services.js';
import { createLogger } from '../../functions/platform/logger.js';
import type { Services } from '../../functions/platform/services.js';
import { runWorkflow } from '../../local/workflow.js';
import { hourlyRun, lastMidnight, useTestStack } from '../support/stack.js';

const ctx = useTestStack();
let services: Services;

/** hourlyRun under this stack's daily hour: a test that expects an hourly backup must not get a daily one. */
const hourly = (n: number) => hourlyRun(n, services.config.KB_DAILY_HOUR_UTC);

async function bytesOf(key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await services.primaryStore.getStream(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  services = await localServices(parseConfig(ctx.stack.env()), createLogger({ silent: true }));
});

describe('backup workflow', () => {
  it('dumps, fully verifies, copies to DR and snapshots the daily run', async () => {
    const time = lastMidnight(1);
    const backupId = backupIdFor(time);

    const result = await runWorkflow({
      machine: 'backup',
      input: { time: time.toISOString() },
      services,
      waitMs: 10,
    });

    const alerts = await readOutbox(services.config.KB_OUTBOX_FILE!);
    expect(result.status, alerts.map((a) => `${a.subject}: ${a.cause}`).join('\n')).toBe('SUCCEEDED');
    const manifest = await readManifest(services.primaryStore, services.envelope, 'keycloak', backupId);
    expect(manifest.tiers).toContain('daily');
    expect(manifest.source.endpointRole).toBe('replica');
    expect(manifest.source.keycloakVersion).toBe('26.0.8');
    expect(manifest.contents.tableCounts.user_entity).toBe(5);
    // By default pg_dump writes no compression and the pipeline zstd-compresses; the full verification restored it.
    expect(manifest.dump).toMatchObject({ compression: 'zstd:1', compressedBy: 'pipeline' });
    expect(manifest.dump.archiveBytes).toBeGreaterThan(manifest.dump.plainBytes);
    expect(manifest.verification.at(-1)).toMatchObject({ level: 'full', passed: true });
    expect(manifest.verification.at(-1)?.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining(['signing-keys', 'source-counts-exact']),
    );
    expect(manifest.copies.map((c) => c.region)).toEqual([services.drStore.region]);
    const drManifest = await readManifest(services.drStore, services.envelope, 'keycloak', backupId);
    expect(drManifest.dump.storedSha256).toBe(manifest.dump.storedSha256);

    const stored = await bytesOf(dumpKey('keycloak', backupId));
    expect(stored.length).toBe(manifest.dump.storedBytes);
    expect(stored.subarray(0, 5).toString('latin1')).not.toBe('PGDMP');
    expect(stored.includes(Buffer.from('CREATE TABLE'))).toBe(false);

    const snapshots = await services.snapshots.list('keycloak', 'dr');
    expect(snapshots.map((s) => s.backupId)).toContain(backupId);
  });

  it('retries a transient dump failure and then succeeds', async () => {
    const time = hourly(3);
    let calls = 0;
    const flaky =
      (real: LambdaEntry): LambdaEntry =>
      async (event, context) => {
        calls++;
        if (calls === 1) throw new TransientError('replica connection reset');
        return real(event, context);
      };

    const result = await runWorkflow({
      machine: 'backup',
      input: { time: time.toISOString() },
      services,
      retryIntervalMs: 10,
      wrap: { dumpDatabase: flaky },
    });

    expect(result.status, `${result.error}: ${result.cause}`).toBe('SUCCEEDED');
    expect(calls).toBe(2);
    expect(result.events.some((e) => e.type === 'StateRetried' && e.state === 'DumpDatabase')).toBe(true);
    const manifest = await readManifest(
      services.primaryStore,
      services.envelope,
      'keycloak',
      backupIdFor(time),
    );
    expect(manifest.tiers).toEqual(['hourly']);
    expect(manifest.verification.at(-1)).toMatchObject({ level: 'archive', passed: true });
  });

  it('alerts on a fatal failure, naming target, step, error and execution, and fails the execution', async () => {
    const time = hourly(2);
    const broken = (): LambdaEntry => async () => {
      const error = new Error('the DR bucket refused the copy');
      error.name = 'ConfigurationError';
      throw error;
    };

    const result = await runWorkflow({
      machine: 'backup',
      input: { time: time.toISOString() },
      services,
      wrap: { copyBackupToDr: broken },
    });

    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('BackupFailed');
    const alert = (await readOutbox(services.config.KB_OUTBOX_FILE!)).at(-1);
    expect(alert).toMatchObject({
      target: 'keycloak',
      step: 'copy',
      error: 'ConfigurationError',
      execution: result.executionId,
    });
    expect(alert?.cause).toContain('the DR bucket refused the copy');
  });

  it('records and alerts a verification failure when the stored dump is corrupted, and pauses retention', async () => {
    // Two verified hourly backups of its own, then the corrupted run two days later, when both have expired:
    // without the pause, retention would delete at least the older one.
    const expired = [hourly(6), hourly(5)];
    for (const run of expired) {
      const setup = await runWorkflow({ machine: 'backup', input: { time: run.toISOString() }, services });
      expect(setup.status, `${setup.error}: ${setup.cause}`).toBe('SUCCEEDED');
    }
    const time = hourly(-50);
    const later: Services = { ...services, clock: { now: () => new Date(time.getTime() + 600_000) } };
    expect(expired.every((run) => run.getTime() + 48 * 3_600_000 < later.clock.now().getTime())).toBe(true);
    const backupId = backupIdFor(time);
    const corruptFirst =
      (real: LambdaEntry): LambdaEntry =>
      async (event, context) => {
        const key = dumpKey('keycloak', backupId);
        const bytes = await bytesOf(key);
        bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
        await services.primaryStore.putStream(key, Readable.from([bytes]));
        return real(event, context);
      };

    const result = await runWorkflow({
      machine: 'backup',
      input: { time: time.toISOString() },
      services: later,
      wrap: { verifyBackup: corruptFirst },
    });

    expect(result.status).toBe('FAILED');
    const alert = (await readOutbox(services.config.KB_OUTBOX_FILE!)).at(-1);
    expect(alert).toMatchObject({ step: 'verify', error: 'VerificationFailedError' });
    expect(alert?.cause).toMatch(/checksum/);
    const manifest = await readManifest(services.primaryStore, services.envelope, 'keycloak', backupId);
    expect(manifest.verification.at(-1)).toMatchObject({ passed: false });
    const retention = result.events.find((e) => e.type === 'StateExited' && e.state === 'ApplyRetention');
    expect(retention).toBeDefined();
    // The newest backup failed: nothing of the target may be expired, so the expired backups are still there.
    const ids = (await readCatalog(services.primaryStore, services.envelope, 'keycloak')).map(
      (b) => b.backupId,
    );
    expect(ids).toEqual(expect.arrayContaining(expired.map((run) => backupIdFor(run))));
  });
});
