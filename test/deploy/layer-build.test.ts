// layer/build.sh's choices, through its --plan mode (no Docker and no network here): which major a server gets,
// what is refused, and that the build installs bison and flex (PostgreSQL >= 17 tarballs need them).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './package-template.js';

const SCRIPT = path.join(ROOT, 'layer', 'build.sh');

function plan(env: Record<string, string>): {
  status: number | null;
  plan: Record<string, string>;
  stderr: string;
} {
  const run = spawnSync('bash', [SCRIPT, '--plan'], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  const lines = run.stdout
    .split('\n')
    .filter((line) => line.includes(': '))
    .map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]);
  return { status: run.status, plan: Object.fromEntries(lines), stderr: run.stderr };
}

describe('the pg_dump layer build', () => {
  it.each([
    ['15.10', '15'],
    ['16.6', '16'],
    ['17.2', '17'],
    ['18.1', '18'],
  ])('builds the layer of the server major for a %s server, with bison and flex', (server, major) => {
    const { status, plan: built } = plan({ SERVER_VERSION: server });

    expect(status).toBe(0);
    expect(built['layer major']).toBe(major);
    expect(built['layer name']).toBe(`keycloak-backup-postgresql-${major}`);
    expect(built.packages?.split(' ')).toEqual(expect.arrayContaining(['bison', 'flex', 'openssl-devel']));
  });

  it('installs exactly the packages the plan names', () => {
    const script = readFileSync(SCRIPT, 'utf8');
    const installs = script
      .split('\n')
      .filter((line) => /^\s*dnf install/.test(line) && !/coreutils|patchelf/.test(line));
    expect(installs).toEqual(['  dnf install -y -q $BUILD_PACKAGES $LIBRARY_PACKAGES >/dev/null']);
  });

  it('takes a newer client for an older server, and pins the release when asked', () => {
    const { status, plan: built } = plan({ SERVER_VERSION: '16.4', PG_MAJOR: '17', PG_VERSION: '17.2' });

    expect(status).toBe(0);
    expect(built['layer major']).toBe('17');
    expect(built.zip).toBe('postgresql-client-17.2-al2023-arm64.zip');
  });

  it.each([
    [{ SERVER_VERSION: '17.2', PG_MAJOR: '16' }, /older than the server's major 17: pg_dump 16 refuses/],
    [
      { SERVER_VERSION: '14.9' },
      /PG_MAJOR 14 is not supported: the layer is built for PostgreSQL 15 16 17 18/,
    ],
    [{ PG_MAJOR: '19' }, /PG_MAJOR 19 is not supported/],
    [{ PG_MAJOR: '18', PG_VERSION: '17.2' }, /PG_VERSION 17.2 is not a 18 release/],
    [{ SERVER_VERSION: 'latest' }, /SERVER_VERSION latest is not a PostgreSQL version/],
    [{}, /set SERVER_VERSION .* or PG_MAJOR/],
  ])('refuses %o with exit code 2 and the reason', (env, reason) => {
    const { status, stderr } = plan(env as Record<string, string>);

    expect(status).toBe(2);
    expect(stderr).toMatch(reason);
  });
});
