// What the command says is what it did, on a real local stack through the real CLI: a drill kept for inspection is
// kept that long, a refused drill is said and not paged, pitr never reports an existing instance as newly recovered,
// and list shows only the copies that are really stored, in the region that holds them.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOutbox } from '../../functions/adapters/local/outbox-notifier.js';
import { dumpKey, manifestKey } from '../../functions/core/layout.js';
import { backupIdFor } from '../../functions/core/schedule.js';
import { readManifest } from '../../functions/core/stored-backups.js';
import { parseConfig } from '../../functions/platform/config.js';
import { localServices } from '../../functions/platform/local-services.js';
import { createLogger } from '../../functions/platform/logger.js';
import type { Services } from '../../functions/platform/services.js';
import { startLocalStack } from '../../local/stack.js';
import { runCli, withStoredStack } from '../support/cli.js';
import { backupMustSucceed, lastMidnight } from '../support/stack.js';
import { tableContents } from '../support/table-contents.js';

const bin = fileURLToPath(new URL('../../bin/keycloak-backup.mjs', import.meta.url));
let stateDir: string;
const cli = (...args: string[]) => runCli({ stateDir, timeoutMs: 300_000 }, args);
const outbox = () => readOutbox(path.join(stateDir, 'outbox.jsonl'));

/** Opens the stack the CLI left behind (stopped) to look at or change what it stored. */
const withStored = <T>(use: (services: Services, primaryUrl: string) => Promise<T>) =>
  withStoredStack(stateDir, use);

const backupId = backupIdFor(lastMidnight());

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'kb-truth-'));
  // The daily run: a dump in both regions and the base backup point-in-time restores start from.
  const stack = await startLocalStack({ stateDir, seed: true, durable: false, handleSignals: false });
  try {
    await backupMustSucceed(await localServices(parseConfig(stack.env()), createLogger({ silent: true })));
  } finally {
    await stack.stop();
  }
}, 600_000);

afterAll(async () => {
  if (!stateDir) return;
  await cli('pitr', '--drop', 'kept-copy').catch(() => undefined);
  await rm(stateDir, { recursive: true, force: true });
});

