// Interrupted means stopped and cleaned: the real CLI is spawned and sent SIGINT/SIGTERM mid-command; what it started
// must be gone, it must say so, and the next run must find nothing to clean. Credentials never ride in argv.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalSnapshotEngine } from '../../functions/adapters/local/local-snapshots.js';
import { readOutbox } from '../../functions/adapters/local/outbox-notifier.js';
import { isProcessRunning } from '../../functions/adapters/local/postgres-cluster.js';
import { parseConfig } from '../../functions/platform/config.js';
import { localServices } from '../../functions/platform/local-services.js';
import { createLogger } from '../../functions/platform/logger.js';
import { startLocalStack } from '../../local/stack.js';
import { takeBaseBackup } from '../support/pitr-stack.js';

const bin = fileURLToPath(new URL('../../bin/keycloak-backup.mjs', import.meta.url));
let stateDir: string;

interface Run {
  child: ChildProcess;
  output: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: string[]): Run {
  const child = spawn(process.execPath, [bin, '--state-dir', stateDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (output += text));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, done };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Running (not zombie) processes working in or started on something under the state folder. */
async function processesUnderStateDir(): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    if (!isProcessRunning(Number(entry))) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
    if (cwd.startsWith(stateDir) || cmdline.some((arg) => arg.includes(stateDir))) {
      found.push(`${entry} ${cmdline.join(' ')}`);
    }
  }
  return found;
}

const drillFolders = async () =>
  (await readdir(path.join(stateDir, 'drills')).catch(() => [] as string[])).filter((n) =>
    n.startsWith('drill-'),
  );

/** Starts `drill --latest` and waits until its restored copy runs (the copy's record names its pid). */
async function drillWithCopyRunning(): Promise<Run> {
  const run = start(['drill', '--latest']);
  await until('the drill copy to run', async () => {
    for (const name of await drillFolders()) {
      const record = await readFile(path.join(stateDir, 'drills', name, 'instance.json'), 'utf8').catch(
        () => '',
      );
      if (/"pid": \d+/.test(record)) return true;
    }
    return false;
  });
  return run;
}

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'kb-interrupt-'));
  const stack = await startLocalStack({ stateDir, seed: true, durable: false, handleSignals: false });
  try {
    const services = await localServices(parseConfig(stack.env()), createLogger({ silent: true }));
    await takeBaseBackup({ snapshots: services.snapshots as LocalSnapshotEngine });
  } finally {
    await stack.stop();
  }
});

afterAll(async () => {
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe('an interrupted command', () => {
  it('stops the drill copy, the servers and itself on Ctrl-C (SIGINT) and says so', async () => {
    const run = await drillWithCopyRunning();

    run.child.kill('SIGINT');
    const end = await run.done;

    expect(end.signal ?? end.code, run.output()).toBe('SIGINT');
    expect(run.output()).toContain('interrupted (SIGINT)');
    expect(run.output()).toMatch(/stopped and removed the restored copy drill-/);
    expect(run.output()).toContain('stopped the local stack');
    expect(await drillFolders()).toEqual([]);
    expect(await processesUnderStateDir(), run.output()).toEqual([]);
    expect(await readdir(stateDir)).not.toContain('stack.lock');
    // The user's Ctrl-C is no incident: the drill's failure while it stops is said, never paged.
    expect(await readOutbox(path.join(stateDir, 'outbox.jsonl'))).toEqual([]);
  });

  it('stops a backup on SIGTERM: no dump program, no server, no spool or upload left', async () => {
    const run = start(['backup']);
    await until('the dump to start', async () => /DumpDatabase/.test(run.output()));

    run.child.kill('SIGTERM');
    const end = await run.done;

    expect(end.signal ?? end.code, run.output()).toBe('SIGTERM');
    expect(run.output()).toContain('interrupted (SIGTERM)');
    expect(await processesUnderStateDir(), run.output()).toEqual([]);
    expect(await readdir(path.join(stateDir, 'tmp')).catch(() => [])).toEqual([]);
    for (const bucket of ['kb-primary', 'kb-dr']) {
      const uploads = path.join(stateDir, 's3', bucket, '._S3rver_uploads');
      expect(await readdir(uploads).catch(() => [])).toEqual([]);
    }
  });

  it('finds nothing to clean at the next run, and sweeps what a killed run left', async () => {
    const logs: string[] = [];
    const open = () =>
      startLocalStack({ stateDir, durable: false, handleSignals: false, log: (line) => logs.push(line) });
    const clean = await open();
    await clean.stop();
    expect(logs.filter((line) => line.includes('interrupted'))).toEqual([]);

    // What a SIGKILLed run leaves: a plaintext spool, an upload in progress, a drill copy's folder.
    await mkdir(path.join(stateDir, 'tmp'), { recursive: true });
    await writeFile(path.join(stateDir, 'tmp', 'restore-x.pgdump'), Buffer.alloc(4096, 1));
    const upload = path.join(stateDir, 's3', 'kb-primary', '._S3rver_uploads', 'leftover-upload');
    await mkdir(upload, { recursive: true });
    await writeFile(path.join(upload, '1'), 'part');
    await mkdir(path.join(stateDir, 'drills', 'drill-keycloak-20261201t000000z', 'data'), {
      recursive: true,
    });

    const swept = await open();
    await swept.stop();

    const said = logs.filter((line) => line.includes('an earlier run was interrupted'));
    expect(said.join('\n')).toContain('restore-x.pgdump');
    expect(said.join('\n')).toContain('leftover-upload');
    expect(said.join('\n')).toContain('drill-keycloak-20261201t000000z');
    expect(await readdir(path.join(stateDir, 'tmp'))).toEqual([]);
    expect(await drillFolders()).toEqual([]);
  });
});

describe('an interrupted command with a hung server', () => {
  it('names the replica that did not stop instead of saying "stopped the local stack"', async () => {
    const run = await drillWithCopyRunning();
    const pidFile = path.join(stateDir, 'replica', 'data', 'postmaster.pid');
    const replicaPid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
    process.kill(replicaPid, 'SIGSTOP');
    try {
      run.child.kill('SIGINT');
      const end = await run.done;

      expect(end.signal ?? end.code, run.output()).toBe('SIGINT');
      expect(run.output()).toContain(
        `the local stack did not stop: the local replica cluster (pid ${replicaPid}) did not stop`,
      );
      expect(run.output()).not.toContain('stopped the local stack');
    } finally {
      // Continued, the replica finds the SIGQUIT the failed stop sent and exits; the next start recovers it.
      process.kill(replicaPid, 'SIGCONT');
      for (let i = 0; i < 200 && isProcessRunning(replicaPid); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    expect(isProcessRunning(replicaPid)).toBe(false);
  }, 300_000);
});

describe('credentials', () => {
  it('refuses a password in a database URL argument and names PGPASSWORD', async () => {
    const run = start(['backup', '--database-url', 'postgres://kc:s3cret@127.0.0.1:5/keycloak']);
    const end = await run.done;
    expect(end.code, run.output()).toBe(2);
    expect(run.output()).toContain('carries a password');
    expect(run.output()).toContain('PGPASSWORD');
    expect(run.output()).not.toContain('s3cret');
  });
});
