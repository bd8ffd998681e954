import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMS,
} from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { KmsKeys, regionOfKeyArn } from '../../functions/adapters/aws/kms-keyring.js';
import { encryptionContextFor } from '../../functions/core/backup.js';
import {
  ConfigurationError,
  KeyUnavailableError,
  ManifestTamperedError,
  TransientError,
} from '../../functions/core/errors.js';
import { manifestKey } from '../../functions/core/layout.js';
import { readManifest, writeManifest } from '../../functions/core/stored-backups.js';
import { DR_KEY, fakeKms, kmsEnvelope, PRIMARY_KEY } from '../support/fake-kms.js';
import { sampleManifest } from '../support/manifests.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';
import { sdkError, serverError, throttled } from './aws-sdk-errors.js';

const enabled = (arn: string) => ({
  KeyMetadata: { KeyId: arn, Arn: arn, Enabled: true, KeyState: 'Enabled' as const },
});

describe('KmsKeys keyring', () => {
  let primary: KMS;
  let dr: KMS;

  beforeEach(() => {
    // Prepare: one client per key region
    primary = new KMS({ region: 'eu-west-1' });
    dr = new KMS({ region: 'eu-central-1' });
  });

  it('wraps each data key under the primary key (GenerateDataKey) and the DR key (Encrypt)', async () => {
    const primaryMock = fakeKms(primary, PRIMARY_KEY);
    const drMock = fakeKms(dr, DR_KEY);
    const { keys, envelope } = kmsEnvelope(primary, dr);

    // Act
    const encrypted = await buffer(
      Readable.from([Buffer.from('keycloak dump')]).pipe(envelope.encryptStream({ backupId: 'b1' })),
    );

    // Assess
    const generate = primaryMock.commandCalls(GenerateDataKeyCommand);
    expect(generate).toHaveLength(1);
    expect(generate[0]!.args[0].input).toMatchObject({
      KeyId: PRIMARY_KEY,
      EncryptionContext: { backupId: 'b1' },
    });
    const wrap = drMock.commandCalls(EncryptCommand);
    expect(wrap).toHaveLength(1);
    expect(wrap[0]!.args[0].input).toMatchObject({ KeyId: DR_KEY, EncryptionContext: { backupId: 'b1' } });
    expect(drMock.commandCalls(GenerateDataKeyCommand)).toHaveLength(0);
    expect(keys.keyIds).toEqual([PRIMARY_KEY, DR_KEY]);
    expect(encrypted.length).toBeGreaterThan(13);
  });

  it('decrypts with the DR region alone when the primary region fails', async () => {
    // Prepare: encrypt with both regions up
    fakeKms(primary, PRIMARY_KEY);
    const drMock = fakeKms(dr, DR_KEY);
    const { envelope } = kmsEnvelope(primary, dr);
    const encrypted = await buffer(
      Readable.from([Buffer.from('keycloak dump')]).pipe(envelope.encryptStream({ backupId: 'b1' })),
    );
    // the primary region goes down
    mockClient(primary).onAnyCommand().rejects(serverError());

    // Act
    const chunks: Buffer[] = [];
    await pipeline(Readable.from([encrypted]), envelope.decryptStream({ backupId: 'b1' }), async (source) => {
      for await (const chunk of source) chunks.push(chunk as Buffer);
    });

    // Assess
    expect(Buffer.concat(chunks).toString()).toBe('keycloak dump');
    expect(drMock.commandCalls(DecryptCommand)[0]!.args[0].input).toMatchObject({ KeyId: DR_KEY });
  });

  it('refuses aliases and keys in the same region', () => {
    expect(() => regionOfKeyArn('alias/keycloak-backup')).toThrow(ConfigurationError);
    expect(
      () =>
        new KmsKeys({
          primaryKeyArn: PRIMARY_KEY,
          drKeyArn: PRIMARY_KEY.replace('1111aaaa-', '3333cccc-'),
          primaryClient: primary,
          drClient: dr,
        }),
    ).toThrow(/two different regions/);
  });
});

