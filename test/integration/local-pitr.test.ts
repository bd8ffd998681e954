// Point-in-time restore on the real local stack: pg_basebackup snapshots, the primary's WAL archive, recovery, teardown.
import { access, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DRILLS_DIR, LocalPointInTimeEngine } from '../../functions/adapters/local/local-pitr.js';
import {
  LocalSnapshotEngine,
  snapshotArchiveKey,
  snapshotMetadataKey,
} from '../../functions/adapters/local/local-snapshots.js';
import { isProcessRunning } from '../../functions/adapters/local/postgres-cluster.js';
import { ConfigurationError, RestoreWindowError } from '../../functions/core/errors.js';
import type { DrillInstance, ObjectStore } from '../../functions/core/ports.js';
import type { Services } from '../../functions/platform/services.js';
import type { LocalStack } from '../../local/stack.js';
import {
  type PitrStack,
  query,
  removePitrStack,
  startPitrStack,
  takeBaseBackup,
} from '../support/pitr-stack.js';

const TARGET = 'keycloak';
let context: PitrStack | undefined;
let stateDir: string;
let stack: LocalStack;
let services: Services;
let snapshots: LocalSnapshotEngine;
let snapshotTakenAt: Date;
/** Committed before `betweenMarkers`, and B after it. */
let betweenMarkers: Date;
const started: string[] = [];

async function markers(instance: DrillInstance): Promise<string[]> {
  const rows = await query<{ name: string }>(
    instance.databaseUrl!,
    'select name from drill_marker order by name',
  );
  return rows.map((r) => r.name);
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** Pids of processes whose command line names something under `dir` (a postmaster started with -D <dir>/data). */
async function processesUnder(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').some((arg) => arg.startsWith(dir))) found.push(Number(entry));
  }
  return found;
}

async function postmasterPid(instanceId: string): Promise<number> {
  const file = path.join(stateDir, DRILLS_DIR, instanceId, 'instance.json');
  const record = JSON.parse(await readFile(file, 'utf8')) as { pid: number };
  return record.pid;
}

async function restore(instanceId: string, time: Date | 'latest'): Promise<DrillInstance> {
  started.push(instanceId);
  return services.pitr.restore({ target: TARGET, instanceId, time });
}

beforeAll(async () => {
  context = await startPitrStack('kb-pitr-');
  ({ stateDir, stack, services, snapshots } = context);
  await query(stack.primaryUrl, 'create table drill_marker (name text primary key)');

  await takeBaseBackup(context);
  snapshotTakenAt = (await snapshots.describe(TARGET, 'kb-keycloak-20261123t0000z', 'primary')).createdAt;

  // A, then a moment known to lie after A's commit and before B's.
  await query(stack.primaryUrl, "insert into drill_marker values ('A')");
  await sleep(700);
  betweenMarkers = new Date();
  await sleep(700);
  await query(stack.primaryUrl, "insert into drill_marker values ('B')");
});

afterAll(() => removePitrStack(context, started));