describe('drill', () => {
  it('keeps the drill copy for --keep-minutes, running, and tears it down after', async () => {
    const child: ChildProcess = spawn(
      process.execPath,
      [bin, '--state-dir', stateDir, 'drill', '--latest', '--keep-minutes', '1'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    let keptAt: number | undefined;
    const onData = (text: string) => {
      output += text;
      if (keptAt === undefined && /keeping drill-\S+ for inspection until /.test(output)) keptAt = Date.now();
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.stderr!.setEncoding('utf8').on('data', onData);
    const done = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));

    const deadline = Date.now() + 300_000;
    while (keptAt === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(keptAt, output).toBeDefined();
    // Well into the minute, the copy still runs (locally it was torn down about a second after this line).
    await new Promise((r) => setTimeout(r, 45_000));
    const drills = (await readdir(path.join(stateDir, 'drills'))).filter((n) => n.startsWith('drill-'));
    expect(drills, output).toHaveLength(1);
    const record = await readFile(path.join(stateDir, 'drills', drills[0]!, 'instance.json'), 'utf8');
    expect(record).toMatch(/"pid": \d+/);
    expect(output).not.toContain('TeardownDrill');

    const code = await done;
    const keptMs = Date.now() - keptAt!;
    expect(code, output).toBe(0);
    expect(keptMs).toBeGreaterThanOrEqual(55_000);
    expect(output).toMatch(/instance drill-\S+ torn down/);
    expect(output).toContain('drill PASSED');
    expect((await readdir(path.join(stateDir, 'drills'))).filter((n) => n.startsWith('drill-'))).toEqual([]);
  }, 420_000);

  it('refuses a time outside the window with exit 2 and one line, and pages nobody', async () => {
    const before = (await outbox()).length;
    const time = new Date(Date.now() + 3_600_000).toISOString();

    const result = await cli('drill', '--time', time);

    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toContain(
      `drill refused, nothing was started: restore time ${time} is in the future`,
    );
    expect((await outbox()).length).toBe(before);
  }, 300_000);
});

describe('pitr', () => {
  it('refuses a --name that exists instead of reporting the old instance as recovered to the new time', async () => {
    const first = await cli('pitr', '--time', 'latest', '--name', 'kept-copy');
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('recovered keycloak to the latest archived change');

    const asked = new Date(Date.now() - 1_000).toISOString();
    const again = await cli('pitr', '--time', asked, '--name', 'kept-copy');

    expect(again.code, again.stderr).toBe(2);
    // The stack starts first (it knows the instances): its lines come before the error.
    expect(again.stderr.split('\n').find((line) => line.startsWith('error:'))).toMatch(
      new RegExp(
        `^error: a recovered instance named kept-copy already exists \\(available, recovered \\S+\\): it was not recovered to ${asked.replaceAll('.', '\\.')}`,
      ),
    );
    expect(again.stderr).toContain('keycloak-backup pitr --drop kept-copy');
    expect(again.stdout).not.toContain('recovered keycloak to');

    const dropped = await cli('pitr', '--drop', 'kept-copy');
    expect(dropped.code, dropped.stderr).toBe(0);
  }, 600_000);
});

describe('settings', () => {
  it("dumps with the user's KB_DUMP_COMPRESSION, not the stack's default, and says so in the manifest", async () => {
    process.env.KB_DUMP_COMPRESSION = 'none';
    let result: Awaited<ReturnType<typeof cli>>;
    try {
      result = await cli('backup');
    } finally {
      delete process.env.KB_DUMP_COMPRESSION;
    }
    expect(result.code, result.stderr).toBe(0);
    const id = /keycloak (\d{8}T\d{6}Z(-\d+)?):/.exec(result.stdout)?.[1];
    expect(id, result.stdout).toBeDefined();

    const manifest = await withStored((services) =>
      readManifest(services.primaryStore, services.envelope, 'keycloak', id!),
    );
    expect(manifest.dump.compression).toBe('none');
    expect(manifest.dump.compressedBy).toBe('pg_dump');
  }, 300_000);
});

describe('list', () => {
  interface Listed {
    backupId: string;
    verified: boolean | null;
    regions: string[];
    storedBytes: number;
    problem?: string;
  }
  const listed = async (...args: string[]) => {
    const result = await cli('list', '--json', ...args);
    expect(result.code, result.stderr).toBe(0);
    return (JSON.parse(result.stdout) as Listed[]).find((b) => b.backupId === backupId);
  };

  it('shows a backup whose primary copy is gone in the DR region alone, verified there', async () => {
    expect(await listed()).toMatchObject({ verified: true, regions: ['eu-west-1', 'eu-central-1'] });

    await withStored((services) =>
      services.primaryStore.deleteObjects([dumpKey('keycloak', backupId), manifestKey('keycloak', backupId)]),
    );

    expect(await listed()).toMatchObject({ verified: true, regions: ['eu-central-1'] });
    expect(await listed('--from-dr')).toMatchObject({ verified: true, regions: ['eu-central-1'] });

    // And restores from there with nothing but its id: the target is found in the DR region.
    const to = new URL(await withStored(async (_services, primaryUrl) => primaryUrl));
    to.pathname = '/keycloak_from_dr';
    const restore = await cli('restore', backupId, '--from-dr', '--to', to.toString());
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).toMatch(/source-counts-exact\s+pass/);
  }, 300_000);

  it('with the primary bucket gone, lists the backups the DR region holds as only there and restores one by its id alone', async () => {
    // What a lost primary region leaves: every object of the primary bucket deleted.
    const { primaryUrl, source } = await withStored(async (services, url) => {
      const keys: string[] = [];
      for await (const object of services.primaryStore.list('')) keys.push(object.key);
      expect(keys.length).toBeGreaterThan(0);
      await services.primaryStore.deleteObjects(keys);
      return { primaryUrl: url, source: await tableContents(url) };
    });

    const table = await cli('list');
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).not.toContain('no backups yet');
    const rows = table.stdout.split('\n').filter((line) => /^\d{8}T\d{4,6}Z/.test(line));
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const row of rows) expect(row).toMatch(/\syes\s+eu-central-1\s/);
    expect(table.stdout).toContain(
      `${rows.length} backups are only in the DR region (eu-central-1): restore one with keycloak-backup restore <backup> --from-dr --to URL`,
    );

    // The bucket itself gone: the primary bucket configured does not exist.
    process.env.KB_PRIMARY_BUCKET = 'kb-primary-gone';
    try {
      const gone = await cli('list', '--json');
      expect(gone.code, gone.stderr).toBe(0);
      expect(gone.stderr).toContain('warning: kb-primary-gone in eu-west-1 cannot be read');
      const all = JSON.parse(gone.stdout) as Listed[];
      expect(all).toHaveLength(rows.length);
      for (const backup of all) expect(backup).toMatchObject({ verified: true, regions: ['eu-central-1'] });

      // The newest backup (the settings test's manual one) restores whole from the DR region, by its id alone.
      const to = new URL(primaryUrl);
      to.pathname = '/keycloak_dr_only';
      const restore = await cli('restore', all[0]!.backupId, '--from-dr', '--to', to.toString());
      expect(restore.code, restore.stderr).toBe(0);
      expect(restore.stdout).toMatch(/source-counts-exact\s+pass/);
      expect(await withStored(() => tableContents(to.toString()))).toEqual(source);
    } finally {
      delete process.env.KB_PRIMARY_BUCKET;
    }
  }, 600_000);

  it('does not show a backup whose dump was deleted as verified, and names the missing dump', async () => {
    await withStored((services) => services.drStore.deleteObjects([dumpKey('keycloak', backupId)]));

    const backup = await listed();
    expect(backup).toMatchObject({ verified: false, regions: [], storedBytes: 0 });
    expect(backup?.problem).toContain(
      `dump ${dumpKey('keycloak', backupId)} missing or not of its recorded size`,
    );

    const table = await cli('list');
    const row = table.stdout.split('\n').find((line) => line.startsWith(backupId));
    expect(row).toMatch(/\s0 B\s+NO\s+none\s/);
    expect(table.stdout).toContain('problems:');
  }, 300_000);
});
