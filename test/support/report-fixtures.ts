// Manifests and drill reports for the report and run-metrics tests (no I/O).
import { Readable } from 'node:stream';
import { type DrillReport, drillReportSchema } from '../../functions/core/drill.js';
import { dumpKey, manifestKey } from '../../functions/core/layout.js';
import { type Manifest, manifestSchema } from '../../functions/core/manifest.js';
import type { ObjectStore } from '../../functions/core/ports.js';
import type { Tier } from '../../functions/core/schedule.js';
import { timeOfBackupId } from '../../functions/core/schedule.js';

const HEX = 'ab'.repeat(32);

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
  await store.putJson(manifestKey(manifest.target, manifest.backupId), manifest);
}
