// reportBackup over an in-memory bucket: run reports for failed targets and the run's metrics (EMF).
import { describe, expect, it } from 'vitest';
import { buildDrillReport, drillMetricsEmf } from '../../functions/core/drill.js';
import { runReportKey } from '../../functions/core/layout.js';
import { type EmfRecord, emittedNames, METRIC_NAMES, METRICS } from '../../functions/core/metrics.js';
import { backupRunMetrics, runReportSchema } from '../../functions/core/run-report.js';
import { makeHandler } from '../../functions/handlers/report-backup.js';
import type { Services } from '../../functions/platform/services.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';
import { FIXTURE_ENVELOPE, putBackup, sampleManifest } from '../support/report-fixtures.js';
import { unitServices } from '../support/unit-config.js';

const now = new Date('2026-11-23T12:10:00Z');
const context = { getRemainingTimeInMillis: () => 60_000, awsRequestId: 'req-1' } as never;

function fakeServices(store: MemoryObjectStore): Services {
  return unitServices(now, { primaryStore: store, envelope: FIXTURE_ENVELOPE });
}

const ok = { failed: false };
const run = (results: unknown[], retention: Record<string, unknown> = {}) => ({
  backupId: '20261123T1200Z',
  tiers: ['hourly'],
  results,
  retention: { deletedBackups: 0, deletedSnapshots: 0, ...retention },
  execution: 'exec-1',
});

async function report(store: MemoryObjectStore, input: unknown) {
  const emitted: EmfRecord[] = [];
  const result = await makeHandler(fakeServices(store), {
    metrics: async (emf) => void emitted.push(emf as EmfRecord),
  })(input, context);
  return { result, emitted };
}

describe('reportBackup', () => {
  it('emits sizes, durations, DR copies, the backup age and key rotation from the stored manifests', async () => {
    const store = new MemoryObjectStore();
    await putBackup(store, sampleManifest({ backupId: '20261123T1100Z', keys: { 'master/rsa/a': 'fp-a' } }));
    await putBackup(
      store,
      sampleManifest({
        backupId: '20261123T1200Z',
        plainBytes: 5000,
        storedBytes: 2000,
        dumpSeconds: 7,
        keys: { 'master/rsa/b': 'fp-b', 'master/hmac/c': 'fp-c' },
      }),
    );
    const { emitted } = await report(store, run([{ target: 'keycloak', dump: ok, snapshot: ok }]));
    expect(emitted).toHaveLength(1);
    expect(emitted[0]).toMatchObject({
      Target: 'keycloak',
      BackupsSucceeded: 1,
      BackupsFailed: 0,
      DumpPlainBytes: 5000,
      DumpStoredBytes: 2000,
      DumpDurationSeconds: 7,
      VerifyDurationSeconds: 4,
      DrCopies: 1,
      RealmKeys: 2,
      RealmKeysAppeared: 2,
      RealmKeysDisappeared: 1,
      // the dump started at 12:00:05; the run ends at 12:10:00
      NewestVerifiedBackupAgeSeconds: 595,
    });
    expect(await store.head(runReportKey('keycloak', '20261123T1200Z'))).toBeUndefined();
  });

  it('stores a run report naming the failed step and counts the failure by step', async () => {
    const store = new MemoryObjectStore();
    await putBackup(store, sampleManifest({ backupId: '20261123T1000Z' }));
    await putBackup(store, sampleManifest({ backupId: '20261123T1100Z', verified: false }));
    const { emitted, result } = await report(
      store,
      run([
        {
          target: 'keycloak',
          dump: { failed: true, step: 'verify', error: 'ChecksumMismatchError' },
          snapshot: { failed: false, skipped: true },
        },
      ]),
    );
    expect(result).toMatchObject({ failedTargets: 1 });
    const stored = runReportSchema.parse(await store.getJson(runReportKey('keycloak', '20261123T1200Z')));
    expect(stored.failures).toEqual([{ step: 'verify', error: 'ChecksumMismatchError' }]);
    expect(stored.execution).toBe('exec-1');
    const [outcome, byStep] = emitted;
    expect(outcome).toMatchObject({ BackupsSucceeded: 0, BackupsFailed: 1 });
    // the newest verified backup is 10:00's (started 10:00:05): 2 h 9 min 55 s before the run ended
    expect(outcome?.NewestVerifiedBackupAgeSeconds).toBe(7795);
    expect(outcome).not.toHaveProperty('DumpPlainBytes');
    expect(byStep).toMatchObject({ Target: 'keycloak', Step: 'verify', StepFailures: 1 });
    expect(byStep?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([['Target', 'Step']]);
  });

  it('counts a failed retention against every target of the run', async () => {
    const store = new MemoryObjectStore();
    await putBackup(store, sampleManifest({ backupId: '20261123T1200Z' }));
    const { emitted } = await report(
      store,
      run([{ target: 'keycloak', dump: ok, snapshot: ok }], { failed: true }),
    );
    expect(emitted.map((e) => e.Step)).toEqual([undefined, 'retention']);
    expect(await store.head(runReportKey('keycloak', '20261123T1200Z'))).toBeDefined();
  });

  it('leaves the backup age out when no backup of the target was ever verified', async () => {
    const store = new MemoryObjectStore();
    const { emitted } = await report(
      store,
      run([
        { target: 'keycloak', dump: { failed: true, step: 'dump', error: 'DumpFailedError' }, snapshot: ok },
      ]),
    );
    expect(emitted[0]).not.toHaveProperty('NewestVerifiedBackupAgeSeconds');
  });
});

describe('metric declaration', () => {
  it('is what reportBackup and recordDrill emit, every name and nothing else', () => {
    const manifest = sampleManifest({ backupId: '20261123T1200Z' });
    const previous = sampleManifest({ backupId: '20261123T1100Z' });
    const backupRecords = backupRunMetrics({
      outcome: { target: 'keycloak', dump: ok, snapshot: { failed: true, step: 'snapshot', error: 'E' } },
      failures: [{ step: 'snapshot', error: 'E' }],
      manifests: { current: manifest, newestVerified: manifest, previous },
      primaryRegion: 'eu-west-1',
      at: now,
    });
    const drill = buildDrillReport({
      drillId: 'drill-keycloak-20261123t120000',
      target: 'keycloak',
      instanceId: 'drill-keycloak-20261123t120000',
      time: 'latest',
      keepMinutes: 0,
      requestedAt: new Date('2026-11-23T12:00:00Z'),
      availableAt: new Date('2026-11-23T12:05:00Z'),
      verifiedAt: new Date('2026-11-23T12:06:00Z'),
      recordedAt: now,
      verification: {
        passed: true,
        keycloakVersion: null,
        manifestBackupId: null,
        checks: [],
        failedChecks: [],
      },
      tornDown: true,
    });
    const emitted = new Set(
      [...backupRecords, ...drillMetricsEmf(drill, now)].flatMap((record) => emittedNames(record)),
    );
    expect([...emitted].sort()).toEqual([...METRIC_NAMES].sort());
    for (const record of backupRecords) {
      for (const directive of record._aws.CloudWatchMetrics) {
        for (const metric of directive.Metrics) {
          const declared = METRICS[metric.Name as keyof typeof METRICS];
          expect(directive.Dimensions).toEqual([[...declared.dimensions]]);
          expect(metric.Unit).toBe(declared.unit);
        }
      }
    }
  });
});
