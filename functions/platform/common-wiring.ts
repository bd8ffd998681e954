// What the AWS and the local wiring build alike: the PostgreSQL tools, the binaries lookup, setting checks.
import { findPgBinaries, type PgBinaries } from '../adapters/postgres/binaries.js';
import { PostgresTools } from '../adapters/postgres/postgres-tools.js';
import { ConfigurationError } from '../core/errors.js';
import type { DatabaseLocator, Envelope, ReplicaMonitor } from '../core/ports.js';
import type { Config } from './config.js';

/** One result per process (per cold start on Lambda); a failure is not kept, so the next call tries again. */
export function memoize<T>(make: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= make().catch((error: unknown) => {
      value = undefined;
      throw error;
    });
    return value;
  };
}

export function requiredSetting(value: string | undefined, name: string, hint: string): string {
  if (!value) throw new ConfigurationError(`${name} is not set`, { hint });
  return value;
}

/** The PostgreSQL programs: KB_PG_BIN_DIR, else `fallbackDir` (the Lambda layer), else found on the machine. */
export function pgBinaries(config: Config, fallbackDir?: string): () => Promise<PgBinaries> {
  return memoize(() => findPgBinaries(config.KB_PG_BIN_DIR ?? fallbackDir));
}

export function databaseTools(
  config: Config,
  ports: {
    binaries: () => Promise<PgBinaries>;
    databases: DatabaseLocator;
    envelope: Envelope;
    tempDir: string;
    /** Where scratch databases go when not KB_SCRATCH_DATABASE_URL (AWS: resolved from a secret). */
    scratchServerUrl?: () => Promise<string>;
    /** The provider's view of each target's replica (AWS: RDS), asked before every dump. */
    replicaMonitor?: ReplicaMonitor;
  },
): PostgresTools {
  return new PostgresTools({
    ...ports,
    compression: config.KB_DUMP_COMPRESSION,
    zstdLevel: config.KB_DUMP_ZSTD_LEVEL,
    schema: config.KB_KEYCLOAK_SCHEMA,
    scratchServerUrl: ports.scratchServerUrl ?? config.KB_SCRATCH_DATABASE_URL,
    freshness: {
      maxLagSeconds: config.KB_REPLICA_MAX_LAG_SECONDS,
      whenStale: config.KB_STALE_REPLICA_ACTION,
    },
  });
}
