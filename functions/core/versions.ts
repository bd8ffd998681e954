// PostgreSQL version rules: parse version strings and refuse client programs older than what they must read.
import { VersionMismatchError } from './errors.js';

/** A PostgreSQL version. `major` is 15 for 15.18, and 9.6 for 9.6.24 (before 10 the major had two parts). */
export interface PgVersion {
  major: number;
  /** The version as printed, e.g. `15.18` or `17devel`. */
  full: string;
}

// "pg_dump (PostgreSQL) 15.18 (Debian 15.18-1.pgdg120+1)", "15.18 (Debian ...)", "9.6.24", "17devel", "16beta2", "18rc1"
const VERSION = /(?:^|[\s(])(\d+)(?:\.(\d+))?(?:\.(\d+))?(devel|beta\d*|rc\d*|alpha\d*)?(?=$|[\s),])/;

/** Reads the version out of `X --version` output or `SHOW server_version`. */
export function parsePgVersion(text: string): PgVersion {
  const line = text.trim().split('\n')[0] ?? '';
  // Prefer the number right after "(PostgreSQL)", so a program name with digits cannot be mistaken for it.
  const afterProduct = /\(PostgreSQL\)\s+(.*)$/.exec(line)?.[1];
  const match = VERSION.exec(afterProduct ?? line);
  if (!match) throw new VersionMismatchError(`cannot read a PostgreSQL version from "${line.slice(0, 120)}"`);
  const first = Number(match[1]);
  const second = match[2] === undefined ? undefined : Number(match[2]);
  const major = first >= 10 || second === undefined ? first : Number(`${first}.${second}`);
  const full =
    [match[1], match[2], match[3]].filter((part) => part !== undefined).join('.') + (match[4] ?? '');
  return { major, full };
}

/** Reads `SHOW server_version_num` (e.g. 150018, 90624). */
export function parseServerVersionNum(text: string | number): PgVersion {
  const num = Number(text);
  if (!Number.isInteger(num) || num < 90000) {
    throw new VersionMismatchError(`cannot read a PostgreSQL version from server_version_num "${text}"`);
  }
  if (num >= 100000) {
    const major = Math.floor(num / 10000);
    return { major, full: `${major}.${num % 10000}` };
  }
  const major = Math.floor(num / 10000);
  const minor = Math.floor(num / 100) % 100;
  return { major: Number(`${major}.${minor}`), full: `${major}.${minor}.${num % 100}` };
}

/** What `pg_restore --list` says about the archive: the versions of the server and of pg_dump that wrote it. */
export interface ArchiveVersions {
  dumpedFrom?: PgVersion;
  dumpedBy?: PgVersion;
}

/** Parses the header comments of `pg_restore --list` ("; Dumped by pg_dump version: 15.18 ..."). */
export function parseArchiveVersions(listOutput: string): ArchiveVersions {
  const read = (label: string): PgVersion | undefined => {
    const line = new RegExp(`^;\\s*${label}:\\s*(.+)$`, 'm').exec(listOutput)?.[1];
    return line === undefined ? undefined : parsePgVersion(line);
  };
  const result: ArchiveVersions = {};
  const dumpedFrom = read('Dumped from database version');
  const dumpedBy = read('Dumped by pg_dump version');
  if (dumpedFrom) result.dumpedFrom = dumpedFrom;
  if (dumpedBy) result.dumpedBy = dumpedBy;
  return result;
}

const majorName = (major: number) => (Number.isInteger(major) ? String(major) : major.toFixed(1));

/** pg_dump refuses (or worse, misreads) a server of a newer major version: it must be at least the server's. */
export function assertPgDumpCanDump(versions: { pgDump: PgVersion; server: PgVersion }): void {
  const { pgDump, server } = versions;
  if (pgDump.major >= server.major) return;
  const need = majorName(server.major);
  throw new VersionMismatchError(
    `pg_dump ${pgDump.full} is older than the server (PostgreSQL ${server.full}): pg_dump must be at least major version ${need}`,
    {
      hint: `install the PostgreSQL ${need} client (e.g. apt-get install postgresql-client-${need}) and point KB_PG_BIN_DIR at its bin directory; on Lambda, use the pg_dump layer built for PostgreSQL ${need}`,
    },
  );
}

/** pg_restore cannot read an archive written by a newer pg_dump: it must be at least that pg_dump's major version. */
export function assertPgRestoreCanRead(versions: { pgRestore: PgVersion; archiveDumpedBy: PgVersion }): void {
  const { pgRestore, archiveDumpedBy } = versions;
  if (pgRestore.major >= archiveDumpedBy.major) return;
  const need = majorName(archiveDumpedBy.major);
  throw new VersionMismatchError(
    `pg_restore ${pgRestore.full} is older than the pg_dump ${archiveDumpedBy.full} that wrote the archive: pg_restore must be at least major version ${need}`,
    {
      hint: `install the PostgreSQL ${need} client (e.g. apt-get install postgresql-client-${need}) and point KB_PG_BIN_DIR at its bin directory`,
    },
  );
}
