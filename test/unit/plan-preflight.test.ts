// The backup's preflight refuses a key other than the one the target's backups were written under, before any dump.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyMismatchError } from '../../functions/core/errors.js';
import { manifestKey } from '../../functions/core/layout.js';
import { writeManifest } from '../../functions/core/stored-backups.js';
import { makeHandler as makePlan } from '../../functions/handlers/plan-backup.js';
import type { Services } from '../../functions/platform/services.js';
import { sampleManifest, testEnvelope } from '../support/manifests.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';
import { unitServices } from '../support/unit-config.js';

const context = { getRemainingTimeInMillis: () => 60_000, awsRequestId: 'req-1' } as never;
const now = new Date('2026-11-23T12:00:00Z');
const TARGET = 'keycloak';
const OLD_KEY = randomBytes(32);
const NEW_KEY = randomBytes(32);

/** What the preflight does after the key check: reaching it means the key was accepted. */
class PastTheKeyCheck extends Error {}

function services(key: Buffer, store: MemoryObjectStore): Services {
  return unitServices(now, {
    primaryStore: store,
    envelope: testEnvelope(key),
    binaries: async () => {
      throw new PastTheKeyCheck('the key check passed');
    },
  });
}

async function storeWith(...backups: { backupId: string; key: Buffer }[]): Promise<MemoryObjectStore> {
  const store = new MemoryObjectStore({ bucket: 'kb-primary', now: () => now });
  for (const { backupId, key } of backups) {
    await writeManifest(store, testEnvelope(key), sampleManifest(TARGET, backupId));
  }
  return store;
}

const plan = (s: Services) => makePlan(s)({ request: { time: '2026-11-23T12:00:00Z' } }, context);

describe('the backup preflight and the key of the stored backups', () => {
  it('refuses another key with KeyMismatchError naming both fingerprints, before pg_dump is looked for', async () => {
    const store = await storeWith(
      { backupId: '20261123T1000Z', key: OLD_KEY },
      { backupId: '20261123T1100Z', key: OLD_KEY },
    );

    const error = await plan(services(NEW_KEY, store)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(KeyMismatchError);
    const message = (error as Error).message;
    expect(message).toContain(
      `target ${TARGET} holds backups written under another key (newest: 20261123T1100Z)`,
    );
    expect(message).toContain(testEnvelope(OLD_KEY).keyFingerprint());
    expect(message).toContain(testEnvelope(NEW_KEY).keyFingerprint());
    expect(message).not.toContain('\n');
    // Nothing of the new run was written.
    expect(
      store.keys().every((key) => key.includes('/20261123T1000Z/') || key.includes('/20261123T1100Z/')),
    ).toBe(true);
  });

  it('accepts the key of the newest backup, and a target with no backups yet', async () => {
    const rotated = await storeWith(
      { backupId: '20261123T1000Z', key: OLD_KEY },
      { backupId: '20261123T1100Z', key: NEW_KEY },
    );
    await expect(plan(services(NEW_KEY, rotated))).rejects.toBeInstanceOf(PastTheKeyCheck);
    await expect(plan(services(NEW_KEY, await storeWith()))).rejects.toBeInstanceOf(PastTheKeyCheck);
  });

  it('passes over a damaged newest manifest and judges by the one before', async () => {
    const store = await storeWith(
      { backupId: '20261123T1000Z', key: OLD_KEY },
      { backupId: '20261123T1100Z', key: NEW_KEY },
    );
    store.overwrite(manifestKey(TARGET, '20261123T1100Z'), '{"truncat');

    await expect(plan(services(NEW_KEY, store))).rejects.toBeInstanceOf(KeyMismatchError);
    await expect(plan(services(OLD_KEY, store))).rejects.toBeInstanceOf(PastTheKeyCheck);
  });
});
