// Manifests and drill reports for the report and run-metrics tests (no I/O).
import { Readable } from 'node:stream';
import { type DrillReport, drillReportSchema } from '../../functions/core/drill.js';
import { dumpKey } from '../../functions/core/layout.js';
import { type Manifest, manifestSchema } from '../../functions/core/manifest.js';
import type { ObjectStore } from '../../functions/core/ports.js';
import type { Tier } from '../../functions/core/schedule.js';
import { timeOfBackupId } from '../../functions/core/schedule.js';
import { writeManifest } from '../../functions/core/stored-backups.js';
import { testEnvelope } from './manifests.js';

const HEX = 'ab'.repeat(32);

/** The keyring the fixtures' manifests are sealed under: hand it to services as `envelope`. */
export const FIXTURE_ENVELOPE = testEnvelope();

export interface SampleBackup {
  target?: string;
  backupId: string;
  tiers?: Tier[];
  plainBytes?: number;
  storedBytes?: number;
  dumpSeconds?: number;
  /** undefined: verified (archive level); false: its verification failed; null: never verified. */
  verified?: boolean | null;
  /** Regions the dump was copied to, besides the primary. */
  copies?: string[];
  keys?: Record<string, string>;
  retainDays?: number;
}

/** A valid manifest (it passes manifestSchema) with the given facts; times follow the backup id. */
export function sampleManifest(b: SampleBackup): Manifest {
  const target = b.target ?? 'keycloak';
  const scheduled = timeOfBackupId(b.backupId);
  const started = new Date(scheduled.getTime() + 5_000);
  const dumpMs = (b.dumpSeconds ?? 12) * 1000;
  const finished = new Date(started.getTime() + dumpMs + 20_000);
  const at = (ms: number) => new Date(started.getTime() + ms).toISOString();
  const verified = b.verified === undefined ? true : b.verified;
  return manifestSchema.parse({
    manifestVersion: 1,
    backupId: b.backupId,
    target,
    tiers: b.tiers ?? ['hourly'],
    scheduledAt: scheduled.toISOString(),
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    retainUntil: new Date(scheduled.getTime() + (b.retainDays ?? 2) * 86_400_000).toISOString(),
    source: {
      endpointRole: 'replica',
      serverVersion: '15.8',
      pgDumpVersion: '15.8',
      keycloakVersion: '26.0.8',
      replicaLagSeconds: 0,
      database: 'keycloak',
      schema: 'public',
    },
    dump: {
      key: dumpKey(target, b.backupId),
      format: 'custom',
      compression: 'zstd:3',
      plainBytes: b.plainBytes ?? 12_000_000,
      plainSha256: HEX,
      storedBytes: b.storedBytes ?? 3_000_000,
      storedSha256: HEX,
      durationMs: dumpMs,
    },
    encryption: { suite: 'suite', frameLength: 1048576, keyIds: ['k'], context: { target } },
    contents: {
      tableCounts: { realm: 2 },
      schemaDigest: 'digest',
      realms: ['master', 'demo'],
      keyFingerprints: b.keys ?? { 'master/rsa-generated/c1': 'fp-1' },
      keycloakVersion: '26.0.8',
    },
    verification:
      verified === null
        ? []
        : [
            {
              at: at(dumpMs + 10_000),
              level: 'archive',
              passed: verified,
              checks: verified ? [] : [{ name: 'checksum', status: 'fail', detail: 'SHA-256 differs' }],
              durationMs: 4_000,
            },
          ],
    copies: (b.copies ?? ['eu-central-1']).map((region) => ({
      region,
      bucket: `kb-${region}`,
      key: dumpKey(target, b.backupId),
      verifiedAt: at(dumpMs + 15_000),
    })),
  });
}

export interface SampleDrill {
  target?: string;
  requestedAt: string;
  passed?: boolean;
  totalSeconds?: number;
  failedStep?: string;
}

export function sampleDrillReport(d: SampleDrill): DrillReport {
  const requested = new Date(d.requestedAt);
  const passed = d.passed ?? true;
  const total = d.totalSeconds ?? 600;
  const plus = (s: number) => new Date(requested.getTime() + s * 1000).toISOString();
  const stamp = d.requestedAt.replace(/[-:]/g, '').slice(0, 15).toLowerCase();
  const target = d.target ?? 'keycloak';
  const reachedAvailable = d.failedStep === undefined;
  return drillReportSchema.parse({
    reportVersion: 1,
    drillId: `drill-${target}-${stamp}`,
    target,
    instanceId: `drill-${target}-${stamp}`,
    execution: null,
    requested: { time: 'latest', keepMinutes: 0 },
    outcome: passed ? 'passed' : 'failed',
    times: {
      requestedAt: requested.toISOString(),
      availableAt: reachedAvailable ? plus(total - 30) : null,
      verifiedAt: reachedAvailable ? plus(total) : null,
      recordedAt: plus(total + 10),
    },
    recovery: {
      recoverySeconds: reachedAvailable ? total - 30 : null,
      verificationSeconds: reachedAvailable ? 30 : null,
      totalSeconds: reachedAvailable ? total : null,
    },
    verification: reachedAvailable
      ? {
          passed,
          keycloakVersion: '26.0.8',
          manifestBackupId: null,
          checks: [],
          failedChecks: passed ? [] : ['signing-keys'],
        }
      : null,
    failure: d.failedStep ? { step: d.failedStep, error: 'RestoreFailedError', cause: 'x' } : null,
    tornDown: true,
  });
}

