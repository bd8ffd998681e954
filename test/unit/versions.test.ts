import { describe, expect, it } from 'vitest';
import { VersionMismatchError } from '../../functions/core/errors.js';
import {
  assertPgDumpCanDump,
  assertPgRestoreCanRead,
  parseArchiveVersions,
  parsePgVersion,
  parseServerVersionNum,
} from '../../functions/core/versions.js';

describe('reading PostgreSQL versions', () => {
  it('reads the version from --version output of Debian packages', () => {
    expect(parsePgVersion('pg_dump (PostgreSQL) 15.18 (Debian 15.18-1.pgdg120+1)\n')).toEqual({
      major: 15,
      full: '15.18',
    });
    expect(parsePgVersion('postgres (PostgreSQL) 17.4')).toEqual({ major: 17, full: '17.4' });
  });

  it('reads server_version with its distribution suffix', () => {
    expect(parsePgVersion('16.9 (Ubuntu 16.9-0ubuntu0.24.04.1)')).toEqual({ major: 16, full: '16.9' });
  });

  it('keeps two-part majors before PostgreSQL 10 and development suffixes', () => {
    expect(parsePgVersion('pg_dump (PostgreSQL) 9.6.24')).toEqual({ major: 9.6, full: '9.6.24' });
    expect(parsePgVersion('psql (PostgreSQL) 18devel')).toEqual({ major: 18, full: '18devel' });
    expect(parsePgVersion('pg_restore (PostgreSQL) 16beta2')).toEqual({ major: 16, full: '16beta2' });
  });

  it('refuses text without a version', () => {
    expect(() => parsePgVersion('command not found')).toThrow(VersionMismatchError);
  });

  it('reads server_version_num for old and new numbering', () => {
    expect(parseServerVersionNum('150018')).toEqual({ major: 15, full: '15.18' });
    expect(parseServerVersionNum(90624)).toEqual({ major: 9.6, full: '9.6.24' });
    expect(() => parseServerVersionNum('abc')).toThrow(VersionMismatchError);
  });

  it('reads the versions recorded in an archive listing', () => {
    const listing = [
      ';',
      '; Archive created at 2026-11-22 23:00:04 UTC',
      ';     dbname: keycloak',
      ';     Dump Version: 1.15-0',
      ';     Dumped from database version: 15.18 (Debian 15.18-1.pgdg120+1)',
      ';     Dumped by pg_dump version: 17.4 (Debian 17.4-1.pgdg120+2)',
      ';',
    ].join('\n');
    expect(parseArchiveVersions(listing)).toEqual({
      dumpedFrom: { major: 15, full: '15.18' },
      dumpedBy: { major: 17, full: '17.4' },
    });
    expect(parseArchiveVersions('; nothing here')).toEqual({});
  });
});

describe('client version rules', () => {
  const v = (text: string) => parsePgVersion(text);

  it('lets pg_dump dump a server of the same or an older major version', () => {
    expect(() => assertPgDumpCanDump({ pgDump: v('15.2'), server: v('15.18') })).not.toThrow();
    expect(() => assertPgDumpCanDump({ pgDump: v('17.4'), server: v('15.18') })).not.toThrow();
    expect(() => assertPgDumpCanDump({ pgDump: v('10.1'), server: v('9.6.24') })).not.toThrow();
  });

  it('refuses pg_dump older than the server, naming both versions and the fix', () => {
    let error: unknown;
    try {
      assertPgDumpCanDump({ pgDump: v('pg_dump (PostgreSQL) 14.10'), server: v('16.3') });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(VersionMismatchError);
    const mismatch = error as VersionMismatchError;
    expect(mismatch.name).toBe('VersionMismatchError');
    expect(mismatch.message).toContain('14.10');
    expect(mismatch.message).toContain('16.3');
    expect(mismatch.hint).toContain('postgresql-client-16');
    expect(mismatch.hint).toContain('KB_PG_BIN_DIR');
  });

  it('refuses pg_restore older than the pg_dump that wrote the archive', () => {
    expect(() => assertPgRestoreCanRead({ pgRestore: v('15.18'), archiveDumpedBy: v('15.2') })).not.toThrow();
    expect(() => assertPgRestoreCanRead({ pgRestore: v('15.18'), archiveDumpedBy: v('17.4') })).toThrow(
      /pg_restore 15\.18 is older than the pg_dump 17\.4/,
    );
    expect(() => assertPgRestoreCanRead({ pgRestore: v('9.6.24'), archiveDumpedBy: v('10.0') })).toThrow(
      VersionMismatchError,
    );
  });
});
