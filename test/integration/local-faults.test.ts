// Faults and attacks on the real local stack: who may connect to its clusters and to the drill copies, a broken WAL
// chain under a point-in-time restore.
import { readdir, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WalArchiveGapError } from '../../functions/core/errors.js';
import type { Services } from '../../functions/platform/services.js';
import { type LocalStack, PASSWORD_FILE } from '../../local/stack.js';
import { runCli } from '../support/cli.js';
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
const started: string[] = [];

function withPassword(url: string, password: string): string {
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
}

/** The rules the server loaded: auth methods, and any line it could not read. */
async function hbaMethods(url: string): Promise<string[]> {
  const rows = await query<{ auth_method: string | null; error: string | null }>(
    url,
    'select auth_method, error from pg_hba_file_rules',
  );
  return rows.map((row) => row.error ?? row.auth_method ?? '?');
}

beforeAll(async () => {
  context = await startPitrStack('kb-faults-');
  ({ stateDir, stack, services } = context);
  await takeBaseBackup(context);
  await query(stack.primaryUrl, 'create table marker (name text)');
  await query(stack.primaryUrl, "insert into marker values ('after the base backup')");
});

afterAll(() => removePitrStack(context, started));

describe('local servers admit only the stack', () => {
  it('runs primary and replica with SCRAM only and refuses a wrong password', async () => {
    for (const url of [stack.primaryUrl, stack.replicaUrl]) {
      const methods = await hbaMethods(url);
      expect(methods.length).toBeGreaterThan(0);
      expect(new Set(methods)).toEqual(new Set(['scram-sha-256']));
      await expect(query(withPassword(url, 'guessed'), 'select 1')).rejects.toMatchObject({ code: '28P01' });
    }
    const passFile = await stat(path.join(stateDir, PASSWORD_FILE));
    expect(passFile.mode & 0o777).toBe(0o600);
  });

  it('gives a point-in-time copy the same rule, whatever its source said', async () => {
    started.push('auth-copy');
    const copy = await services.pitr.restore({ target: TARGET, instanceId: 'auth-copy', time: 'latest' });
    const url = copy.databaseUrl!;

    expect(new Set(await hbaMethods(url))).toEqual(new Set(['scram-sha-256']));
    await expect(query(withPassword(url, 'guessed'), 'select 1')).rejects.toMatchObject({ code: '28P01' });
    expect(await query(url, 'select name from marker')).toEqual([{ name: 'after the base backup' }]);
    await services.pitr.teardown('auth-copy');
  });
});

describe('a broken WAL chain', () => {
  it('reports the time a recovery actually reached', async () => {
    const before = new Date();
    started.push('reach-latest');
    const copy = await services.pitr.restore({ target: TARGET, instanceId: 'reach-latest', time: 'latest' });
    expect(copy.reachedTime?.getTime()).toBeGreaterThanOrEqual(before.getTime());
    expect((await services.pitr.describe('reach-latest')).reachedTime).toEqual(copy.reachedTime);
    await services.pitr.teardown('reach-latest');
  });

  it('refuses latest naming the missing segment; a time before the gap still restores', async () => {
    // A segment per change; the one holding 'three' is removed, 'after the gap' follows in the next.
    const archive = stack.walArchiveDir;
    const pause = () => new Promise((resolve) => setTimeout(resolve, 1100));
    const changeAndSwitch = async (name: string) => {
      await query(stack.primaryUrl, `insert into marker values ('${name}')`);
      const [row] = await query<{ segment: string }>(
        stack.primaryUrl,
        'select pg_walfile_name(pg_switch_wal()) as segment',
      );
      return row!.segment;
    };
    await changeAndSwitch('one');
    await pause();
    const beforeGap = new Date();
    await pause();
    await changeAndSwitch('two');
    const removed = await changeAndSwitch('three');
    await changeAndSwitch('after the gap');
    for (let waited = 0; !(await readdir(archive)).includes(removed) && waited < 30_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await rename(path.join(archive, removed), path.join(stateDir, removed));

    started.push('gap-latest');
    const refused = services.pitr.restore({ target: TARGET, instanceId: 'gap-latest', time: 'latest' });
    await expect(refused).rejects.toThrow(WalArchiveGapError);
    await expect(refused).rejects.toThrow(`misses segment ${removed}`);
    expect((await services.pitr.describe('gap-latest')).status).toBe('gone');

    started.push('gap-before');
    const copy = await services.pitr.restore({ target: TARGET, instanceId: 'gap-before', time: beforeGap });
    expect(copy.reachedTime).toEqual(beforeGap);
    expect(await query(copy.databaseUrl!, 'select name from marker order by name')).toEqual(
      ['after the base backup', 'one'].map((name) => ({ name })),
    );
    await services.pitr.teardown('gap-before');
  });

  it('fails the drill on a gap, with an alert, and tears down', async () => {
    await stack.stop();
    const drill = await runCli({ stateDir, timeoutMs: 300_000 }, ['drill', '--latest']);

    expect(drill.code, drill.stdout + drill.stderr).toBe(1);
    expect(drill.stdout + drill.stderr).toContain('WalArchiveGapError');
    expect(drill.stdout + drill.stderr).not.toContain('PASSED');
    const outbox = await readFile(path.join(stateDir, 'outbox.jsonl'), 'utf8');
    expect(outbox).toContain('misses segment');
    const drills = await readdir(path.join(stateDir, 'drills')).catch(() => []);
    expect(drills.filter((name) => name.startsWith('drill-'))).toEqual([]);
  });
});
