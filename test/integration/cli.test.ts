// The keycloak-backup command as a user runs it: backup, list, verify, restore, and a corrupted byte caught.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpKey } from '../../functions/core/layout.js';
import { backupIdFor } from '../../functions/core/schedule.js';
import { readManifest } from '../../functions/core/stored-backups.js';
import type { Services } from '../../functions/platform/services.js';
import { runCli, withStoredStack } from '../support/cli.js';

let stateDir: string;

const cli = (...args: string[]) => runCli({ stateDir, timeoutMs: 240_000 }, args);

/** Opens the stack the CLI left behind (stopped) to look at or tamper with what it stored. */
const withStored = <T>(use: (services: Services, primaryUrl: string) => Promise<T>) =>
  withStoredStack(stateDir, use);

const now = new Date();
const time = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - 1, 5));
const backupId = backupIdFor(time);

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'kb-cli-'));
});

afterAll(async () => {
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe('keycloak-backup command', () => {
  it('backs up the seeded database and lists the backup as verified in both regions', async () => {
    const backup = await cli('backup', '--time', time.toISOString());
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stdout).toContain(`keycloak ${backupId}`);

    const list = await cli('list', '--json');
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as {
      backupId: string;
      verified: boolean;
      regions: string[];
      tiers: string[];
    }[];
    expect(listed).toEqual([
      expect.objectContaining({
        backupId,
        verified: true,
        tiers: ['hourly'],
        regions: ['eu-west-1', 'eu-central-1'],
      }),
    ]);

    // The same scheduled time again, same source: the backup is reused, and the line says nothing was dumped.
    const again = await cli('backup', '--time', time.toISOString());
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(
      new RegExp(`keycloak ${backupId}: already backed up at \\S+ from the same source; nothing was dumped`),
    );
    expect(again.stdout).not.toMatch(/dumped in/);
    const relisted = JSON.parse((await cli('list', '--json')).stdout) as { backupId: string }[];
    expect(relisted.map((b) => b.backupId)).toEqual([backupId]);
  });

  it('restores into a new database with the per-table counts of the source', async () => {
    const primaryUrl = await withStored(async (_services, url) => url);
    const target = new URL(primaryUrl);
    target.pathname = '/keycloak_restored';

    const restore = await cli('restore', backupId, '--to', target.toString(), '--jobs', '2');

    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).toMatch(/source-counts-exact\s+pass/);
    expect(restore.stdout).toMatch(/signing-keys\s+pass/);
    expect(restore.stdout).toContain(`realm keys before the restore: restoring backup ${backupId}`);
    expect(restore.stdout).toContain('compared with the live database (replica): no key changes');
    expect(restore.stdout).toContain(
      'kept the database exactly as at the restore point (no key is reintroduced)',
    );
    const again = await cli('restore', backupId, '--to', target.toString());
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already has \d+ tables/);
  });

  it('gives the realm-key report as one JSON document on stdout with --json', async () => {
    const primaryUrl = await withStored(async (_services, url) => url);
    const target = new URL(primaryUrl);
    target.pathname = '/keycloak_restored_json';

    const restore = await cli(
      'restore',
      backupId,
      '--to',
      target.toString(),
      '--json',
      '--disable-reintroduced-keys',
    );

    expect(restore.code, restore.stderr).toBe(0);
    const { realmKeys } = JSON.parse(restore.stdout) as {
      realmKeys: {
        before: { keyCount: number };
        after: { decidedBy: string };
        decision: { disabled: unknown[] };
      };
    };
    expect(realmKeys.before.keyCount).toBe(8);
    expect(realmKeys.after.decidedBy).toBe('live');
    expect(realmKeys.decision).toMatchObject({ disableReintroduced: true, disabled: [] });
    expect(restore.stderr).toMatch(/signing-keys\s+pass/);
  }, 240_000);

  it('fails verify, naming the checksum, after one byte of the stored dump is flipped', async () => {
    const ok = await cli('verify', backupId);
    expect(ok.code, ok.stderr).toBe(0);

    await withStored(async (services) => {
      const key = dumpKey('keycloak', backupId);
      const chunks: Buffer[] = [];
      for await (const chunk of await services.primaryStore.getStream(key)) chunks.push(chunk as Buffer);
      const bytes = Buffer.concat(chunks);
      bytes[bytes.length >> 1]! ^= 0x01;
      await services.primaryStore.putStream(key, Readable.from([bytes]));
    });
    const bad = await cli('verify', backupId);

    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('verification failed: checksum (the copy in eu-west-1)');
    expect(bad.stderr).toContain('the copy in eu-central-1 verified instead');
    const manifest = await withStored((services) =>
      readManifest(services.primaryStore, services.envelope, 'keycloak', backupId),
    );
    expect(manifest.verification.at(-1)).toMatchObject({ passed: false });
  });

  it('refuses a malformed backup id with a hint and exit code 2', async () => {
    const result = await cli('verify', 'yesterday');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('"yesterday" is not a backup id');
  });
});
