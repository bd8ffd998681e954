// The dump's size against the previous backup: compared only at the same compression, by the archive's own size.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EsdkEnvelope } from '../../functions/adapters/crypto/envelope.js';
import { localKeyFingerprint } from '../../functions/adapters/local/key-file.js';
import { LOCAL_KEY_ID, localKeyring } from '../../functions/adapters/local/raw-aes-keyring.js';
import { dumpStep, type StepPorts } from '../../functions/core/backup-steps.js';
import type { DumpOutcome } from '../../functions/core/ports.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';

const contents = { tableCounts: { realm: 2 }, schemaDigest: 'd', realms: ['master'], keyFingerprints: {} };

function outcome(
  dump: Pick<DumpOutcome, 'compression' | 'compressedBy' | 'plainBytes' | 'archiveBytes'>,
): DumpOutcome {
  return {
    ...dump,
    plainSha256: 'a'.repeat(64),
    storedBytes: dump.plainBytes + 100,
    storedSha256: 'b'.repeat(64),
    durationMs: 10,
    pgDumpVersion: '15.18',
    serverVersion: '15.18',
    endpointRole: 'replica',
    replicaLagSeconds: 0,
    contents,
  };
}

/** Two dumps in a row through dumpStep, the second's warnings returned (`retried`: its step run twice). */
async function secondDumpWarnings(
  first: DumpOutcome,
  second: DumpOutcome,
  options: { retried?: boolean } = {},
): Promise<string[]> {
  const key = randomBytes(32);
  const store = new MemoryObjectStore();
  const outcomes = [first, second];
  const ports = {
    primaryStore: store,
    drStore: new MemoryObjectStore({ region: 'eu-central-1' }),
    // The real envelope: manifests are sealed under the keyring and read back through it.
    envelope: new EsdkEnvelope({
      keyring: localKeyring(key),
      keyIds: [LOCAL_KEY_ID],
      fingerprint: localKeyFingerprint(key),
    }),
    tools: {
      identifySource: async () => ({
        systemIdentifier: '7000000000000000001',
        database: 'keycloak',
        databaseOid: 16384,
        serverVersion: '15.18',
        endpoint: '127.0.0.1:5433/keycloak',
      }),
      dump: async (request: { key: string }) => {
        await store.putJson(request.key, {});
        return outcomes.shift()!;
      },
    },
    copyObject: async () => ({ bytes: 0 }),
    clock: { now: () => new Date('2026-12-01T10:00:00Z') },
  } as unknown as StepPorts;
  const request = (backupId: string, hour: number) => ({
    target: 'keycloak',
    backupId,
    tiers: ['hourly' as const],
    scheduledAt: new Date(Date.UTC(2026, 11, 1, hour)),
    database: 'keycloak',
    schema: 'public',
    policy: { hourlyHours: 48, dailyDays: 14, weeklyDays: 90, monthlyDays: 365, incompleteGraceHours: 6 },
  });
  await dumpStep(ports, request('20261201T0800Z', 8));
  const dumped = await dumpStep(ports, request('20261201T0900Z', 9));
  if (!options.retried) return dumped.warnings;
  const again = await dumpStep(ports, request('20261201T0900Z', 9));
  expect(again.reused).toBe(true);
  return again.warnings;
}

describe('the dump size check', () => {
  const zstd = { compression: 'zstd:3', compressedBy: 'pipeline' } as const;
  const gzip = { compression: 'gzip:6', compressedBy: 'pg_dump' } as const;

  it('warns when the archive shrinks below half of the previous one at the same compression', async () => {
    const warnings = await secondDumpWarnings(
      outcome({ ...zstd, plainBytes: 1_000, archiveBytes: 4_000 }),
      outcome({ ...zstd, plainBytes: 400, archiveBytes: 1_500 }),
    );
    expect(warnings).toEqual([expect.stringMatching(/dump is 1500 bytes, less than half .* \(4000 bytes\)/)]);
  });

  it('says it again when the step is retried after its manifest was written (the first attempt may not have told)', async () => {
    const warnings = await secondDumpWarnings(
      outcome({ ...zstd, plainBytes: 1_000, archiveBytes: 4_000 }),
      outcome({ ...zstd, plainBytes: 400, archiveBytes: 1_500 }),
      { retried: true },
    );
    expect(warnings).toEqual([
      expect.stringMatching(
        /dump is 1500 bytes, less than half of the previous backup 20261201T0800Z \(4000 bytes\)/,
      ),
    ]);
  });

  it('says nothing when only the compression changed (pg_dump gzip before, the pipeline now)', async () => {
    // The pipeline's zstd frame is a little smaller than pg_dump's gzip archive; its archive is 4 times larger.
    const warnings = await secondDumpWarnings(
      outcome({ ...gzip, plainBytes: 1_000, archiveBytes: 1_000 }),
      outcome({ ...zstd, plainBytes: 980, archiveBytes: 4_000 }),
    );
    expect(warnings).toEqual([]);
    // From pg_dump without compression (its archive is what was encrypted) to the pipeline's zstd frame.
    const back = await secondDumpWarnings(
      outcome({ compression: 'none', compressedBy: 'pg_dump', plainBytes: 4_000, archiveBytes: 4_000 }),
      outcome({ ...zstd, plainBytes: 980, archiveBytes: 4_000 }),
    );
    expect(back).toEqual([]);
  });
});