/** Stores a manifest and a dump object beside it, as a backup leaves them. */
export async function putBackup(store: ObjectStore, manifest: Manifest): Promise<void> {
  await store.putStream(manifest.dump.key, Readable.from([Buffer.alloc(16)]));
  await writeManifest(store, FIXTURE_ENVELOPE, manifest);
}

/**
 * A pipeline's history as its buckets would hold it at `now`: hourly backups for two days, dailies for two weeks,
 * weeklies and a monthly, a key rotation, a verification that failed, a failed DR copy and six weekly drills (one
 * failed, one over the RTO).
 */
export async function storeSampleHistory(
  stores: { primary: ObjectStore; dr: ObjectStore },
  now: Date,
  target = 'keycloak',
): Promise<void> {
  const hour = 3_600_000;
  const top = Math.floor(now.getTime() / hour) * hour;
  const rotation = top - 5 * 24 * hour;
  const keysAt = (t: number): Record<string, string> =>
    t < rotation
      ? {
          'master/rsa-generated/c1': 'a1b2c3d4e5f6',
          'master/hmac-generated/c2': '0f1e2d3c4b5a',
          'demo/rsa-generated/c3': '99aa88bb77cc',
        }
      : {
          'master/rsa-generated/c4': 'd4c3b2a1f0e9',
          'master/hmac-generated/c2': '0f1e2d3c4b5a',
          'demo/rsa-generated/c3': '99aa88bb77cc',
        };
  const times = new Map<number, Tier[]>();
  for (let t = top - 47 * hour; t <= top; t += hour) times.set(t, ['hourly']);
  const midnight = Math.floor(now.getTime() / (24 * hour)) * 24 * hour;
  for (let d = 0; d < 14; d++) {
    const t = midnight - d * 24 * hour;
    const day = new Date(t);
    const tiers: Tier[] = t >= top - 47 * hour ? ['hourly', 'daily'] : ['daily'];
    if (day.getUTCDay() === 0) tiers.push('weekly');
    if (day.getUTCDate() === 1) tiers.push('monthly');
    times.set(t, tiers);
  }
  for (let w = 2; w < 8; w++) {
    const t = midnight - (((new Date(midnight).getUTCDay() + 7) % 7) + 7 * w) * 24 * hour;
    times.set(t, ['weekly']);
  }
  const { backupIdFor } = await import('../../functions/core/schedule.js');
  let i = 0;
  for (const [t, tiers] of [...times].sort((a, b) => a[0] - b[0])) {
    i++;
    const backupId = backupIdFor(new Date(t));
    const copied = i % 29 !== 7;
    const manifest = sampleManifest({
      target,
      backupId,
      tiers,
      plainBytes: Math.round(11_500_000 + i * 41_000 + (i % 5) * 90_000),
      storedBytes: Math.round(2_600_000 + i * 9_000 + (i % 5) * 20_000),
      dumpSeconds: 9 + (i % 7) * 0.8 + (tiers.includes('daily') ? 3 : 0),
      verified: i % 23 === 11 ? false : undefined,
      copies: copied ? ['eu-central-1'] : [],
      keys: keysAt(t),
      retainDays: tiers.includes('monthly')
        ? 365
        : tiers.includes('weekly')
          ? 90
          : tiers.includes('daily')
            ? 14
            : 2,
    });
    await putBackup(stores.primary, manifest);
    if (copied) await putBackup(stores.dr, manifest);
    else {
      await stores.primary.putJson(`${target}/runs/${backupId}/run-report.json`, {
        reportVersion: 1,
        backupId,
        target,
        tiers,
        execution: null,
        recordedAt: new Date(t + 60_000).toISOString(),
        failures: [{ step: 'copy', error: 'ChecksumMismatchError' }],
      });
    }
  }
  for (let w = 0; w < 6; w++) {
    const requestedAt = new Date(midnight - (w * 7 + 2) * 24 * hour + 3 * hour).toISOString();
    const drill = sampleDrillReport({
      target,
      requestedAt,
      passed: w !== 3,
      totalSeconds: w === 1 ? 4300 : 1500 + w * 170,
    });
    await stores.primary.putJson(`${target}/drills/${drill.drillId}/drill-report.json`, drill);
  }
}
