// DatabaseTools over the machine's (or the layer's) pg_dump and pg_restore, and the Keycloak probe.

import { mkdir } from 'node:fs/promises';
import { ConfigurationError } from '../../core/errors.js';
import type {
  DatabaseLocator,
  DatabaseTools,
  DumpOutcome,
  DumpRequest,
  Envelope,
  ObjectStore,
  ReplicaMonitor,
  SourceIdentity,
  StoredDump,
} from '../../core/ports.js';
import type { PgBinaries } from './binaries.js';
import { redact, withClient } from './connect.js';
import { readRealmKeys, takeSourceSnapshot, verifyKeycloakDatabase } from './keycloak-probe.js';
import { dumpToStore } from './pg-dump.js';
import { readArchiveList, restoreFromStore, verifyStoredObject } from './pg-restore.js';
import { disableKeyComponents } from './realm-keys.js';
import { identifyDatabase, measureReplicaLag } from './source-info.js';
import { findStdbufLibrary, stdbufCandidates } from './stdout-buffer.js';

export interface PostgresToolsOptions {
  binaries: () => Promise<PgBinaries>;
  databases: DatabaseLocator;
  envelope: Envelope;
  /** KB_DUMP_COMPRESSION and KB_DUMP_ZSTD_LEVEL (pg-dump.ts dumpCompression). */
  compression: string;
  zstdLevel?: number;
  /** Keycloak's schema (KC_DB_SCHEMA). */
  schema: string;
  /**
   * Maintenance database URL of the server that hosts scratch databases, or how to find it (on AWS: read from a
   * Secrets Manager secret when first needed, so no password sits in the environment).
   */
  scratchServerUrl?: string | (() => Promise<string | undefined>);
  /** Where parallel restores spool the decrypted archive. */
  tempDir?: string;
  /** Replica freshness before a dump (KB_REPLICA_MAX_LAG_SECONDS, KB_STALE_REPLICA_ACTION); unchecked when absent. */
  freshness?: { maxLagSeconds: number; whenStale: 'fail' | 'primary' };
  /** The provider's view of the replica (RDS), asked before the lag is measured; none locally. */
  replicaMonitor?: ReplicaMonitor;
}

export class PostgresTools implements DatabaseTools {
  private stdbuf: Promise<string | undefined> | undefined;

  constructor(private readonly options: PostgresToolsOptions) {}

  /** libstdbuf.so for pg_dump's 64 KiB writes, looked for once. */
  private stdbufLibrary(binDir: string): Promise<string | undefined> {
    this.stdbuf ??= findStdbufLibrary(stdbufCandidates(binDir));
    return this.stdbuf;
  }

  async identifySource(target: string): Promise<SourceIdentity> {
    return identifyDatabase(await this.options.databases.connectionUrl(target, 'replica'));
  }

  identifyDatabase(databaseUrl: string): Promise<SourceIdentity> {
    return identifyDatabase(databaseUrl);
  }

  async dump(request: DumpRequest, store: ObjectStore): Promise<DumpOutcome> {
    const binaries = await this.options.binaries();
    const { url, lagSeconds } = await this.freshEndpoint(request.target);
    const result = await dumpToStore({
      databaseUrl: url,
      pgDumpPath: binaries.path('pg_dump'),
      pgDumpVersion: await binaries.version('pg_dump'),
      stdbufLibrary: await this.stdbufLibrary(binaries.dir),
      compression: this.options.compression,
      zstdLevel: this.options.zstdLevel,
      envelope: this.options.envelope,
      store,
      key: request.key,
      encryptionContext: request.encryptionContext,
      retainUntil: request.retainUntil,
      createOnly: request.createOnly,
      onProgress: request.onProgress,
      signal: request.signal,
      inSnapshot: (client) => takeSourceSnapshot(client, this.options.schema, { inTransaction: true }),
    });
    const { snapshotResult, inRecovery, ...figures } = result;
    return {
      ...figures,
      // The lag measured against the primary just before the snapshot, where it was measured.
      replicaLagSeconds: inRecovery ? (lagSeconds ?? figures.replicaLagSeconds) : null,
      endpointRole: inRecovery ? 'replica' : 'primary',
      contents: snapshotResult,
    };
  }

