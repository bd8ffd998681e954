// Where things live in a bucket: the only place that builds or parses object keys.
import { timeOfBackupId } from './schedule.js';

export const DUMP_FILE = 'dump.pgdump.enc';
export const MANIFEST_FILE = 'manifest.json';
export const CLAIM_FILE = 'claim.json';
export const DRILL_REPORT_FILE = 'drill-report.json';
export const DRILL_KEY_CHANGES_FILE = 'key-changes.json';
export const RUN_REPORT_FILE = 'run-report.json';

/** `<target>/<yyyy>/<mm>/<dd>/<backupId>/` */
export function backupPrefix(target: string, backupId: string): string {
  return `${dayPrefix(target, timeOfBackupId(backupId))}${backupId}/`;
}

/** `<target>/<yyyy>/<mm>/<dd>/`: every backup of that day. */
export function dayPrefix(target: string, day: Date): string {
  const iso = day.toISOString();
  return `${target}/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/`;
}

export function dumpKey(target: string, backupId: string): string {
  return `${backupPrefix(target, backupId)}${DUMP_FILE}`;
}

export function manifestKey(target: string, backupId: string): string {
  return `${backupPrefix(target, backupId)}${MANIFEST_FILE}`;
}

/** Written first and create-only by the one run that makes the backup (core/backup-claim.ts). */
export function claimKey(target: string, backupId: string): string {
  return `${backupPrefix(target, backupId)}${CLAIM_FILE}`;
}

/** Drill reports sit beside the backups, under the target, by drill id. */
export function drillReportKey(target: string, drillId: string): string {
  return `${drillReportsPrefix(target)}${drillId}/${DRILL_REPORT_FILE}`;
}

/** The realm-key changes a drill found, written by its verification and folded into its report. */
export function drillKeyChangesKey(target: string, drillId: string): string {
  return `${drillReportsPrefix(target)}${drillId}/${DRILL_KEY_CHANGES_FILE}`;
}

export function drillReportsPrefix(target: string): string {
  return `${target}/drills/`;
}

/** Reports of backup runs that failed somewhere, beside the backups, by backup id. */
export function runReportKey(target: string, backupId: string): string {
  return `${runReportsPrefix(target)}${backupId}/${RUN_REPORT_FILE}`;
}

export function runReportsPrefix(target: string): string {
  return `${target}/runs/`;
}

/** Everything stored for a target's backups (not its drills or snapshots). */
export function targetPrefix(target: string): string {
  return `${target}/`;
}

export interface ParsedBackupKey {
  target: string;
  backupId: string;
  file: string;
}

const KEY =
  /^([a-z0-9][a-z0-9-]*)\/(\d{4})\/(\d{2})\/(\d{2})\/(\d{8}T\d{4}(?:\d{2})?Z(?:-\d{1,3})?)\/([^/]+)$/;

/** Reads a key back into its parts; undefined for keys that are not backup files. */
export function parseBackupKey(key: string): ParsedBackupKey | undefined {
  const m = KEY.exec(key);
  if (!m) return undefined;
  return { target: m[1]!, backupId: m[5]!, file: m[6]! };
}