describe('manifests sealed under the KMS keyring', () => {
  const TARGET = 'keycloak';
  const OLDER = '20261122T2300Z';
  const NEWER = '20261123T0000Z';

  function sealedUnderKms() {
    const primary = new KMS({ region: 'eu-west-1' });
    const dr = new KMS({ region: 'eu-central-1' });
    const mocks = { primary: fakeKms(primary, PRIMARY_KEY), dr: fakeKms(dr, DR_KEY) };
    const { keys, envelope } = kmsEnvelope(primary, dr);
    const store = new MemoryObjectStore({ bucket: 'kb-primary' });
    return { mocks, keys, envelope, store, primary };
  }

  it('seals a manifest with a MAC key wrapped under both KMS keys, and verifies it', async () => {
    const { mocks, keys, envelope, store } = sealedUnderKms();

    const sealed = await writeManifest(store, envelope, sampleManifest(TARGET, NEWER));
    const read = await readManifest(store, envelope, TARGET, NEWER);

    expect(read).toEqual(sealed);
    expect(read.authentication?.algorithm).toBe('HMAC-SHA256');
    expect(read.encryption.keyFingerprint).toBe(keys.fingerprint);
    const context = {
      ...encryptionContextFor(TARGET, NEWER),
      'keycloak-backup:purpose': 'manifest-mac',
    };
    const generated = mocks.primary.commandCalls(GenerateDataKeyCommand);
    expect(generated).toHaveLength(1);
    expect(generated[0]!.args[0].input).toMatchObject({ KeyId: PRIMARY_KEY, EncryptionContext: context });
    expect(mocks.dr.commandCalls(EncryptCommand)[0]!.args[0].input).toMatchObject({
      KeyId: DR_KEY,
      EncryptionContext: context,
    });
    // Reading it back unwrapped the MAC key through KMS, with the same binding.
    expect(mocks.primary.commandCalls(DecryptCommand)[0]!.args[0].input).toMatchObject({
      EncryptionContext: context,
    });
  });

  it('verifies it with the DR key alone when the primary region does not answer', async () => {
    const { envelope, store, primary } = sealedUnderKms();
    const sealed = await writeManifest(store, envelope, sampleManifest(TARGET, NEWER));
    mockClient(primary).onAnyCommand().rejects(serverError());

    expect(await readManifest(store, envelope, TARGET, NEWER)).toEqual(sealed);
  });

  it('refuses an edited manifest with ManifestTamperedError', async () => {
    const { envelope, store } = sealedUnderKms();
    const sealed = await writeManifest(store, envelope, sampleManifest(TARGET, NEWER));
    const key = manifestKey(TARGET, NEWER);
    // Prolong its life and mark it verified: what an attacker would do to keep a backup from expiring.
    await store.putJson(key, {
      ...sealed,
      retainUntil: '2036-01-01T00:00:00.000Z',
      verification: [{ at: sealed.finishedAt, level: 'archive', passed: true, checks: [], durationMs: 1 }],
    });

    const error = await readManifest(store, envelope, TARGET, NEWER).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ManifestTamperedError);
    expect((error as Error).message).toMatch(/MAC does not authenticate it/);
  });

  it("refuses a rolled-back manifest (an older backup's, copied over or relabelled) with ManifestTamperedError", async () => {
    const { envelope, store } = sealedUnderKms();
    const older = await writeManifest(store, envelope, sampleManifest(TARGET, OLDER));
    await writeManifest(store, envelope, sampleManifest(TARGET, NEWER));
    const key = manifestKey(TARGET, NEWER);

    // The older manifest as it is, over the newer one: it names another backup.
    await store.putJson(key, older);
    const copied = await readManifest(store, envelope, TARGET, NEWER).catch((e: unknown) => e);
    expect(copied).toBeInstanceOf(ManifestTamperedError);
    expect((copied as Error).message).toContain(`names backup ${OLDER}`);

    // Relabelled as the newer backup (id and dump key rewritten): its MAC key was sealed for the older one.
    await store.putJson(key, {
      ...older,
      backupId: NEWER,
      dump: { ...older.dump, key: sampleManifest(TARGET, NEWER).dump.key },
      encryption: { ...older.encryption, context: encryptionContextFor(TARGET, NEWER) },
    });
    const relabelled = await readManifest(store, envelope, TARGET, NEWER).catch((e: unknown) => e);
    expect(relabelled).toBeInstanceOf(ManifestTamperedError);
    expect((relabelled as Error).message).toMatch(/sealed for another backup \(keycloak-backup:backup-id\)/);
  });
});

describe('KmsKeys.checkKeysEnabled', () => {
  const build = () => {
    const primary = new KMS({ region: 'eu-west-1' });
    const dr = new KMS({ region: 'eu-central-1' });
    return {
      primary: mockClient(primary),
      dr: mockClient(dr),
      keys: new KmsKeys({
        primaryKeyArn: PRIMARY_KEY,
        drKeyArn: DR_KEY,
        primaryClient: primary,
        drClient: dr,
      }),
    };
  };

  it('describes both keys in their own regions and passes when both are enabled', async () => {
    const { primary, dr, keys } = build();
    primary.on(DescribeKeyCommand).resolves(enabled(PRIMARY_KEY));
    dr.on(DescribeKeyCommand).resolves(enabled(DR_KEY));

    await keys.checkKeysEnabled();

    expect(primary.commandCalls(DescribeKeyCommand)[0]!.args[0].input).toEqual({ KeyId: PRIMARY_KEY });
    expect(dr.commandCalls(DescribeKeyCommand)[0]!.args[0].input).toEqual({ KeyId: DR_KEY });
  });

  it('names the DR key when it is pending deletion', async () => {
    const { primary, dr, keys } = build();
    primary.on(DescribeKeyCommand).resolves(enabled(PRIMARY_KEY));
    dr.on(DescribeKeyCommand).resolves({
      KeyMetadata: { KeyId: DR_KEY, Enabled: false, KeyState: 'PendingDeletion' },
    });

    const error = await keys.checkKeysEnabled().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(KeyUnavailableError);
    expect((error as Error).message).toContain(DR_KEY);
    expect((error as KeyUnavailableError).hint).toMatch(/cancel the deletion/);
  });

  it('turns a missing key (NotFoundException) into KeyUnavailableError naming it', async () => {
    const { primary, keys } = build();
    primary.on(DescribeKeyCommand).rejects(sdkError('NotFoundException', 400));

    await expect(keys.checkKeysEnabled()).rejects.toThrow(
      expect.objectContaining({ name: 'KeyUnavailableError', message: expect.stringContaining(PRIMARY_KEY) }),
    );
  });

  it('turns throttling after the SDK retries into TransientError', async () => {
    const { primary, keys } = build();
    primary.on(DescribeKeyCommand).rejects(throttled());

    await expect(keys.checkKeysEnabled()).rejects.toBeInstanceOf(TransientError);
  });
});
