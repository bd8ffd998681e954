// The backup steps over an in-memory store, the real envelope and tools that really read what they are given.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { copyObjectVerified } from '../../functions/adapters/copy-object.js';
import { withVerification } from '../../functions/core/backup.js';
import {
  copyToDrStep,
  dumpStep,
  restoreStep,
  SHRINK_WARNING_RATIO,
  verifyStep,
} from '../../functions/core/backup-steps.js';
import {
  BackupHeldError,
  ChecksumMismatchError,
  ConfigurationError,
  KeyMismatchError,
  ManifestInvalidError,
  ManifestTamperedError,
  ManifestUnauthenticatedError,
  TransientError,
} from '../../functions/core/errors.js';
import { claimKey, dumpKey, manifestKey } from '../../functions/core/layout.js';
import type { Manifest } from '../../functions/core/manifest.js';
import type { RetentionPolicy } from '../../functions/core/retention.js';
import { backupIdFor } from '../../functions/core/schedule.js';
import { readCatalog, readManifest, updateManifest } from '../../functions/core/stored-backups.js';
import { fakeTools } from '../support/fake-tools.js';
import { testEnvelope } from '../support/manifests.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';

const TARGET = 'keycloak';
const policy: RetentionPolicy = {
  hourlyHours: 48,
  dailyDays: 14,
  weeklyDays: 90,
  monthlyDays: 365,
  incompleteGraceHours: 6,
};
const OLD = new Date('2026-11-23T09:00:00Z');
const NEW = new Date('2026-11-23T10:00:00Z');

function setup(key = randomBytes(32)) {
  const envelope = testEnvelope(key);
  const tools = fakeTools(envelope);
  const ports = {
    primaryStore: new MemoryObjectStore({ bucket: 'kb-primary', region: 'eu-west-1' }),
    drStore: new MemoryObjectStore({ bucket: 'kb-dr', region: 'eu-central-1' }),
    envelope,
    tools,
    copyObject: copyObjectVerified,
    clock: { now: () => new Date('2026-11-23T10:05:00Z') },
  };
  const backup = async (at: Date, plain?: Buffer) => {
    tools.nextDump = plain;
    const result = await dumpStep(ports, {
      target: TARGET,
      backupId: backupIdFor(at),
      tiers: ['hourly'],
      scheduledAt: at,
      database: 'keycloak',
      schema: 'public',
      policy,
    });
    await copyToDrStep(ports, TARGET, backupIdFor(at));
    return result;
  };
  return { ports, tools, envelope, backup };
}

/** A backup dumped (no DR copy, no verification yet); its id. */
async function dumpOnly(ports: ReturnType<typeof setup>['ports'], tools: ReturnType<typeof setup>['tools']) {
  tools.nextDump = randomBytes(4096);
  const { manifest } = await dumpStep(ports, {
    target: TARGET,
    backupId: backupIdFor(NEW),
    tiers: ['hourly'],
    scheduledAt: NEW,
    database: 'keycloak',
    schema: 'public',
    policy,
  });
  return manifest.backupId;
}

async function storedManifest(store: MemoryObjectStore, backupId: string): Promise<Record<string, unknown>> {
  return (await store.getJson(manifestKey(TARGET, backupId))) as Record<string, unknown>;
}

const verifyRequest = (backupId: string, extra: object = {}) => ({
  target: TARGET,
  backupId,
  full: false,
  jobs: 1,
  ...extra,
});

const restoreRequest = (backupId: string, extra: object = {}) => ({
  target: TARGET,
  backupId,
  databaseUrl: 'postgres://db/restored',
  jobs: 1,
  ...extra,
});

