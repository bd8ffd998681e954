// The local stack never deletes what holds data on its own: a truncated or outdated state file is an error with a
// repair, bad state folders are refused; the CLI is run as a user runs it.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../functions/core/errors.js';
import { startLocalStack } from '../../local/stack.js';

const bin = fileURLToPath(new URL('../../bin/keycloak-backup.mjs', import.meta.url));

function cli(
  args: string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { timeout: options.timeoutMs ?? 120_000, cwd: options.cwd ?? process.cwd() },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr, ms: Date.now() - started });
      },
    );
  });
}

let stateDir: string;
const open = () => startLocalStack({ stateDir, durable: false, handleSignals: false });
const walFiles = async () => (await readdir(path.join(stateDir, 'wal-archive'))).length;

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'kb-state-'));
  const stack = await open();
  try {
    await stack.primary.query('create table kept (id int)', [], 'keycloak');
    await stack.primary.query('insert into kept values (42)', [], 'keycloak');
    await stack.primary.query('select pg_switch_wal()');
    await stack.waitForReplay();
  } finally {
    await stack.stop();
  }
});

afterAll(async () => {
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe('an unusable state file', () => {
  it('stops `list` with exit 2 and a repair, and deletes nothing', async () => {
    const before = await walFiles();
    const file = path.join(stateDir, 'stack.json');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.slice(0, 10));

    const list = await cli(['--state-dir', stateDir, 'list']);

    expect(list.code, list.stderr).toBe(2);
    expect(list.stderr).toContain('stack.json cannot be used');
    expect(list.stderr).toContain('repair-state');
    expect(list.stderr).not.toContain('clearing');
    expect(await walFiles()).toBe(before);
    expect(await readdir(path.join(stateDir, 'primary', 'data'))).toContain('PG_VERSION');
    expect(await readdir(path.join(stateDir, 'replica', 'data'))).toContain('PG_VERSION');

    const repair = await cli(['--state-dir', stateDir, 'repair-state']);
    expect(repair.code, repair.stderr).toBe(0);
    const stack = await open();
    try {
      expect(await stack.primary.query('select id from kept', [], 'keycloak')).toEqual([{ id: 42 }]);
    } finally {
      await stack.stop();
    }
  });

  it('refuses a state file of another version and a missing one beside clusters, keeping them', async () => {
    const file = path.join(stateDir, 'stack.json');
    const state = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const before = await walFiles();

    await writeFile(file, JSON.stringify({ ...state, version: 99 }));
    await expect(open()).rejects.toThrow(/state version 99/);
    await rm(file);
    await expect(open()).rejects.toThrow(ConfigurationError);
    await expect(open()).rejects.toThrow(/no state file/);

    expect(await walFiles()).toBe(before);
    await writeFile(file, JSON.stringify(state));
    const stack = await open();
    try {
      expect(await stack.primary.query('select id from kept', [], 'keycloak')).toEqual([{ id: 42 }]);
    } finally {
      await stack.stop();
    }
  });

  it('moves the S3 server to another port when the remembered one is taken (EADDRINUSE)', async () => {
    const { s3Port } = JSON.parse(await readFile(path.join(stateDir, 'stack.json'), 'utf8')) as {
      s3Port: number;
    };
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(s3Port, '127.0.0.1', resolve));
    try {
      const stack = await open();
      try {
        expect(stack.s3Endpoint).not.toBe(`http://127.0.0.1:${s3Port}`);
      } finally {
        await stack.stop();
      }
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('is cleared only by an explicit reset-local --yes', async () => {
    const refused = await cli(['--state-dir', stateDir, 'reset-local']);
    expect(refused.code).toBe(2);
    expect(await readdir(stateDir)).toContain('primary');

    const reset = await cli(['--state-dir', stateDir, 'reset-local', '--yes']);

    expect(reset.code, reset.stderr).toBe(0);
    const left = await readdir(stateDir);
    expect(left).not.toContain('primary');
    expect(left).not.toContain('wal-archive');
    expect(left).toContain('local.key');
  });
});

describe('a bad state folder', () => {
  it('refuses --state-dir "" instead of building a stack in the current folder', async () => {
    const cwd = await mkdtemp(path.join(tmpdir(), 'kb-cwd-'));
    try {
      const result = await cli(['--state-dir', '', 'list'], { cwd });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain('state folder is empty');
      expect(await readdir(cwd)).toEqual([]);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });

  it('refuses --state-dir /proc/x at once instead of spinning', async () => {
    const result = await cli(['--state-dir', '/proc/kb-x', 'list'], { timeoutMs: 60_000 });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('/proc/kb-x cannot be made');
    expect(result.ms).toBeLessThan(30_000);
  });
});
