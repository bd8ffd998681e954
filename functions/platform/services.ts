// What every handler is given: configuration, logger, clock and the ports, wired to aws/ or local/ adapters.

import type { PgBinaries } from '../adapters/postgres/binaries.js';
import type { PlanSettings } from '../core/plan.js';
import type {
  Clock,
  CopyObject,
  DatabaseLocator,
  DatabaseTools,
  Envelope,
  Notifier,
  ObjectStore,
  PointInTimeEngine,
  SnapshotEngine,
} from '../core/ports.js';
import { RDS_MANUAL_SNAPSHOT_QUOTA, type RetentionPolicy } from '../core/retention.js';
import { findTarget } from '../core/targets.js';
import type { Config, TargetConfig } from './config.js';
import type { Logger } from './logger.js';

export interface Services {
  config: Config;
  logger: Logger;
  clock: Clock;
  primaryStore: ObjectStore;
  drStore: ObjectStore;
  envelope: Envelope;
  /** Decrypts with the DR key alone (AWS), for the drill's restore from the DR bucket; locally one key serves both. */
  drEnvelope?: Envelope;
  snapshots: SnapshotEngine;
  pitr: PointInTimeEngine;
  notifier: Notifier;
  databases: DatabaseLocator;
  /** pg_dump, pg_restore, the Keycloak checks and scratch databases. */
  tools: DatabaseTools;
  /** Streams an object into another store and checks its SHA-256 on the way (the DR copy). */
  copyObject: CopyObject;
  /** The PostgreSQL client programs (configured directory, or found on the machine), checked once. */
  binaries: () => Promise<PgBinaries>;
  /** Progress of long steps (bytes and rate), for a person watching the CLI; unset on AWS. */
  progress?: (event: ProgressEvent) => void;
}

export interface ProgressEvent {
  step: string;
  target: string;
  bytes: number;
  bytesPerSecond: number;
  done?: boolean;
}

export function targetConfig(config: Config, name: string): TargetConfig {
  return findTarget(config.KB_TARGETS, name);
}

/** The retention policy the configuration sets; only RDS limits the snapshots a region may hold. */
export function retentionPolicy(config: Config): RetentionPolicy {
  return {
    hourlyHours: config.KB_RETAIN_HOURLY_HOURS,
    dailyDays: config.KB_RETAIN_DAILY_DAYS,
    weeklyDays: config.KB_RETAIN_WEEKLY_DAYS,
    monthlyDays: config.KB_RETAIN_MONTHLY_DAYS,
    incompleteGraceHours: config.KB_INCOMPLETE_GRACE_HOURS,
    snapshotQuota: config.KB_RUNTIME === 'aws' ? RDS_MANUAL_SNAPSHOT_QUOTA : undefined,
  };
}

/** What planning a run needs from the configuration. */
export function planSettings(config: Config): PlanSettings {
  return {
    dailyHourUtc: config.KB_DAILY_HOUR_UTC,
    weeklyDayUtc: config.KB_WEEKLY_DAY_UTC,
    targets: config.KB_TARGETS.map((t) => t.name),
    snapshotTiers: config.KB_SNAPSHOT_TIERS,
    fullVerifyTiers: config.KB_FULL_VERIFY_TIERS,
    policy: retentionPolicy(config),
  };
}

/** A Lambda entry point whose services are built on the first invocation (once per cold start), not at import. */
export function deferred<E, C, R>(build: () => Promise<(event: E, context: C) => Promise<R>>) {
  let handler: Promise<(event: E, context: C) => Promise<R>> | undefined;
  return async (event: E, context: C): Promise<R> => {
    handler ??= build();
    return (await handler)(event, context);
  };
}