describe('dumpStep', () => {
  it('reuses the existing backup of a retried run and dumps nothing', async () => {
    const { ports, backup } = setup();
    const first = await backup(NEW);
    const before = ports.primaryStore.sha256(dumpKey(TARGET, first.manifest.backupId));
    const again = await dumpStep(ports, {
      target: TARGET,
      backupId: first.manifest.backupId,
      tiers: ['hourly'],
      scheduledAt: NEW,
      database: 'keycloak',
      schema: 'public',
      policy,
    });
    expect(again.reused).toBe(true);
    expect(again.manifest.dump.storedSha256).toBe(first.manifest.dump.storedSha256);
    expect(ports.primaryStore.sha256(dumpKey(TARGET, first.manifest.backupId))).toBe(before);
  });

  it('warns when a dump shrinks below half of the previous backup', async () => {
    const { backup } = setup();
    await backup(OLD, randomBytes(10_000));
    const shrunk = await backup(NEW, randomBytes(Math.floor(10_000 * SHRINK_WARNING_RATIO) - 1));
    expect(shrunk.warnings).toEqual([
      expect.stringMatching(/less than half of the previous backup 20261123T0900Z/),
    ]);
    const { backup: again } = setup();
    await again(OLD, randomBytes(10_000));
    expect((await again(NEW, randomBytes(5_000))).warnings).toEqual([]);
  });

  it('records the key fingerprint and seals the manifest with a MAC', async () => {
    const { ports, envelope, backup } = setup();
    const { manifest } = await backup(NEW);
    expect(manifest.encryption.keyFingerprint).toBe(envelope.keyFingerprint());
    expect(manifest.encryption.keyFingerprint).toMatch(/^[0-9a-f]{32}$/);
    const stored = await storedManifest(ports.primaryStore, manifest.backupId);
    expect(stored.authentication).toMatchObject({
      algorithm: 'HMAC-SHA256',
      mac: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(JSON.stringify(stored)).not.toContain(randomBytes(0).toString('hex') || 'never');
  });
});

describe('one run owns a backup id', () => {
  const request = (execution: string) => ({
    target: TARGET,
    backupId: backupIdFor(NEW),
    tiers: ['hourly' as const],
    scheduledAt: NEW,
    execution,
    database: 'keycloak',
    schema: 'public',
    policy,
  });
  /** Holds the first dump until released, so that a second run comes while it is still being written. */
  function holdFirstDump(tools: ReturnType<typeof setup>['tools']) {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const dump = tools.dump.bind(tools);
    const calls: string[] = [];
    tools.dump = async (dumpRequest, store) => {
      calls.push(dumpRequest.key);
      if (calls.length === 1) await gate;
      return dump(dumpRequest, store);
    };
    return { release, calls };
  }

  it('stops a second run of the same scheduled time with BackupHeldError while the first dumps, and keeps the first whole', async () => {
    const { ports, tools } = setup();
    const { release, calls } = holdFirstDump(tools);
    const first = dumpStep(ports, request('execution-A'));
    while (calls.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));

    const second = dumpStep(ports, request('execution-B'));
    await expect(second).rejects.toBeInstanceOf(BackupHeldError);
    await expect(second).rejects.toThrow(
      /held by another run of the same scheduled time \(execution execution-A/,
    );
    release();
    const { manifest } = await first;

    expect(calls).toHaveLength(1);
    expect(manifest.execution).toBe('execution-A');
    expect(ports.primaryStore.sha256(dumpKey(TARGET, manifest.backupId))).toBe(manifest.dump.storedSha256);
    expect(await ports.primaryStore.getJson(claimKey(TARGET, manifest.backupId))).toMatchObject({
      execution: 'execution-A',
    });
    // Once complete, the same scheduled time is reused, as before.
    expect((await dumpStep(ports, request('execution-C'))).reused).toBe(true);
  });

  it('gives the id up when its dump fails, so that a later run takes it', async () => {
    const { ports, tools } = setup();
    const dump = tools.dump.bind(tools);
    tools.dump = async () => {
      throw new Error('pg_dump died');
    };
    await expect(dumpStep(ports, request('execution-A'))).rejects.toThrow(/pg_dump died/);
    expect(ports.primaryStore.keys()).toEqual([]);
    tools.dump = dump;

    const { manifest } = await dumpStep(ports, request('execution-B'));
    expect(manifest.execution).toBe('execution-B');
  });

  it('lets a retried step of the holder replace its own dump that never got a manifest; others stay out', async () => {
    const { ports } = setup();
    const store = ports.primaryStore;
    const putJson = store.putJson.bind(store);
    let failManifest = true;
    store.putJson = async (key, value, options) => {
      if (failManifest && key === manifestKey(TARGET, backupIdFor(NEW))) {
        failManifest = false;
        throw new Error('connection reset writing the manifest');
      }
      return putJson(key, value, options);
    };
    await expect(dumpStep(ports, request('execution-A'))).rejects.toThrow(/connection reset/);
    const leftover = store.sha256(dumpKey(TARGET, backupIdFor(NEW)));
    await expect(dumpStep(ports, request('execution-B'))).rejects.toBeInstanceOf(BackupHeldError);
    expect(store.sha256(dumpKey(TARGET, backupIdFor(NEW)))).toBe(leftover);

    const { manifest } = await dumpStep(ports, request('execution-A'));
    expect(manifest.execution).toBe('execution-A');
    expect(store.sha256(dumpKey(TARGET, manifest.backupId))).toBe(manifest.dump.storedSha256);
    expect(manifest.dump.storedSha256).not.toBe(leftover);
  });
});

describe('the DR copy never replaces an object', () => {
  it('accepts a copy already there with the expected checksum (a retried copy) and writes no other', async () => {
    const { ports, backup } = setup();
    const { manifest } = await backup(NEW);
    const key = dumpKey(TARGET, manifest.backupId);
    const before = ports.drStore.sha256(key);

    await expect(copyToDrStep(ports, TARGET, manifest.backupId)).resolves.toMatchObject({ key });
    expect(ports.drStore.sha256(key)).toBe(before);
  });

  it('refuses and keeps another object at the copy key with ChecksumMismatchError', async () => {
    const { ports, tools } = setup();
    const backupId = await dumpOnly(ports, tools);
    const key = dumpKey(TARGET, backupId);
    ports.drStore.overwrite(key, 'someone else wrote this');

    const copied = copyToDrStep(ports, TARGET, backupId);
    await expect(copied).rejects.toBeInstanceOf(ChecksumMismatchError);
    await expect(copied).rejects.toThrow(/already holds another object .* left in place/);
    expect(ports.drStore.bytes(key)?.toString()).toBe('someone else wrote this');
  });
});

describe('copyObjectVerified', () => {
  it('lets the source go when the destination refuses without reading the body', async () => {
    const from = new MemoryObjectStore({ bucket: 'kb-primary' });
    const to = new MemoryObjectStore({ bucket: 'kb-dr' });
    // A large object's body, as a socket gives it: more than the stages hold, so it waits on the reader.
    let sent = 0;
    const source = new Readable({
      read() {
        sent += 1;
        this.push(sent > 64 ? null : Buffer.alloc(1 << 20));
      },
    });
    from.getStream = async () => source;
    to.putStream = async () => {
      throw new ConfigurationError('write of k to kb-dr failed: AccessDenied');
    };

    await expect(
      copyObjectVerified({ from, to, key: 'k', expectedSha256: '0'.repeat(64), retainUntil: NEW }),
    ).rejects.toBeInstanceOf(ConfigurationError);
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toBeLessThan(64);
    expect(source.destroyed).toBe(true);
  });
});

describe('a verification and a DR copy of the same backup at once', () => {
  /** Holds a step at a point: `reached` once it got there (its manifest read behind it), on until `open()`. */
  const gate = () => {
    let open!: () => void;
    let arrive!: () => void;
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    const reached = new Promise<void>((resolve) => {
      arrive = resolve;
    });
    const wait = () => {
      arrive();
      return opened;
    };
    return { open, reached, wait };
  };

  it('keeps the copy recorded when the verification, which read the manifest before it, ends after it', async () => {
    const { ports, tools } = setup();
    const backupId = await dumpOnly(ports, tools);
    const listing = gate();
    const listArchive = tools.listArchive.bind(tools);
    tools.listArchive = async (dump) => {
      await listing.wait();
      return listArchive(dump);
    };
    const verifying = verifyStep(ports, verifyRequest(backupId));
    await listing.reached;
    await copyToDrStep(ports, TARGET, backupId);
    listing.open();
    await verifying;

    const manifest = await readManifest(ports.primaryStore, ports.envelope, TARGET, backupId);
    expect(manifest.copies.map((c) => c.region)).toEqual(['eu-central-1']);
    expect(manifest.verification.map((v) => v.passed)).toEqual([true]);
  });

  it('keeps the verification recorded when the copy, which read the manifest before it, ends after it, in both regions', async () => {
    const { ports, tools } = setup();
    const backupId = await dumpOnly(ports, tools);
    const copying = gate();
    const copyObject = ports.copyObject;
    ports.copyObject = async (request) => {
      await copying.wait();
      return copyObject(request);
    };
    const copied = copyToDrStep(ports, TARGET, backupId);
    await copying.reached;
    await verifyStep(ports, verifyRequest(backupId));
    copying.open();
    await copied;

    for (const store of [ports.primaryStore, ports.drStore]) {
      const manifest = await readManifest(store, ports.envelope, TARGET, backupId);
      expect(manifest.verification.map((v) => v.passed)).toEqual([true]);
      expect(manifest.copies.map((c) => c.region)).toEqual(['eu-central-1']);
    }
  });
});

describe('updateManifest', () => {
  it("gives up with TransientError after 5 lost races, leaving the other writers' manifest as they wrote it", async () => {
    const { ports, backup } = setup();
    const { manifest } = await backup(NEW);
    const key = manifestKey(TARGET, manifest.backupId);
    const store = ports.primaryStore;
    let races = 0;
    const putJson = store.putJson.bind(store);
    // Another writer gets in between every read and write of ours (the same manifest, other bytes each time).
    store.putJson = async (k, value, options) => {
      if (options?.ifMatch !== undefined) {
        races += 1;
        store.overwrite(k, `${JSON.stringify(await store.getJson(k))}${' '.repeat(races)}\n`);
      }
      return putJson(k, value, options);
    };
    const failure = await updateManifest(store, ports.envelope, TARGET, manifest.backupId, (m) =>
      withVerification(m, {
        at: NEW.toISOString(),
        level: 'archive',
        passed: true,
        checks: [],
        durationMs: 1,
      }),
    ).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(TransientError);
    expect((failure as Error).message).toMatch(/changed under 5 attempts to update it/);
    expect(races).toBe(5);
    const stored = await readManifest(store, ports.envelope, TARGET, manifest.backupId);
    expect(stored.verification).toEqual([]);
    // The fifth other write is the one stored.
    expect(store.bytes(key)?.toString()).toMatch(/\} {5}\n$/);
  });
});

describe('authenticated manifests', () => {
  it('refuses a manifest pointed at an older dump with its checksum edited: verify and restore', async () => {
    const { ports, backup, tools } = setup();
    const old = (await backup(OLD)).manifest;
    const current = (await backup(NEW)).manifest;
    for (const store of [ports.primaryStore, ports.drStore]) {
      const stored = await storedManifest(store, current.backupId);
      const dump = stored.dump as Manifest['dump'];
      store.overwrite(
        manifestKey(TARGET, current.backupId),
        JSON.stringify({
          ...stored,
          dump: { ...dump, key: old.dump.key, storedSha256: old.dump.storedSha256 },
        }),
      );
    }
    const verify = verifyRequest(current.backupId, { fallback: true });
    await expect(verifyStep(ports, verify)).rejects.toBeInstanceOf(ManifestTamperedError);
    await expect(restoreStep(ports, restoreRequest(current.backupId))).rejects.toBeInstanceOf(
      ManifestTamperedError,
    );
    expect(tools.restores).toEqual([]);
  });

  it('refuses an edited manifest (retain-until moved) with ManifestTamperedError', async () => {
    const { ports, backup } = setup();
    const { manifest } = await backup(NEW);
    const stored = await storedManifest(ports.primaryStore, manifest.backupId);
    ports.primaryStore.overwrite(
      manifestKey(TARGET, manifest.backupId),
      JSON.stringify({ ...stored, retainUntil: '2020-01-01T00:00:00.000Z' }),
    );
    await expect(readManifest(ports.primaryStore, ports.envelope, TARGET, manifest.backupId)).rejects.toThrow(
      /MAC differs from the manifest's content/,
    );
  });

  it("refuses an older backup's whole manifest copied over a newer one (a rollback)", async () => {
    const { ports, backup } = setup();
    const old = (await backup(OLD)).manifest;
    const current = (await backup(NEW)).manifest;
    ports.primaryStore.overwrite(
      manifestKey(TARGET, current.backupId),
      ports.primaryStore.bytes(manifestKey(TARGET, old.backupId))!,
    );
    await expect(restoreStep(ports, restoreRequest(current.backupId))).rejects.toThrow(ManifestTamperedError);
    await expect(restoreStep(ports, restoreRequest(current.backupId))).rejects.toThrow(
      /names backup 20261123T0900Z of keycloak, not 20261123T1000Z/,
    );
  });

  it('reads the dump at the key derived from (target, backupId): a trusted unauthenticated manifest pointing elsewhere is refused, and the derived dump fails its checksum', async () => {
    const { ports, backup, tools } = setup();
    const old = (await backup(OLD)).manifest;
    const current = (await backup(NEW)).manifest;
    const stored = await storedManifest(ports.primaryStore, current.backupId);
    const { authentication: _dropped, ...unsealed } = stored;
    const dump = stored.dump as Manifest['dump'];
    // Pointed at the older dump: refused by name even when unauthenticated manifests are trusted.
    ports.primaryStore.overwrite(
      manifestKey(TARGET, current.backupId),
      JSON.stringify({
        ...unsealed,
        dump: { ...dump, key: old.dump.key, storedSha256: old.dump.storedSha256 },
      }),
    );
    await expect(
      restoreStep(ports, restoreRequest(current.backupId, { trustUnauthenticated: true })),
    ).rejects.toBeInstanceOf(ManifestTamperedError);
    // Only the checksum edited: the derived key's dump does not match it.
    ports.primaryStore.overwrite(
      manifestKey(TARGET, current.backupId),
      JSON.stringify({ ...unsealed, dump: { ...dump, storedSha256: old.dump.storedSha256 } }),
    );
    await expect(
      verifyStep(ports, verifyRequest(current.backupId, { trustUnauthenticated: true })),
    ).rejects.toMatchObject({ name: 'VerificationFailedError', cause: expect.any(ChecksumMismatchError) });
    // The older dump's bytes copied over the newer dump's key, checksum edited to match: its context is another backup's.
    ports.primaryStore.overwrite(dumpKey(TARGET, current.backupId), ports.primaryStore.bytes(old.dump.key)!);
    await expect(
      verifyStep(ports, verifyRequest(current.backupId, { trustUnauthenticated: true })),
    ).rejects.toMatchObject({
      failedChecks: ['decrypt'],
      message: expect.stringMatching(/context does not match/),
    });
    expect(tools.restores).toEqual([]);
  });

  it('refuses a manifest without a MAC unless asked to trust it, and seals it once verified', async () => {
    const { ports, backup } = setup();
    const { manifest } = await backup(NEW);
    const { authentication: _dropped, ...unsealed } = await storedManifest(
      ports.primaryStore,
      manifest.backupId,
    );
    ports.primaryStore.overwrite(manifestKey(TARGET, manifest.backupId), JSON.stringify(unsealed));
    await expect(
      restoreStep(ports, restoreRequest(manifest.backupId, { fromDr: false })),
    ).rejects.toBeInstanceOf(ManifestUnauthenticatedError);
    const entry = (await readCatalog(ports.primaryStore, ports.envelope, TARGET)).at(-1);
    expect(entry?.parsed).toBeUndefined();
    expect(entry?.problem).toMatch(/^ManifestUnauthenticatedError/);

    await verifyStep(ports, verifyRequest(manifest.backupId, { trustUnauthenticated: true }));
    const sealed = await readManifest(ports.primaryStore, ports.envelope, TARGET, manifest.backupId);
    expect(sealed.verification.at(-1)?.passed).toBe(true);
  });

  it("names both fingerprints when the key in use is not the backup's key", async () => {
    const { ports, backup } = setup();
    const { manifest } = await backup(NEW);
    const other = testEnvelope();
    const error = await readManifest(ports.primaryStore, other, TARGET, manifest.backupId).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KeyMismatchError);
    expect((error as Error).message).toContain(manifest.encryption.keyFingerprint);
    expect((error as Error).message).toContain(other.keyFingerprint());
  });
});

