import { zstdCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compressionArguments, dumpCompression } from '../../functions/adapters/postgres/pg-dump.js';
import { lastLines, toolConnection } from '../../functions/adapters/postgres/pg-process.js';
import { parseArchiveHeader } from '../../functions/adapters/postgres/pg-restore.js';
import { ConfigurationError, RestoreFailedError } from '../../functions/core/errors.js';

/** A custom-format archive header as pg_dump writes it (pg_backup_archiver.c WriteHead). */
function archiveHeader(options: {
  minor: number;
  pgDump: string;
  server?: string;
  database?: string;
}): Buffer {
  const intSize = 4;
  const bytes: number[] = [...Buffer.from('PGDMP'), 1, options.minor, 0, intSize, 8, 1];
  const int = (value: number) => {
    bytes.push(value < 0 ? 1 : 0);
    const abs = Math.abs(value);
    for (let i = 0; i < intSize; i++) bytes.push((abs >>> (8 * i)) & 0xff);
  };
  const str = (text: string) => {
    const data = Buffer.from(text);
    int(data.length);
    bytes.push(...data);
  };
  if (options.minor >= 15) bytes.push(1);
  else int(-1);
  for (const part of [29, 27, 22, 23, 10, 126, 0]) int(part);
  str(options.database ?? 'keycloak');
  str(options.server ?? options.pgDump);
  str(options.pgDump);
  bytes.push(...Buffer.from('...table of contents follows...'));
  return Buffer.from(bytes);
}

describe('parseArchiveHeader', () => {
  it('reads the database and the versions of a PostgreSQL 15 archive (format 1.14)', () => {
    const header = parseArchiveHeader(
      archiveHeader({
        minor: 14,
        pgDump: '15.18 (Debian 15.18-0+deb12u1)',
        server: '15.18 (Debian 15.18-0+deb12u1)',
      }),
    );
    expect(header).toMatchObject({
      formatVersion: '1.14',
      database: 'keycloak',
      serverVersion: '15.18 (Debian 15.18-0+deb12u1)',
    });
    expect(header.pgDumpVersion.major).toBe(15);
  });

  it('reads a PostgreSQL 17 archive, whose compression is one byte (format 1.16)', () => {
    const header = parseArchiveHeader(archiveHeader({ minor: 16, pgDump: '17.4', server: '16.2' }));
    expect(header.pgDumpVersion).toEqual({ major: 17, full: '17.4' });
    expect(header.serverVersion).toBe('16.2');
  });

  it('refuses bytes that are not a custom-format archive', () => {
    expect(() => parseArchiveHeader(Buffer.from('-- PostgreSQL database dump\n'))).toThrow(
      RestoreFailedError,
    );
    const cut = archiveHeader({ minor: 14, pgDump: '15.18' }).subarray(0, 40);
    expect(() => parseArchiveHeader(cut)).toThrow(/cut short/);
  });
});

describe('dumpCompression', () => {
  it('has pg_dump write no compression and the pipeline compress with zstd by default', () => {
    expect(dumpCompression('pipeline', 3, 15)).toEqual({
      spec: 'zstd:3',
      compressedBy: 'pipeline',
      pgDumpArgs: ['-Z', '0'],
      zstdLevel: 3,
    });
    expect(dumpCompression('pipeline', 9, 17).pgDumpArgs).toEqual(['--compress=none']);
  });

  it("keeps pg_dump's own settings and their spelling", () => {
    expect(dumpCompression('gzip', 3, 15)).toEqual({
      spec: 'gzip:6',
      compressedBy: 'pg_dump',
      pgDumpArgs: ['-Z', '6'],
    });
    expect(dumpCompression('zstd:5', 3, 16)).toMatchObject({ spec: 'zstd:5', compressedBy: 'pg_dump' });
    expect(dumpCompression('none', 3, 15)).toMatchObject({ spec: 'none', compressedBy: 'pg_dump' });
  });

  it('refuses a zstd level it cannot use, naming the setting', () => {
    for (const level of [0, 20, 2.5, undefined]) {
      expect(() => dumpCompression('pipeline', level, 15)).toThrow(/KB_DUMP_ZSTD_LEVEL/);
    }
  });
});

describe('parseArchiveHeader on a zstd frame', () => {
  it('says that the dump is compressed and what to do', () => {
    const failure = (() => {
      try {
        parseArchiveHeader(zstdCompressSync(archiveHeader({ minor: 14, pgDump: '15.18' })));
      } catch (error) {
        return error;
      }
    })();
    expect(failure).toBeInstanceOf(RestoreFailedError);
    expect((failure as RestoreFailedError).message).toMatch(/zstd frame/);
    expect((failure as RestoreFailedError).hint).toMatch(/zstd -d/);
  });
});

describe('compressionArguments', () => {
  it.each([
    ['gzip:6', 15, 'gzip:6', ['-Z', '6']],
    ['gzip', 15, 'gzip:6', ['-Z', '6']],
    ['3', 15, 'gzip:3', ['-Z', '3']],
    ['none', 15, 'none', ['-Z', '0']],
    ['none', 16, 'none', ['--compress=none']],
    ['zstd:3', 16, 'zstd:3', ['--compress=zstd:3']],
    ['lz4', 17, 'lz4', ['--compress=lz4']],
  ])('turns %s for pg_dump %i into %s', (setting, major, spec, args) => {
    expect(compressionArguments(setting, major)).toEqual({ spec, args });
  });

  it('refuses lz4 and zstd for a pg_dump older than 16, saying what to do', () => {
    const failure = (() => {
      try {
        compressionArguments('zstd:3', 15);
      } catch (error) {
        return error;
      }
    })();
    expect(failure).toBeInstanceOf(ConfigurationError);
    expect((failure as ConfigurationError).message).toContain('16');
    expect((failure as ConfigurationError).hint).toMatch(/gzip/);
  });

  it('refuses settings that are not compression settings', () => {
    expect(() => compressionArguments('brotli', 17)).toThrow(ConfigurationError);
    expect(() => compressionArguments('gzip:12', 17)).toThrow(ConfigurationError);
  });
});

describe('toolConnection', () => {
  it('keeps the password off the command line and hands it over in PGPASSWORD', () => {
    const { dbname, env } = toolConnection(
      'postgres://backup:s%40cret@db.internal:5432/keycloak?sslmode=verify-full',
    );
    expect(dbname).not.toContain('cret');
    expect(dbname).toContain('backup@db.internal:5432/keycloak');
    expect(dbname).toContain('sslmode=verify-full');
    expect(env.PGPASSWORD).toBe('s@cret');
  });

  it('refuses something that is not a postgres URL', () => {
    expect(() => toolConnection('host=db password=x')).toThrow(ConfigurationError);
    expect(() => toolConnection('mysql://db/x')).toThrow(ConfigurationError);
  });
});

describe('lastLines', () => {
  it('keeps the end of a long stderr', () => {
    const text = Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\n');
    expect(lastLines(text, 2)).toBe('line 48\nline 49');
  });
});
