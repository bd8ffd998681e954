// Wires the ports to the local stack: s3rver buckets, a raw AES keyring, pg_basebackup snapshots, an outbox.
import path from 'node:path';
import { copyObjectVerified } from '../adapters/copy-object.js';
import { EsdkEnvelope } from '../adapters/crypto/envelope.js';
import { localKeyFingerprint, readKeyFile } from '../adapters/local/key-file.js';
import { LocalPointInTimeEngine } from '../adapters/local/local-pitr.js';
import { LocalSnapshotEngine } from '../adapters/local/local-snapshots.js';
import { OutboxNotifier } from '../adapters/local/outbox-notifier.js';
import { LOCAL_KEY_ID, localKeyring } from '../adapters/local/raw-aes-keyring.js';
import { S3ObjectStore } from '../adapters/s3-object-store.js';
import { ConfigurationError } from '../core/errors.js';
import type { DatabaseLocator, EndpointRole } from '../core/ports.js';
import { systemClock } from '../core/ports.js';
import { databaseTools, pgBinaries, requiredSetting } from './common-wiring.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { type Services, targetConfig } from './services.js';

/** Targets' URLs come straight from configuration locally (no secrets store). */
export class ConfiguredDatabaseLocator implements DatabaseLocator {
  constructor(private readonly config: Config) {}

  async connectionUrl(target: string, role: EndpointRole): Promise<string> {
    const configured = targetConfig(this.config, target);
    const url = role === 'primary' ? (configured.primary ?? configured.replica) : configured.replica;
    if (!/^postgres(ql)?:\/\//.test(url)) {
      throw new ConfigurationError(`target ${target}: the ${role} must be a postgres:// URL locally`, {
        hint: 'set replica (and primary) in KB_TARGETS to postgres://user@host:port/database',
      });
    }
    return url;
  }
}

export async function localServices(config: Config, logger: Logger): Promise<Services> {
  const stateDir = required(config.KB_LOCAL_STATE_DIR, 'KB_LOCAL_STATE_DIR');
  const store = (bucket: string, region: string) =>
    new S3ObjectStore({ bucket, region, endpoint: required(config.KB_S3_ENDPOINT, 'KB_S3_ENDPOINT') });
  const primaryStore = store(config.KB_PRIMARY_BUCKET, config.KB_PRIMARY_REGION);
  const drStore = store(config.KB_DR_BUCKET, config.KB_DR_REGION);
  const key = await readKeyFile(required(config.KB_LOCAL_KEY_FILE, 'KB_LOCAL_KEY_FILE'));
  const envelope = new EsdkEnvelope({
    keyring: localKeyring(key),
    keyIds: [LOCAL_KEY_ID],
    fingerprint: localKeyFingerprint(key),
  });
  const databases = new ConfiguredDatabaseLocator(config);
  const binaries = pgBinaries(config);
  const snapshots = new LocalSnapshotEngine({ primaryStore, drStore, envelope, databases, binaries });
  return {
    config,
    logger,
    clock: systemClock,
    primaryStore,
    drStore,
    envelope,
    snapshots,
    pitr: new LocalPointInTimeEngine({
      stateDir,
      walArchiveDir: config.KB_LOCAL_WAL_ARCHIVE_DIR ?? path.join(stateDir, 'wal-archive'),
      snapshots,
      databases,
      binaries,
    }),
    notifier: new OutboxNotifier(required(config.KB_OUTBOX_FILE, 'KB_OUTBOX_FILE')),
    databases,
    binaries,
    tools: databaseTools(config, { binaries, databases, envelope, tempDir: path.join(stateDir, 'tmp') }),
    copyObject: copyObjectVerified,
  };
}

function required(value: string | undefined, name: string): string {
  return requiredSetting(value, name, 'the local stack sets it; see README');
}