  /**
   * The replica when it is fresh (the provider says it is replicating; replay not paused, within the allowed lag of
   * the primary); when it is not, a StaleReplicaError, or the primary when so configured. The lag is measured only
   * with a separate primary endpoint.
   */
  private async freshEndpoint(target: string): Promise<{ url: string; lagSeconds?: number }> {
    const replicaUrl = await this.options.databases.connectionUrl(target, 'replica');
    const freshness = this.options.freshness;
    if (!freshness) return { url: replicaUrl };
    const found = await this.options.databases.connectionUrl(target, 'primary').catch(() => undefined);
    const primaryUrl = found && found !== replicaUrl ? found : undefined;
    try {
      await this.options.replicaMonitor?.assertReplicating(target);
      if (!primaryUrl) return { url: replicaUrl };
      const lagSeconds = await measureReplicaLag({
        replicaUrl,
        primaryUrl,
        maxLagSeconds: freshness.maxLagSeconds,
        target,
      });
      return { url: replicaUrl, lagSeconds };
    } catch (error) {
      const stale = (error as Error).name === 'StaleReplicaError';
      if (!primaryUrl || freshness.whenStale !== 'primary' || !stale) throw error;
      return { url: primaryUrl };
    }
  }

  async verifyStored(dump: StoredDump) {
    const result = await verifyStoredObject(this.readOptions(dump));
    return { storedBytes: result.storedBytes, plainBytes: result.plainBytes, durationMs: result.durationMs };
  }

  async listArchive(dump: StoredDump) {
    const binaries = await this.options.binaries();
    const result = await readArchiveList({
      ...this.readOptions(dump),
      pgRestorePath: binaries.path('pg_restore'),
      pgRestoreVersion: await binaries.version('pg_restore'),
    });
    return { tocEntries: result.tocEntries, durationMs: result.durationMs };
  }

  async restore(dump: StoredDump, databaseUrl: string, jobs: number) {
    const binaries = await this.options.binaries();
    if (this.options.tempDir) await mkdir(this.options.tempDir, { recursive: true, mode: 0o700 });
    const result = await restoreFromStore({
      ...this.readOptions(dump),
      pgRestorePath: binaries.path('pg_restore'),
      pgRestoreVersion: await binaries.version('pg_restore'),
      archivePgDumpVersion: dump.pgDumpVersion,
      databaseUrl,
      jobs,
      tempDir: this.options.tempDir,
    });
    return { durationMs: result.durationMs, plainBytes: result.plainBytes };
  }

  verifyKeycloak(
    databaseUrl: string,
    options: { source?: DumpOutcome['contents']; mode?: 'dump' | 'pitr'; tolerancePercent?: number },
  ) {
    return verifyKeycloakDatabase(databaseUrl, { schema: this.options.schema, ...options });
  }

  readRealmKeys(databaseUrl: string, options: { withSessions?: boolean } = {}) {
    return readRealmKeys(databaseUrl, { schema: this.options.schema, ...options });
  }

  disableKeyComponents(databaseUrl: string, componentIds: readonly string[]) {
    return disableKeyComponents(databaseUrl, this.options.schema, componentIds);
  }

  async withScratchDatabase<T>(
    name: string,
    use: (databaseUrl: string) => Promise<T>,
    serverUrl?: string,
  ): Promise<T> {
    const configured = this.options.scratchServerUrl;
    const server = serverUrl ?? (typeof configured === 'function' ? await configured() : configured);
    if (!server) {
      throw new ConfigurationError('full verification needs a scratch database server', {
        hint: 'set KB_SCRATCH_DATABASE_URL (locally) or KB_SCRATCH_SECRET_ARN (on AWS), or remove the tiers from KB_FULL_VERIFY_TIERS',
      });
    }
    const database = `kb_scratch_${name.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
    const quoted = `"${database}"`;
    await withClient(server, async (client) => {
      await client.query(`drop database if exists ${quoted} with (force)`);
      await client.query(`create database ${quoted}`);
    });
    const url = new URL(server);
    url.pathname = `/${database}`;
    try {
      return await use(url.toString());
    } finally {
      await withClient(server, (client) =>
        client.query(`drop database if exists ${quoted} with (force)`),
      ).catch((error: Error) => {
        // Leave the error of `use` in charge; a scratch database left behind is named for the operator.
        process.emitWarning(
          `scratch database ${database} on ${redact(server)} was not dropped: ${error.message}`,
        );
      });
    }
  }

  private readOptions(dump: StoredDump) {
    return {
      store: dump.store,
      key: dump.key,
      expectedSha256: dump.storedSha256,
      envelope: dump.envelope ?? this.options.envelope,
      encryptionContext: dump.encryptionContext,
      compressedBy: dump.compressedBy,
      onProgress: dump.onProgress,
      signal: dump.signal,
    };
  }
}
