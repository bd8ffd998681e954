// Preflight facts about a target's endpoint: server version, standby status and the settings dumps depend on.
import type pg from 'pg';
import { StaleReplicaError } from '../../core/errors.js';
import type { SourceIdentity } from '../../core/ports.js';
import { redact, withClient } from './connect.js';

export interface SourceInfo {
  serverVersion: string;
  serverMajor: number;
  inRecovery: boolean;
  /** Standby settings that decide whether long dumps get cancelled by recovery conflicts. */
  hotStandbyFeedback: boolean;
  maxStandbyStreamingDelayMs: number;
  /** Seconds behind the primary (null on a primary, or on an idle standby with nothing replayed yet). */
  replicaLagSeconds: number | null;
}

export function inspectSource(url: string): Promise<SourceInfo> {
  return withClient(url, readSourceInfo);
}

export async function readSourceInfo(client: pg.Client): Promise<SourceInfo> {
  const { rows } = await client.query<{
    server_version: string;
    server_version_num: string;
    in_recovery: boolean;
    hot_standby_feedback: string;
    max_standby_streaming_delay: string;
    lag: string | null;
  }>(`select current_setting('server_version') as server_version,
            current_setting('server_version_num') as server_version_num,
            pg_is_in_recovery() as in_recovery,
            current_setting('hot_standby_feedback') as hot_standby_feedback,
            current_setting('max_standby_streaming_delay') as max_standby_streaming_delay,
            case when pg_is_in_recovery()
                 then extract(epoch from now() - pg_last_xact_replay_timestamp())::text end as lag`);
  const row = rows[0]!;
  return {
    serverVersion: row.server_version.split(' ')[0]!,
    serverMajor: Math.floor(Number(row.server_version_num) / 10_000),
    inRecovery: row.in_recovery,
    hotStandbyFeedback: row.hot_standby_feedback === 'on',
    maxStandbyStreamingDelayMs: parseDelay(row.max_standby_streaming_delay),
    replicaLagSeconds: row.lag === null ? null : Math.max(0, Number(row.lag)),
  };
}

/** '30s', '5min', '-1' (wait forever) → milliseconds; -1 stays -1. */
function parseDelay(text: string): number {
  const m = /^(-?\d+)\s*(ms|s|min|h|d)?$/.exec(text.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  if (n < 0) return -1;
  const unit = { ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms'] ?? 1;
  return n * unit;
}

/** Warnings about a standby that will cancel long dumps (DESIGN: conflict with recovery). */
export function standbyWarnings(info: SourceInfo): string[] {
  if (!info.inRecovery)
    return ['the dump endpoint is a primary, not a read replica: the dump adds load to the primary'];
  if (
    info.hotStandbyFeedback ||
    info.maxStandbyStreamingDelayMs === -1 ||
    info.maxStandbyStreamingDelayMs >= 3_600_000
  ) {
    return [];
  }
  return [
    `replica has hot_standby_feedback off and max_standby_streaming_delay ${info.maxStandbyStreamingDelayMs} ms: long dumps may be cancelled by recovery conflicts (set hot_standby_feedback = on)`,
  ];
}

/**
 * How far the replica is behind the primary, checked before a dump: its replay must not be paused, and it must
 * replay the primary's current WAL position within `maxLagSeconds` (the seconds that took are the lag). A replica
 * that fails either is a StaleReplicaError: a dump from it would silently miss what the primary already has.
 * Time since the last replayed commit is no measure (an idle primary makes it grow on a replica that is caught up).
 */
export async function measureReplicaLag(options: {
  replicaUrl: string;
  primaryUrl: string;
  maxLagSeconds: number;
  target: string;
}): Promise<number> {
  const { target, maxLagSeconds } = options;
  const paused = () =>
    new StaleReplicaError(`WAL replay is paused on the replica of ${target}: a dump from it would be stale`, {
      hint: 'resume it (select pg_wal_replay_resume()) or set KB_STALE_REPLICA_ACTION=primary to dump from the primary meanwhile',
    });
  return withClient(options.replicaUrl, async (replica) => {
    const { rows } = await replica.query<{ standby: boolean; paused: boolean | null }>(
      'select pg_is_in_recovery() as standby, case when pg_is_in_recovery() then pg_is_wal_replay_paused() end as paused',
    );
    if (!rows[0]?.standby) return 0; // not a standby: nothing to be behind
    if (rows[0].paused) throw paused();
    const primaryLsn = await withClient(options.primaryUrl, async (primary) => {
      const result = await primary.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
      return result.rows[0]!.lsn;
    });
    const started = performance.now();
    for (;;) {
      const { rows: now } = await replica.query<{ done: boolean | null; paused: boolean }>(
        'select pg_last_wal_replay_lsn() >= $1::pg_lsn as done, pg_is_wal_replay_paused() as paused',
        [primaryLsn],
      );
      const waited = (performance.now() - started) / 1000;
      if (now[0]?.done) return Math.round(waited * 1000) / 1000;
      if (now[0]?.paused) throw paused();
      if (waited >= maxLagSeconds) {
        throw new StaleReplicaError(
          `the replica of ${target} did not replay the primary's position ${primaryLsn} within ${maxLagSeconds} s (KB_REPLICA_MAX_LAG_SECONDS): a dump from it would be stale`,
          {
            hint: 'look at the replica (is it streaming? pg_stat_wal_receiver) or raise KB_REPLICA_MAX_LAG_SECONDS; KB_STALE_REPLICA_ACTION=primary dumps from the primary instead',
          },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });
}

/** Which database this is: the cluster's system identifier, the database's name and OID, the server version. */
export async function readSourceIdentity(client: pg.Client, endpoint: string): Promise<SourceIdentity> {
  const { rows } = await client.query<{ database: string; oid: string; server_version: string }>(
    `select current_database() as database,
            (select oid from pg_database where datname = current_database())::text as oid,
            current_setting('server_version') as server_version`,
  );
  const row = rows[0]!;
  return {
    systemIdentifier: await readSystemIdentifier(client),
    database: row.database,
    databaseOid: Number(row.oid),
    serverVersion: row.server_version.split(' ')[0]!,
    endpoint,
  };
}

/** pg_control_system() is open to every role by default; where a provider revoked it the identity has none. */
async function readSystemIdentifier(client: pg.Client): Promise<string | null> {
  try {
    const { rows } = await client.query<{ id: string }>(
      'select system_identifier::text as id from pg_control_system()',
    );
    return rows[0]?.id ?? null;
  } catch (error) {
    if ((error as { code?: string }).code === '42501') return null;
    throw error;
  }
}

/** The identity of the database at `url`; its endpoint is the URL without credentials or options. */
export function identifyDatabase(url: string): Promise<SourceIdentity> {
  return withClient(url, (client) => readSourceIdentity(client, redact(url)));
}
