// DatabaseTools without PostgreSQL: a "dump" is random bytes through the real envelope into the store, and every
// read is a real read (SHA-256 of the stored bytes, authenticated decryption with the expected context).
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ChecksumMismatchError } from '../../functions/core/errors.js';
import type {
  DatabaseTools,
  DumpOutcome,
  DumpRequest,
  Envelope,
  ObjectStore,
  SourceIdentity,
  StoredDump,
} from '../../functions/core/ports.js';

/** Every fake dump reads the same database. */
const FAKE_SOURCE = {
  systemIdentifier: '7000000000000000001',
  database: 'keycloak',
  databaseOid: 16384,
  serverVersion: '15.18',
};

function hashing(onDone: (sha256: string, bytes: number) => void): Transform {
  const hash = createHash('sha256');
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
    flush(callback) {
      onDone(hash.digest('hex'), bytes);
      callback();
    },
  });
}

export interface FakeTools extends DatabaseTools {
  /** The plain bytes the next dump writes (random 4 KiB by default). */
  nextDump?: Buffer;
  /** Every stored dump a restore was asked to read, and the plaintext it got. */
  restores: { dump: StoredDump; plain: Buffer; databaseUrl: string }[];
}

export function fakeTools(envelope: Envelope): FakeTools {
  const read = async (dump: StoredDump): Promise<Buffer> => {
    let storedSha256 = '';
    const plain: Buffer[] = [];
    await pipeline(
      await dump.store.getStream(dump.key),
      hashing((sha) => {
        storedSha256 = sha;
      }),
      envelope.decryptStream(dump.encryptionContext),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          plain.push(chunk);
          callback();
        },
      }),
    );
    if (storedSha256 !== dump.storedSha256) {
      throw new ChecksumMismatchError(
        `${dump.key}: stored SHA-256 ${storedSha256}, manifest ${dump.storedSha256}`,
      );
    }
    return Buffer.concat(plain);
  };
  const tools: FakeTools = {
    restores: [],
    async identifySource(target: string): Promise<SourceIdentity> {
      return { ...FAKE_SOURCE, endpoint: `fake:5432/${target}` };
    },
    async identifyDatabase(databaseUrl: string): Promise<SourceIdentity> {
      return { ...FAKE_SOURCE, endpoint: databaseUrl };
    },
    async dump(request: DumpRequest, store: ObjectStore): Promise<DumpOutcome> {
      const plain = tools.nextDump ?? randomBytes(4096);
      let stored = { sha: '', bytes: 0 };
      await store.putStream(
        request.key,
        Readable.from([plain])
          .pipe(envelope.encryptStream(request.encryptionContext))
          .pipe(
            hashing((sha, bytes) => {
              stored = { sha, bytes };
            }),
          ),
        { retainUntil: request.retainUntil, createOnly: request.createOnly },
      );
      return {
        plainBytes: plain.length,
        plainSha256: createHash('sha256').update(plain).digest('hex'),
        storedBytes: stored.bytes,
        storedSha256: stored.sha,
        durationMs: 1,
        compression: 'gzip:6',
        compressedBy: 'pg_dump',
        archiveBytes: plain.length,
        pgDumpVersion: '15.18',
        serverVersion: '15.18',
        endpointRole: 'replica',
        replicaLagSeconds: 0,
        contents: { tableCounts: { realm: 1 }, schemaDigest: 'd', realms: ['master'], keyFingerprints: {} },
      };
    },
    async verifyStored(dump) {
      const plain = await read(dump);
      return { storedBytes: 0, plainBytes: plain.length, durationMs: 1 };
    },
    async listArchive(dump) {
      await read(dump);
      return { tocEntries: 1, durationMs: 1 };
    },
    async restore(dump, databaseUrl) {
      const plain = await read(dump);
      tools.restores.push({ dump, plain, databaseUrl });
      return { durationMs: 1, plainBytes: plain.length };
    },
    async verifyKeycloak() {
      return { keycloakVersion: '26.0.8', passed: true, checks: [] };
    },
    async readRealmKeys() {
      throw new Error('no realm keys in the fake tools');
    },
    async disableKeyComponents() {
      return 0;
    },
    async withScratchDatabase(name, use) {
      return use(`postgres://scratch/${name}`);
    },
  };
  return tools;
}