describe('local snapshots', () => {
  it('stores an encrypted base backup with its metadata, and taking the same id again changes nothing', async () => {
    const info = await snapshots.describe(TARGET, 'kb-keycloak-20261123t0000z', 'primary');
    expect(info).toMatchObject({ status: 'available', backupId: '20261123T0000Z', region: 'eu-west-1' });
    const metadata = await snapshots.metadata(TARGET, 'kb-keycloak-20261123t0000z', 'primary');
    expect(metadata.startLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(metadata.timeline).toBe(1);
    const stored = await services.primaryStore.head(snapshotArchiveKey(TARGET, 'kb-keycloak-20261123t0000z'));
    expect(stored?.size).toBe(metadata.archive.storedBytes);
    // Encrypted: the stored bytes are not the tar (which begins with the backup_label entry).
    const head = (await (await services.primaryStore.getStream(metadata.archive.key)).toArray())[0] as Buffer;
    expect(head.subarray(0, 12).toString('latin1')).not.toBe('backup_label');

    const again = await snapshots.create({
      target: TARGET,
      snapshotId: 'kb-keycloak-20261123t0000z',
      backupId: '20261123T0000Z',
      retainUntil: new Date(),
    });
    expect(again.createdAt).toEqual(info.createdAt);
  });

  it('keeps the WAL the copy needs while checkpoints remove archived segments, and leaves no slot behind', async () => {
    let settled = false;
    const copy = snapshots
      .create({
        target: TARGET,
        snapshotId: 'kb-keycloak-20261122t0000z',
        backupId: '20261122T0000Z',
        retainUntil: new Date(),
      })
      .finally(() => {
        settled = true;
      });
    // What CREATE DATABASE beside a backup does: new WAL, a segment switch, a checkpoint that recycles the old.
    await query(stack.primaryUrl, 'create table if not exists wal_churn (n int)');
    let rounds = 0;
    while (!settled || rounds < 3) {
      await query(stack.primaryUrl, 'insert into wal_churn select generate_series(1, 20000)');
      await query(stack.primaryUrl, 'select pg_switch_wal()');
      await query(stack.primaryUrl, 'checkpoint');
      rounds += 1;
    }
    expect(await copy).toMatchObject({ status: 'available' });
    const slots = await query(
      stack.primaryUrl,
      "select slot_name from pg_replication_slots where slot_name like 'kb_snapshot_%'",
    );
    expect(slots).toEqual([]);
  });

  it('copies a snapshot into the DR store, checked, and deletes it there', async () => {
    const copy = await snapshots.copyToDr(TARGET, 'kb-keycloak-20261123t0000z');
    expect(copy).toMatchObject({ status: 'available', region: 'eu-central-1' });
    expect((await snapshots.list(TARGET, 'dr')).map((s) => s.snapshotId)).toEqual([
      'kb-keycloak-20261123t0000z',
    ]);
    await snapshots.delete(TARGET, 'kb-keycloak-20261123t0000z', 'dr');
    expect(await snapshots.list(TARGET, 'dr')).toEqual([]);
    expect(
      await services.drStore.head(snapshotMetadataKey(TARGET, 'kb-keycloak-20261123t0000z')),
    ).toBeUndefined();
  });

  it('lets the primary archive go when the DR store refuses the copy without reading it, and records no copy', async () => {
    let source: Readable | undefined;
    const primaryStore: ObjectStore = Object.create(services.primaryStore);
    primaryStore.getStream = async (key) => {
      source = await services.primaryStore.getStream(key);
      return source;
    };
    const drStore: ObjectStore = Object.create(services.drStore);
    drStore.putStream = async () => {
      throw new ConfigurationError('upload to kb-dr failed: AccessDenied');
    };
    const refused = new LocalSnapshotEngine({
      primaryStore,
      drStore,
      envelope: services.envelope,
      databases: services.databases,
      binaries: () => Promise.reject(new Error('a copy runs no program')),
    });

    await expect(refused.copyToDr(TARGET, 'kb-keycloak-20261123t0000z')).rejects.toBeInstanceOf(
      ConfigurationError,
    );
    await sleep(50);
    expect(source?.destroyed).toBe(true);
    expect(await snapshots.list(TARGET, 'dr')).toEqual([]);
  });
});

describe('local point-in-time restore', () => {
  it('reports a window from the snapshot to now', async () => {
    const before = new Date();
    const window = await services.pitr.restorableWindow(TARGET);
    expect(window.earliest).toEqual(snapshotTakenAt);
    expect(window.latest.getTime()).toBeGreaterThanOrEqual(before.getTime());
  });

  it('restores to a moment between two commits with exactly the rows committed before it', async () => {
    const instance = await restore('drill-keycloak-20261123t000001', betweenMarkers);
    expect(instance.status).toBe('available');
    expect(await markers(instance)).toEqual(['A']);
    const [{ recovering }] = (await query<{ recovering: boolean }>(
      instance.databaseUrl!,
      'select pg_is_in_recovery() as recovering',
    )) as [{ recovering: boolean }];
    expect(recovering).toBe(false);
    expect(new URL(instance.databaseUrl!).hostname).toBe('127.0.0.1');
    const dir = path.join(stateDir, DRILLS_DIR, 'drill-keycloak-20261123t000001');
    expect(await processesUnder(dir)).toEqual([await postmasterPid('drill-keycloak-20261123t000001')]);
  });

  it('restores latest with every committed row, and answers describe and listDrills from any process', async () => {
    const instance = await restore('drill-keycloak-20261123t000002', 'latest');
    expect(await markers(instance)).toEqual(['A', 'B']);
    const described = await services.pitr.describe('drill-keycloak-20261123t000002');
    expect(described).toMatchObject({
      status: 'available',
      target: TARGET,
      databaseUrl: instance.databaseUrl,
    });
    const listed = (await services.pitr.listDrills()).map((d) => d.instanceId);
    expect(listed).toContain('drill-keycloak-20261123t000002');
  });

  it('tears down completely: no process with its pid, no folder, and a second teardown succeeds', async () => {
    const instanceId = 'drill-keycloak-20261123t000002';
    const pid = await postmasterPid(instanceId);
    expect(isProcessRunning(pid)).toBe(true);
    await services.pitr.teardown(instanceId);
    expect(isProcessRunning(pid)).toBe(false);
    expect(await exists(path.join(stateDir, DRILLS_DIR, instanceId))).toBe(false);
    expect((await services.pitr.describe(instanceId)).status).toBe('gone');
    await expect(services.pitr.teardown(instanceId)).resolves.toBeUndefined();
  });

  it('takes a recorded pid for the copy only when that process is its postmaster, and removes the folder alone', async () => {
    // A record left by a crash whose pid now belongs to another process (this one): not the copy's server.
    const instanceId = 'drill-keycloak-20261123t000007';
    const dir = path.join(stateDir, DRILLS_DIR, instanceId);
    await mkdir(path.join(dir, 'data'), { recursive: true });
    const record = {
      recordVersion: 1,
      instanceId,
      target: TARGET,
      status: 'available',
      createdAt: new Date().toISOString(),
      availableAt: new Date().toISOString(),
      time: 'latest',
      snapshotId: 'kb-keycloak-20261123t0000z',
      port: 1,
      pid: process.pid,
    };
    await writeFile(path.join(dir, 'instance.json'), JSON.stringify(record));
    expect((await services.pitr.describe(instanceId)).status).toBe('failed');
    await services.pitr.teardown(instanceId);
    expect(await exists(dir)).toBe(false);
    expect(isProcessRunning(process.pid)).toBe(true);
  });

  it('refuses a time before the earliest snapshot, naming it, and starts nothing', async () => {
    const early = new Date(snapshotTakenAt.getTime() - 60_000);
    const refusal = restore('drill-keycloak-20261123t000003', early);
    await expect(refusal).rejects.toThrow(RestoreWindowError);
    await expect(refusal).rejects.toThrow(
      `is before the earliest restorable time ${snapshotTakenAt.toISOString()}`,
    );
    expect(await exists(path.join(stateDir, DRILLS_DIR, 'drill-keycloak-20261123t000003'))).toBe(false);
  });

  it('refuses a time in the future and starts nothing', async () => {
    const refusal = restore('drill-keycloak-20261123t000004', new Date(Date.now() + 3_600_000));
    await expect(refusal).rejects.toThrow(RestoreWindowError);
    await expect(refusal).rejects.toThrow(/is in the future/);
    const left = (await readdir(path.join(stateDir, DRILLS_DIR))).filter((d) => d.endsWith('000004'));
    expect(left).toEqual([]);
  });

  it('leaves nothing behind when the restore fails midway', async () => {
    // Another key cannot decrypt the stored base backup: the restore fails after it created its folder.
    const broken = new LocalSnapshotEngine({
      primaryStore: services.primaryStore,
      drStore: services.drStore,
      envelope: {
        ...services.envelope,
        decryptStream: () => {
          throw new Error('simulated decryption failure');
        },
        encryptStream: services.envelope.encryptStream.bind(services.envelope),
        describe: services.envelope.describe.bind(services.envelope),
        checkUsable: services.envelope.checkUsable.bind(services.envelope),
        keyFingerprint: services.envelope.keyFingerprint.bind(services.envelope),
        sealManifest: services.envelope.sealManifest.bind(services.envelope),
        openManifestSeal: services.envelope.openManifestSeal.bind(services.envelope),
      },
      databases: services.databases,
      binaries: services.binaries,
    });
    const engine = new LocalPointInTimeEngine({
      stateDir,
      walArchiveDir: stack.walArchiveDir,
      snapshots: broken,
      databases: services.databases,
      binaries: services.binaries,
    });
    await expect(
      engine.restore({ target: TARGET, instanceId: 'drill-keycloak-20261123t000005', time: 'latest' }),
    ).rejects.toThrow(/simulated decryption failure/);
    expect(await exists(path.join(stateDir, DRILLS_DIR, 'drill-keycloak-20261123t000005'))).toBe(false);
    expect((await engine.listDrills()).map((d) => d.instanceId)).not.toContain(
      'drill-keycloak-20261123t000005',
    );
  });

  it('stops the server it started and removes everything when recovery does not finish', async () => {
    // The copy starts, but its readiness is never confirmed (the second URL names no database): the restore times
    // out with the postmaster running, and must stop it.
    let calls = 0;
    const databases = {
      connectionUrl: async (target: string, role: 'primary' | 'replica') => {
        const url = new URL(await services.databases.connectionUrl(target, role));
        if (++calls > 1) url.pathname = '/no_such_database';
        return url.toString();
      },
    };
    const engine = new LocalPointInTimeEngine({
      stateDir,
      walArchiveDir: stack.walArchiveDir,
      snapshots,
      databases,
      binaries: services.binaries,
      recoveryTimeoutMs: 1500,
    });
    const dir = path.join(stateDir, DRILLS_DIR, 'drill-keycloak-20261123t000006');
    await expect(
      engine.restore({ target: TARGET, instanceId: 'drill-keycloak-20261123t000006', time: 'latest' }),
    ).rejects.toThrow(/not promoted in time/);
    expect(await exists(dir)).toBe(false);
    expect(await processesUnder(dir)).toEqual([]);
  });
});
