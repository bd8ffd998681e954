// Retention carried out over an in-memory store with sealed manifests: damaged ones are reported, never acted on.
import { describe, expect, it } from 'vitest';
import { expireRegion } from '../../functions/core/expire.js';
import { dumpKey, manifestKey } from '../../functions/core/layout.js';
import type { SnapshotEngine } from '../../functions/core/ports.js';
import type { RetentionPolicy } from '../../functions/core/retention.js';
import { backupIdFor } from '../../functions/core/schedule.js';
import { writeManifest } from '../../functions/core/stored-backups.js';
import { sampleManifest, testEnvelope } from '../support/manifests.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';

const TARGET = 'keycloak';
const now = new Date('2026-11-30T12:00:00Z');
const policy: RetentionPolicy = {
  hourlyHours: 48,
  dailyDays: 14,
  weeklyDays: 90,
  monthlyDays: 365,
  incompleteGraceHours: 6,
};
const noSnapshots = { list: async () => [], delete: async () => undefined } as unknown as SnapshotEngine;

async function setup() {
  const envelope = testEnvelope();
  const store = new MemoryObjectStore({ now: () => new Date('2026-11-20T00:00:00Z') });
  const ids = ['2026-11-20T01:00:00Z', '2026-11-20T02:00:00Z', '2026-11-30T11:00:00Z'].map((t) =>
    backupIdFor(new Date(t)),
  );
  for (const backupId of ids) {
    const manifest = sampleManifest(TARGET, backupId);
    await store.putJson(dumpKey(TARGET, backupId), { bytes: 'x' });
    await writeManifest(store, envelope, {
      ...manifest,
      verification: [{ at: manifest.finishedAt, level: 'archive', passed: true, checks: [], durationMs: 1 }],
    });
  }
  const expire = () =>
    expireRegion({
      store,
      keyring: envelope,
      region: 'primary',
      snapshots: noSnapshots,
      targets: [TARGET],
      policy,
      now,
      failedTargets: [],
    });
  return { store, envelope, ids, expire };
}

describe('expireRegion', () => {
  it('deletes expired backups, manifest first, and keeps the newest verified', async () => {
    const { store, ids, expire } = await setup();
    const plan = await expire();
    expect(plan.deleteBackups.map((d) => d.id)).toEqual([ids[0], ids[1]]);
    expect(store.keys()).toEqual([dumpKey(TARGET, ids[2]!), manifestKey(TARGET, ids[2]!)]);
  });

  it('leaves a backup with a truncated manifest in place, names it, and expires the others', async () => {
    const { store, ids, expire } = await setup();
    store.overwrite(manifestKey(TARGET, ids[0]!), '{"manifestVersion": 1, "back');
    const plan = await expire();
    expect(plan.deleteBackups.map((d) => d.id)).toEqual([ids[1]]);
    expect(plan.warnings).toEqual([
      expect.stringMatching(
        new RegExp(
          `backup ${ids[0]} of keycloak is left in place: ManifestInvalidError: manifest .*${ids[0]}/manifest.json .* unreadable`,
        ),
      ),
    ]);
    expect(await store.head(dumpKey(TARGET, ids[0]!))).toBeDefined();
  });

  it('never takes an edited manifest at its word: a retain-until moved into the past deletes nothing', async () => {
    const { store, ids, expire } = await setup();
    const key = manifestKey(TARGET, ids[2]!);
    const stored = (await store.getJson(key)) as Record<string, unknown>;
    store.overwrite(key, JSON.stringify({ ...stored, retainUntil: '2026-11-21T00:00:00.000Z' }));
    const plan = await expire();
    expect(plan.deleteBackups.map((d) => d.id)).not.toContain(ids[2]);
    expect(plan.warnings.join('\n')).toMatch(/ManifestTamperedError/);
    expect(await store.head(key)).toBeDefined();
  });

  it('does not count a damaged newest manifest as the newest verified backup', async () => {
    const { store, ids, expire } = await setup();
    store.overwrite(manifestKey(TARGET, ids[2]!), 'not json');
    const plan = await expire();
    // The newest usable verified backup is then ids[1]: it stays, however old; ids[0] goes.
    expect(plan.deleteBackups.map((d) => d.id)).toEqual([ids[0]]);
  });
});
