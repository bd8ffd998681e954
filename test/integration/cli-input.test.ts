// Bad input to the real command: one clear line, exit code 2, and nothing started (no state folder, no alert).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findPgBinaries } from '../../functions/adapters/postgres/binaries.js';

const bin = fileURLToPath(new URL('../../bin/keycloak-backup.mjs', import.meta.url));
// Never created: every case here must be refused before the local stack starts.
const stateDir = path.join(tmpdir(), `kb-never-started-${process.pid}`);

/** The command's environment without any KB_ setting of the machine running the tests, plus `settings`. */
function environment(settings: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('KB_')));
  return { ...env, ...settings };
}

function cli(
  args: string[],
  settings: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, '--state-dir', stateDir, ...args],
      { timeout: 110_000, env: environment(settings) },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const hour = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();
const inAnHour = iso(Date.now() + hour);
const monthAgo = iso(Date.now() - 33 * 24 * hour);

interface Case {
  name: string;
  args: string[];
  settings?: Record<string, string>;
  /** The error line, as the user reads it. */
  line: RegExp;
}

const cases: Case[] = [
  // commander's own argument errors
  { name: 'an unknown command', args: ['frobnicate'], line: /^error: unknown command 'frobnicate'/ },
  { name: 'an unknown option', args: ['backup', '--tme', 'x'], line: /^error: unknown option '--tme'/ },
  {
    name: 'a missing backup id',
    args: ['verify'],
    line: /^error: missing required argument 'backupId'/,
  },
  {
    name: 'restore without --to',
    args: ['restore', '20261122T2300Z'],
    line: /^error: required option '--to <url>' not specified/,
  },
  {
    name: 'a --jobs that is not a number',
    args: ['restore', '20261122T2300Z', '--to', 'postgres://127.0.0.1/x', '--jobs', 'two'],
    line: /^error: option '--jobs <n>' argument 'two' is invalid\. expected a whole number/,
  },
  {
    name: 'a negative --keep-minutes',
    args: ['drill', '--keep-minutes=-3'],
    line: /^error: option '--keep-minutes <n>' argument '-3' is invalid/,
  },
  {
    name: 'an option missing its value',
    args: ['backup', '--time'],
    line: /^error: option '--time <iso>' argument missing/,
  },
  // backup: times
  {
    name: 'a --time that is not a time',
    args: ['backup', '--time', 'yesterday'],
    line: /^error: time "yesterday" is not an ISO 8601 time with a zone/,
  },
  {
    name: 'a --time without a zone',
    args: ['backup', '--time', '2026-11-22T23:00:00'],
    line: /^error: time "2026-11-22T23:00:00" is not an ISO 8601 time with a zone/,
  },
  {
    name: 'a --time that does not exist (30 February)',
    args: ['backup', '--time', '2026-02-30T00:00:00Z'],
    line: /^error: time "2026-02-30T00:00:00Z" is not a valid date/,
  },
  {
    name: 'a --time in the future',
    args: ['backup', '--time', inAnHour],
    line: /^error: scheduled time .* is in the future/,
  },
  {
    name: 'a --time in 1900',
    args: ['backup', '--time', '1900-01-01T00:00:00Z'],
    line: /^error: scheduled time 1900-01-01T00:00:00\.000Z is older than the hourly retention \(48 h\).*--replay/,
  },
  {
    name: 'a month-old --time (it would label today’s data as a month old)',
    args: ['backup', '--time', monthAgo],
    line: /^error: scheduled time .* is older than the hourly retention \(48 h\)/,
  },
  {
    name: 'a replay of 1900, past the retention of its tiers',
    args: ['backup', '--time', '1900-01-01T00:00:00Z', '--replay'],
    line: /^error: scheduled time 1900-01-01T00:00:00\.000Z is past the retention of its tiers/,
  },
  { name: '--replay without --time', args: ['backup', '--replay'], line: /^error: --replay needs --time/ },
  // backup: the user's own database
  {
    name: 'a --database-url that is not a URL',
    args: ['backup', '--database-url', 'db.example.com'],
    line: /^error: --database-url is not a URL/,
  },
  {
    name: 'a --database-url of another kind of database',
    args: ['backup', '--database-url', 'mysql://127.0.0.1/keycloak'],
    line: /^error: --database-url is not a postgres:\/\/ URL/,
  },
  {
    name: 'a --database-url without a database',
    args: ['backup', '--database-url', 'postgres://127.0.0.1:5432/'],
    line: /^error: --database-url names no database/,
  },
  {
    name: 'a --target-name that is a path',
    args: ['backup', '--database-url', 'postgres://127.0.0.1/keycloak', '--target-name', '../'],
    line: /^error: --target-name "\.\.\/" is not a target name/,
  },
  {
    name: '--replica-url without --database-url',
    args: ['backup', '--replica-url', 'postgres://127.0.0.1/keycloak'],
    line: /^error: --replica-url needs --database-url/,
  },
  {
    name: '--target-name without --database-url',
    args: ['backup', '--target-name', 'prod'],
    line: /^error: --target-name needs --database-url/,
  },
  // verify, restore, drill, pitr
  {
    name: 'a backup id that is a word',
    args: ['verify', 'yesterday'],
    line: /^error: "yesterday" is not a backup id/,
  },
  {
    name: 'a backup id of a day that does not exist',
    args: ['verify', '20261399T2300Z'],
    line: /^error: "20261399T2300Z" is not a backup id/,
  },
  {
    name: 'restore of a malformed backup id',
    args: ['restore', 'latest', '--to', 'postgres://127.0.0.1/x'],
    line: /^error: "latest" is not a backup id/,
  },
  {
    name: 'restore --to that is not a postgres URL',
    args: ['restore', '20261122T2300Z', '--to', 'mysql://127.0.0.1/x'],
    line: /^error: --to must be a postgres:\/\/ URL/,
  },
  {
    name: 'a drill --time that is not a time',
    args: ['drill', '--time', 'noon'],
    line: /^error: time "noon" is not an ISO 8601 time with a zone/,
  },
  {
    name: 'a pitr --name with capitals',
    args: ['pitr', '--time', 'latest', '--name', 'Before_Incident'],
    line: /^error: --name must be a lower-case name/,
  },
  {
    name: 'pitr without --time',
    args: ['pitr', '--name', 'before-incident'],
    line: /^error: --time is required/,
  },
  // configuration, for every command
  {
    name: 'a compression pg_dump does not know',
    args: ['list'],
    settings: { KB_DUMP_COMPRESSION: 'brotli' },
    line: /^error: invalid configuration: KB_DUMP_COMPRESSION: /,
  },
  {
    name: 'a negative retention',
    args: ['backup'],
    settings: { KB_RETAIN_DAILY_DAYS: '-1' },
    line: /^error: invalid configuration: KB_RETAIN_DAILY_DAYS: Number must be greater than 0/,
  },
  {
    name: 'a zero retention',
    args: ['list'],
    settings: { KB_RETAIN_HOURLY_HOURS: '0' },
    line: /^error: invalid configuration: KB_RETAIN_HOURLY_HOURS: Number must be greater than 0/,
  },
  {
    name: 'a runtime in capitals',
    args: ['list'],
    settings: { KB_RUNTIME: 'AWS' },
    line: /^error: invalid configuration: KB_RUNTIME: Invalid enum value\. Expected 'aws' \| 'local', received 'AWS'/,
  },
  {
    name: 'an unknown log level',
    args: ['backup'],
    settings: { KB_LOG_LEVEL: 'LOUD' },
    line: /^error: invalid configuration: KB_LOG_LEVEL: Invalid enum value/,
  },
  {
    name: 'targets that are not JSON',
    args: ['backup'],
    settings: { KB_TARGETS: 'not json' },
    line: /^error: invalid configuration: KB_TARGETS: expected a JSON array/,
  },
  {
    name: 'a misspelled setting',
    args: ['list'],
    settings: { KB_RETAIN_DAYLY_DAYS: '3' },
    line: /^error: invalid configuration: KB_RETAIN_DAYLY_DAYS: not a setting \(did you mean KB_RETAIN_DAILY_DAYS\?\)/,
  },
  {
    name: 'a daily hour past 23',
    args: ['backup'],
    settings: { KB_DAILY_HOUR_UTC: '24' },
    line: /^error: invalid configuration: KB_DAILY_HOUR_UTC: Number must be less than or equal to 23/,
  },
  {
    name: 'a weekday past Saturday',
    args: ['drill'],
    settings: { KB_WEEKLY_DAY_UTC: '7' },
    line: /^error: invalid configuration: KB_WEEKLY_DAY_UTC: Number must be less than or equal to 6/,
  },
  {
    name: 'a tier that does not exist',
    args: ['list'],
    settings: { KB_SNAPSHOT_TIERS: 'daily,yearly' },
    line: /^error: invalid configuration: KB_SNAPSHOT_TIERS.1: Invalid enum value/,
  },
];

describe('bad input to keycloak-backup', () => {
  it.each(cases)('refuses $name with exit code 2 and one line, before anything starts', async (c) => {
    const result = await cli(c.args, c.settings);

    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr.split('\n')[0]).toMatch(c.line);
    expect(result.stdout).toBe('');
    expect(existsSync(stateDir)).toBe(false);
  });

  it('refuses a compression the installed pg_dump lacks, naming the variable', async () => {
    const pgDump = await (await findPgBinaries()).version('pg_dump');
    // lz4 and zstd need pg_dump 16; a newer pg_dump has them all, and gzip levels end at 9 everywhere.
    const [setting, line] =
      pgDump.major < 16
        ? ['zstd:3', /^error: KB_DUMP_COMPRESSION=zstd:3 needs pg_dump 16 or later; this pg_dump is \d+/]
        : ['gzip:12', /^error: KB_DUMP_COMPRESSION=gzip:12: gzip levels are 0-9/];

    const result = await cli(['backup'], { KB_DUMP_COMPRESSION: setting });

    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr.split('\n')[0]).toMatch(line);
    expect(existsSync(stateDir)).toBe(false);
  });

  it('shows the help with exit code 0 when asked', async () => {
    const result = await cli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: keycloak-backup');
  });
});