describe('routing around a damaged copy', () => {
  it('restores from the DR copy when the primary manifest is missing, and says so', async () => {
    const { ports, backup, tools } = setup();
    const { manifest } = await backup(NEW);
    await ports.primaryStore.deleteObjects([manifestKey(TARGET, manifest.backupId)]);
    const restored = await restoreStep(ports, restoreRequest(manifest.backupId));
    expect(restored.region).toBe('eu-central-1');
    expect(restored.fallbackReason).toMatch(/kb-primary .*ObjectNotFoundError/);
    expect(tools.restores.map((r) => r.dump.store.bucket)).toEqual(['kb-dr']);
  });

  it('restores from the DR copy when the primary manifest is truncated', async () => {
    const { ports, backup } = setup();
    const { manifest } = await backup(NEW);
    ports.primaryStore.overwrite(manifestKey(TARGET, manifest.backupId), '{"manifestVersion": 1, "backu');
    const restored = await restoreStep(ports, restoreRequest(manifest.backupId));
    expect(restored.region).toBe('eu-central-1');
    expect(restored.fallbackReason).toMatch(/ManifestInvalidError: manifest .* is unreadable/);
  });

  it('restores from the DR copy when the primary dump fails its checksum, after emptying the database again', async () => {
    const { ports, backup, tools } = setup();
    const { manifest } = await backup(NEW);
    const key = dumpKey(TARGET, manifest.backupId);
    const damaged = ports.primaryStore.bytes(key)!;
    damaged.writeUInt8(damaged.readUInt8(damaged.length - 1) ^ 1, damaged.length - 1);
    ports.primaryStore.overwrite(key, damaged);
    let resets = 0;
    await expect(restoreStep(ports, restoreRequest(manifest.backupId))).rejects.toThrow();
    const restored = await restoreStep(
      ports,
      restoreRequest(manifest.backupId, { resetDatabase: async () => void resets++ }),
    );
    expect(resets).toBe(1);
    expect(restored.region).toBe('eu-central-1');
    expect(tools.restores.at(-1)?.dump.store.bucket).toBe('kb-dr');
  });

  it('verifies the DR copy when the primary dump is missing, with fallback, and records the failure in the primary', async () => {
    const { ports, backup } = setup();
    const { manifest } = await backup(NEW);
    await ports.primaryStore.deleteObjects([dumpKey(TARGET, manifest.backupId)]);
    const request = verifyRequest(manifest.backupId);
    await expect(verifyStep(ports, request)).rejects.toThrow(/dump-object \(object .* not found/);
    const verified = await verifyStep(ports, { ...request, fallback: true });
    expect(verified).toMatchObject({ passed: true, region: 'eu-central-1' });
    expect(verified.fallbackReason).toMatch(/ObjectNotFoundError/);
    const primary = await readManifest(ports.primaryStore, ports.envelope, TARGET, manifest.backupId);
    expect(primary.verification.at(-1)?.passed).toBe(false);
  });

  it('does not route around a tampered manifest: it is an attack to report', async () => {
    const { ports, backup } = setup();
    const { manifest } = await backup(NEW);
    const stored = await storedManifest(ports.primaryStore, manifest.backupId);
    ports.primaryStore.overwrite(
      manifestKey(TARGET, manifest.backupId),
      JSON.stringify({ ...stored, tiers: ['monthly'] }),
    );
    await expect(restoreStep(ports, restoreRequest(manifest.backupId))).rejects.toBeInstanceOf(
      ManifestTamperedError,
    );
    await expect(
      restoreStep(ports, restoreRequest(manifest.backupId, { fromDr: true })),
    ).resolves.toMatchObject({
      region: 'eu-central-1',
    });
    expect(ManifestInvalidError).toBeDefined();
  });
});
