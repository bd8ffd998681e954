// Local PointInTimeEngine: newest base backup before the target, unpacked into a local cluster that replays the
// primary's WAL archive and is promoted (the cluster, its user and its processes are postgres-cluster.ts's).
import { constants } from 'node:fs';
import {
  access,
  appendFile,
  chmod,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { assertRestorable, isDrillId, type RestoreTime } from '../../core/drill.js';
import {
  ConfigurationError,
  InvalidInputError,
  isKeycloakBackupError,
  RestoreFailedError,
  RestoreWindowError,
  TransientError,
  WalArchiveGapError,
} from '../../core/errors.js';
import {
  type Clock,
  type DatabaseLocator,
  type DrillInstance,
  type PointInTimeEngine,
  type RestorableWindow,
  systemClock,
} from '../../core/ports.js';
import { onInterrupt } from '../interrupt.js';
import type { PgBinaries } from '../postgres/binaries.js';
import { withClient } from '../postgres/connect.js';
import { lastLines, spawnTool } from '../postgres/pg-process.js';
import type { LocalSnapshotEngine, SnapshotMetadata } from './local-snapshots.js';
import {
  cleanEnvironment,
  freePort,
  isPostmasterOf,
  isProcessRunning,
  LocalPostgresCluster,
  logTail,
  makeServerDir,
  type Settings,
  serverUser,
  settingsLines,
  writeServerFile,
} from './postgres-cluster.js';

export const DRILLS_DIR = 'drills';
const RECORD_FILE = 'instance.json';
const INSTANCE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

const recordSchema = z.object({
  recordVersion: z.literal(1),
  instanceId: z.string(),
  target: z.string(),
  status: z.enum(['creating', 'available']),
  createdAt: z.string(),
  availableAt: z.string().nullable(),
  time: z.string(),
  snapshotId: z.string(),
  port: z.number().int().nullable(),
  pid: z.number().int().nullable(),
  /** The time recovery actually reached (from the server's log at promotion); absent before. */
  reachedTime: z.string().nullish(),
});
type InstanceRecord = z.infer<typeof recordSchema>;

export interface LocalPointInTimeEngineOptions {
  /** The local state folder; drills live in `<stateDir>/drills/<instanceId>/`. */
  stateDir: string;
  /** Where the local primary's archive_command copies its WAL segments. */
  walArchiveDir: string;
  snapshots: LocalSnapshotEngine;
  /** The primary of each target: sealing the archive, and the credentials of the restored copy. */
  databases: DatabaseLocator;
  binaries: () => Promise<PgBinaries>;
  clock?: Clock;
  /** How long WAL replay up to promotion may take. Default 10 minutes. */
  recoveryTimeoutMs?: number;
  /** How long the archiver may take to archive the switched segment. Default 60 seconds. */
  archiveTimeoutMs?: number;
}

export class LocalPointInTimeEngine implements PointInTimeEngine {
  private readonly clock: Clock;
  private readonly drillsDir: string;
  /** Drill copies this process restored and has not torn down: removed if it is interrupted. */
  private readonly interruptible = new Map<string, () => void>();

  constructor(private readonly options: LocalPointInTimeEngineOptions) {
    this.clock = options.clock ?? systemClock;
    this.drillsDir = path.resolve(options.stateDir, DRILLS_DIR);
  }

  /**
   * From the oldest stored base backup's consistent point to now: the archive is sealed first (a commit, a WAL
   * switch, the segment archived), so every moment up to `latest` has a later commit to stop at.
   */
  async restorableWindow(target: string): Promise<RestorableWindow> {
    const snapshots = await this.options.snapshots.listMetadata(target, 'primary');
    const oldest = snapshots[0];
    if (!oldest) {
      throw new RestoreWindowError(`no base backup of ${target} to restore from, so nothing is restorable`, {
        hint: 'run a backup on a snapshot tier (daily and up by default) first',
      });
    }
    const { latest } = await this.sealArchive(target);
    return { earliest: new Date(oldest.createdAt), latest };
  }

  /**
   * Restores into a new instance and returns once it is promoted and answering (status available).
   * Refuses a time outside the window before it creates anything; removes everything it made if it fails.
   */
  async restore(request: { target: string; instanceId: string; time: RestoreTime }): Promise<DrillInstance> {
    const { target, instanceId, time } = request;
    checkInstanceId(instanceId);
    const existing = await this.readRecord(instanceId);
    if (existing) {
      const current = await this.describe(instanceId);
      // A repeated start (a retried step) finds the restore done; anything else left under this name goes first.
      if (current.status === 'available' && existing.target === target) return current;
      await this.teardown(instanceId);
    }

    const stored = await this.options.snapshots.listMetadata(target, 'primary');
    const oldest = stored[0];
    if (!oldest) await this.restorableWindow(target); // throws the "nothing restorable" error
    const seal = await this.sealArchive(target);
    assertRestorable(time, { earliest: new Date(oldest!.createdAt), latest: seal.latest }, this.clock.now());
    const snapshot = this.pickSnapshot(stored, time);
    // Before anything is made: a gap in the archive would stop recovery short of the point it is asked for.
    await this.checkArchiveChain(snapshot, time, seal);

    // Searchable by the server user, who owns each copy's folder inside.
    await mkdir(this.drillsDir, { recursive: true, mode: 0o755 });
    const dir = this.dir(instanceId);
    await mkdir(dir, { mode: 0o700 });
    // Interrupted half-way, the copy is removed; a drill's copy also once restored (a drill always tears down).
    const forget = onInterrupt(async () => {
      await this.teardown(instanceId);
      return `stopped and removed the restored copy ${instanceId}`;
    });
    const record: InstanceRecord = {
      recordVersion: 1,
      instanceId,
      target,
      status: 'creating',
      createdAt: this.clock.now().toISOString(),
      availableAt: null,
      time: time === 'latest' ? 'latest' : time.toISOString(),
      snapshotId: snapshot.snapshotId,
      port: null,
      pid: null,
    };
    try {
      await this.writeRecord(record);
      const cluster = copyCluster(dir, await this.options.binaries(), await freePort());
      await cluster.makeDirs();
      await makeServerDir(cluster.dataDir);
      await this.unpack(snapshot, cluster.dataDir);
      await this.writeRecoverySettings(cluster, time);

      await startCopy(cluster);
      record.port = cluster.port;
      record.pid = (await cluster.pid()) ?? null;
      await this.writeRecord(record);

      const url = await this.drillUrl(target, cluster.port);
      await this.waitUntilPromoted(url, record.pid, cluster.logFile);
      const reached = reachedTime(await readFile(cluster.logFile, 'utf8').catch(() => ''), time);
      record.status = 'available';
      record.availableAt = this.clock.now().toISOString();
      record.reachedTime = reached?.toISOString() ?? null;
      await this.writeRecord(record);
      if (isDrillId(instanceId)) this.interruptible.set(instanceId, forget);
      else forget();
      return {
        instanceId,
        target,
        status: 'available',
        createdAt: new Date(record.createdAt),
        databaseUrl: url,
        ...(reached ? { reachedTime: reached } : {}),
      };
    } catch (error) {
      forget();
      await this.teardown(instanceId).catch(() => undefined);
      if (isKeycloakBackupError(error)) throw error;
      throw new RestoreFailedError(
        `point-in-time restore of ${target} into ${instanceId} failed: ${messageOf(error)}`,
        {
          cause: error,
          hint: 'nothing was left behind; see the error, fix it and start the drill again',
        },
      );
    }
  }

  async describe(instanceId: string): Promise<DrillInstance> {
    checkInstanceId(instanceId);
    const record = await this.readRecord(instanceId);
    if (!record) {
      const info = await stat(this.dir(instanceId)).catch(() => undefined);
      // A folder without its record is a restore that died before writing it: failed, and swept like one.
      return info
        ? { instanceId, target: '', status: 'failed', createdAt: info.mtime }
        : { instanceId, target: '', status: 'gone', createdAt: this.clock.now() };
    }
    const base = { instanceId, target: record.target, createdAt: new Date(record.createdAt) };
    if (record.status === 'creating') return { ...base, status: 'creating' };
    const running =
      record.pid !== null && (await isPostmasterOf(record.pid, path.join(this.dir(instanceId), 'data')));
    if (!running || record.port === null) return { ...base, status: 'failed' };
    return {
      ...base,
      status: 'available',
      databaseUrl: await this.drillUrl(record.target, record.port),
      ...(record.reachedTime ? { reachedTime: new Date(record.reachedTime) } : {}),
    };
  }

  /** Stops the instance by its own pid (immediate: nothing in it is worth a checkpoint) and removes its folder. */
  async teardown(instanceId: string): Promise<void> {
    checkInstanceId(instanceId);
    this.interruptible.get(instanceId)?.();
    this.interruptible.delete(instanceId);
    await removeCopy(this.dir(instanceId), this.options.binaries);
  }

  async listDrills(): Promise<DrillInstance[]> {
    let names: string[];
    try {
      names = await readdir(this.drillsDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const drills = await Promise.all(
      names.filter((name) => INSTANCE_ID.test(name)).map((name) => this.describe(name)),
    );
    return drills.filter((drill) => drill.status !== 'gone');
  }

  /** The newest base backup consistent at or before the time (any for latest). */
  private pickSnapshot(snapshots: SnapshotMetadata[], time: RestoreTime): SnapshotMetadata {
    const usable =
      time === 'latest' ? snapshots : snapshots.filter((s) => Date.parse(s.createdAt) <= time.getTime());
    const chosen = usable.at(-1);
    if (!chosen) {
      throw new RestoreWindowError(
        `no base backup was complete at ${time === 'latest' ? 'any time' : time.toISOString()}`,
        {
          hint: 'choose a later time',
        },
      );
    }
    return chosen;
  }

  /**
   * Archive continuity from the base backup's first segment to the one that covers the target (as pgBackRest's
   * archive check and WAL-G's wal-verify do): recovery replays segment after segment and stops silently at the
   * first one missing, so a gap before the target is refused here, naming the segment and how far it would get.
   * A segment is complete when archived, so one archived at or after the target time covers it.
   */
  private async checkArchiveChain(snapshot: SnapshotMetadata, time: RestoreTime, seal: Seal): Promise<void> {
    if (snapshot.startLsn === null || snapshot.timeline === null) return;
    const segmentsPerId = 0x1_0000_0000 / seal.segmentBytes;
    const first = lsnSegment(snapshot.startLsn, seal.segmentBytes);
    const last = segmentNumber(seal.segment, segmentsPerId);
    const archived = new Map<number, Date>();
    for (const name of await readdir(this.options.walArchiveDir)) {
      if (!/^[0-9A-F]{24}$/.test(name) || Number.parseInt(name.slice(0, 8), 16) < snapshot.timeline) continue;
      const info = await stat(path.join(this.options.walArchiveDir, name)).catch(() => undefined);
      if (info && info.size >= seal.segmentBytes)
        archived.set(segmentNumber(name, segmentsPerId), info.mtime);
    }
    let coveredUntil: Date | undefined;
    for (let segment = first; segment <= last; segment++) {
      const archivedAt = archived.get(segment);
      if (archivedAt === undefined) {
        const name = segmentName(snapshot.timeline, segment, segmentsPerId);
        const wanted = time === 'latest' ? 'the latest archived change' : time.toISOString();
        const reach = coveredUntil
          ? `recovery from it would stop at about ${coveredUntil.toISOString()}, short of ${wanted}`
          : 'recovery from it cannot even reach a consistent state';
        throw new WalArchiveGapError(
          `the WAL archive misses segment ${name} after base backup ${snapshot.snapshotId}: ${reach}`,
          {
            hint:
              `nothing was restored. ${coveredUntil ? `Times before ${coveredUntil.toISOString()} are still restorable; ` : ''}` +
              'put the segment back into the archive (the primary may still hold it in pg_wal), or take a new base backup (a backup on a snapshot tier) to restore later times',
          },
        );
      }
      coveredUntil = archivedAt;
      if (time !== 'latest' && archivedAt.getTime() >= time.getTime()) return;
    }
  }

  /** Commits, switches WAL and waits for the archiver: a moment before that commit, and the sealed segment. */
  private async sealArchive(target: string): Promise<Seal> {
    const before = this.clock.now();
    const url = await this.options.databases.connectionUrl(target, 'primary');
    const { segment, segmentBytes } = await withClient(url, async (client) => {
      try {
        // A transaction with an xid writes a commit record stamped with its time: recovery_target_time stops at it.
        await client.query('BEGIN');
        await client.query('SELECT pg_current_xact_id()');
        await client.query('COMMIT');
        const { rows } = await client.query<{ segment: string; bytes: string }>(
          "SELECT pg_walfile_name(pg_switch_wal()) AS segment, pg_size_bytes(current_setting('wal_segment_size')) AS bytes",
        );
        return { segment: rows[0]!.segment, segmentBytes: Number(rows[0]!.bytes) };
      } catch (error) {
        throw new ConfigurationError(`cannot switch WAL on the primary of ${target}: ${messageOf(error)}`, {
          cause: error,
          hint: 'the local primary role must be allowed to run pg_switch_wal()',
        });
      }
    });
    await this.waitForArchived(segment, segmentBytes);
    return { latest: before, segment, segmentBytes };
  }

  private async waitForArchived(segment: string, segmentBytes: number): Promise<void> {
    const file = path.join(this.options.walArchiveDir, segment);
    const deadline = Date.now() + (this.options.archiveTimeoutMs ?? 60_000);
    while (Date.now() < deadline) {
      const info = await stat(file).catch(() => undefined);
      if (info && info.size >= segmentBytes) return;
      await sleep(100);
    }
    throw new TransientError(
      `WAL segment ${segment} was not archived into ${this.options.walArchiveDir} in time`,
      {
        hint: 'check the primary archive_command and pg_stat_archiver.failed_count',
      },
    );
  }

  /** Decrypts the stored base backup straight into tar running as the data directory's owner. */
  private async unpack(snapshot: SnapshotMetadata, dataDir: string): Promise<void> {
    const stages = await this.options.snapshots.archiveStages(snapshot);
    const user = await serverUser();
    const tar = spawnTool('tar', ['-x', '-f', '-', '-C', dataDir], {
      env: cleanEnvironment(),
      stdin: 'pipe',
      stdout: 'ignore',
      ...(user ? { user } : {}),
    });
    try {
      const stdin = tar.child.stdin;
      if (!stdin) throw new Error('tar has no stdin');
      await pipeline(...stages, stdin);
    } catch (error) {
      tar.stop();
      await tar.exit.catch(() => undefined);
      throw error;
    }
    const exit = await tar.exit;
    if (exit.code !== 0) {
      throw new RestoreFailedError(
        `unpacking base backup ${snapshot.snapshotId} failed: ${lastLines(tar.stderrTail())}`,
        {
          hint: 'check free disk space in the state folder',
        },
      );
    }
    await chmod(dataDir, 0o700);
  }

  /**
   * Appended to postgresql.auto.conf, read last, so these win over the primary's own settings: no archiving (a
   * drill must never write into the primary's archive), no synchronous standbys, no upstream. The port, loopback
   * only and the socket folder are the cluster's start options, which win over any file.
   */
  private async writeRecoverySettings(cluster: LocalPostgresCluster, time: RestoreTime): Promise<void> {
    const archive = this.options.walArchiveDir;
    const settings: Settings = {
      archive_mode: false,
      restore_command: `cp "${archive}/%f" "%p"`,
      recovery_target_timeline: 'latest',
      recovery_target_action: 'promote',
      hot_standby: true,
      primary_conninfo: '',
      primary_slot_name: '',
      synchronous_standby_names: '',
      logging_collector: false,
      // Before replaying, PostgreSQL syncs the whole copied directory; one syncfs() per filesystem is far quicker.
      recovery_init_sync_method: 'syncfs',
    };
    if (time !== 'latest') {
      settings.recovery_target_time = `${time.toISOString().replace('T', ' ').replace('Z', '')}+00`;
      settings.recovery_target_inclusive = true;
    }
    const dataDir = cluster.dataDir;
    for (const file of ['postgresql.conf', 'postgresql.auto.conf']) {
      // A primary configured only on its command line has no config file in its data directory.
      if (!(await exists(path.join(dataDir, file)))) await writeServerFile(path.join(dataDir, file), '');
    }
    // Whatever the primary's file said: the copy holds every password hash and admits only by password.
    await cluster.writeHba();
    await appendFile(
      path.join(dataDir, 'postgresql.auto.conf'),
      `\n# keycloak-backup restore drill: these settings win over the primary's above\n${settingsLines(settings).join('\n')}\n`,
    );
    await rm(path.join(dataDir, 'standby.signal'), { force: true });
    await writeServerFile(path.join(dataDir, 'recovery.signal'), '');
  }

  private async waitUntilPromoted(url: string, pid: number | null, logFile: string): Promise<void> {
    const deadline = Date.now() + (this.options.recoveryTimeoutMs ?? 600_000);
    for (;;) {
      if (pid !== null && !isProcessRunning(pid)) {
        throw new RestoreFailedError(`recovery stopped before promotion: ${await serverLogTail(logFile)}`, {
          hint: 'WAL between the base backup and the target time must be in the archive',
        });
      }
      const inRecovery = await withClient(url, async (client) => {
        const { rows } = await client.query<{ recovering: boolean }>(
          'SELECT pg_is_in_recovery() AS recovering',
        );
        return rows[0]!.recovering;
      }).catch(() => true);
      if (!inRecovery) return;
      if (Date.now() > deadline) {
        throw new RestoreFailedError('the restored copy was not promoted in time', {
          hint: 'replaying a long stretch of WAL takes time: raise recoveryTimeoutMs, or take base backups more often',
        });
      }
      await sleep(200);
    }
  }

  /** The primary's URL (its roles and passwords are in the restored copy) pointed at the drill's port. */
  private async drillUrl(target: string, port: number): Promise<string> {
    const url = new URL(await this.options.databases.connectionUrl(target, 'primary'));
    url.hostname = '127.0.0.1';
    url.port = String(port);
    return url.toString();
  }

  private dir(instanceId: string): string {
    return path.join(this.drillsDir, instanceId);
  }

  private async readRecord(instanceId: string): Promise<InstanceRecord | undefined> {
    return readRecordFile(this.dir(instanceId));
  }

  /** Written whole and renamed, so another process never reads half a record. */
  private async writeRecord(record: InstanceRecord): Promise<void> {
    const file = path.join(this.dir(record.instanceId), RECORD_FILE);
    await writeFile(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }
}

interface Seal {
  /** A moment before the sealing commit: every time up to it has a later commit to stop at. */
  latest: Date;
  /** The WAL segment the switch completed (archived by now). */
  segment: string;
  segmentBytes: number;
}

/** The segment number of a WAL file name TTTTTTTTXXXXXXXXYYYYYYYY. */
function segmentNumber(name: string, segmentsPerId: number): number {
  return Number.parseInt(name.slice(8, 16), 16) * segmentsPerId + Number.parseInt(name.slice(16, 24), 16);
}

function segmentName(timeline: number, segment: number, segmentsPerId: number): string {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(Math.floor(segment / segmentsPerId))}${hex(segment % segmentsPerId)}`;
}

/** The segment holding an LSN such as 0/2000028. */
function lsnSegment(lsn: string, segmentBytes: number): number {
  const [high, low] = lsn.split('/').map((part) => Number.parseInt(part, 16));
  return Math.floor(((high ?? 0) * 0x1_0000_0000 + (low ?? 0)) / segmentBytes);
}

/**
 * How far recovery got, from the server's log at the end of recovery: stopped by a target time means complete up
 * to that time; otherwise the commit time of the last transaction it replayed (the end of the archive, or a gap).
 */
export function reachedTime(log: string, time: RestoreTime): Date | undefined {
  if (time !== 'latest' && /recovery stopping (before|after) (commit|abort)/.test(log)) return time;
  const matches = [...log.matchAll(/last completed transaction was at log time (\S+ \S+)/g)];
  const text = matches.at(-1)?.[1];
  if (!text) return undefined;
  // 2026-12-04 17:00:00.123456+00 → 2026-12-04T17:00:00.123+00:00
  const iso = text
    .replace(' ', 'T')
    .replace(/(\.\d{3})\d+/, '$1')
    .replace(/([+-]\d{2})$/, '$1:00');
  const parsed = new Date(iso);
  return Number.isNaN(parsed.getTime()) ? undefined : parsed;
}

/** The restored copy in `dir`: a local cluster (data/, run/, postgres.log) started from a base backup. */
function copyCluster(dir: string, binaries: PgBinaries, port = 0): LocalPostgresCluster {
  return new LocalPostgresCluster({
    name: `restored copy ${path.basename(dir)}`,
    baseDir: dir,
    binaries,
    port,
    portFlexible: true,
    // pg_ctl -w returns once the copy accepts connections: consistent, still replaying; promotion is awaited after.
    startTimeoutSeconds: 300,
  });
}

async function startCopy(cluster: LocalPostgresCluster): Promise<void> {
  try {
    await cluster.start();
  } catch (error) {
    throw new RestoreFailedError(`the restored copy did not start: ${await serverLogTail(cluster.logFile)}`, {
      cause: error,
      hint: 'a recovery target before the base backup completed, or WAL missing from the archive, stops recovery',
    });
  }
}

/** Stops a restored copy (immediate: nothing in it is worth a checkpoint) and removes its folder. */
async function removeCopy(dir: string, binaries: () => Promise<PgBinaries>): Promise<boolean> {
  if (!(await exists(dir))) return false;
  // Only the postmaster of this copy's data directory is signalled; the folder goes even if it would not stop.
  await copyCluster(dir, await binaries())
    .stop('immediate')
    .catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
  return true;
}

async function readRecordFile(dir: string): Promise<InstanceRecord | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, RECORD_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = recordSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : undefined;
}

/**
 * What an earlier process left when it died (SIGKILL, a crash, a power cut): a drill's copy (a drill always tears
 * down before its command ends) and any copy still being restored. Recoveries kept under a name by `pitr` stay.
 * Run by the local stack once it holds the state folder's lock, so no other process is using them.
 */
export async function sweepLeftoverCopies(stateDir: string, binaries: PgBinaries): Promise<string[]> {
  const drillsDir = path.resolve(stateDir, DRILLS_DIR);
  const names = await readdir(drillsDir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names.filter((n) => INSTANCE_ID.test(n))) {
    const dir = path.join(drillsDir, name);
    const record = await readRecordFile(dir).catch(() => undefined);
    if (isDrillId(name) || !record || record.status === 'creating') {
      if (await removeCopy(dir, async () => binaries))
        removed.push(`removed the restored copy ${name} left by an earlier run`);
    }
  }
  return removed;
}

function checkInstanceId(instanceId: string): void {
  if (!INSTANCE_ID.test(instanceId)) {
    throw new InvalidInputError(`drill instance id "${instanceId}" is not a lower-case name`, {
      hint: 'instance ids are lower-case letters, digits and dashes, at most 63 characters',
    });
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

async function serverLogTail(logFile: string): Promise<string> {
  return (await logTail(logFile, { lines: 8 })) || '(no server log)';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
