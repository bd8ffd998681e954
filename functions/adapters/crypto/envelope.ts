// Streaming envelope encryption with the AWS Encryption SDK: key-committing suite, no signature, 1 MiB frames.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Duplex, Transform, type TransformCallback } from 'node:stream';
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  type KeyringNode,
  type MessageHeader,
} from '@aws-crypto/client-node';
import {
  DecryptionFailedError,
  isKeycloakBackupError,
  KeyUnavailableError,
  ManifestTamperedError,
} from '../../core/errors.js';
import type { EncryptionDescription, Envelope, ManifestSeal } from '../../core/ports.js';
import { READ_HIGH_WATER_MARK } from '../streams.js';

export const SUITE_ID = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY;
export const SUITE_NAME = 'ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY';
export const FRAME_LENGTH = 1024 * 1024;
/** Our messages carry one data key per region; a message with many more is not ours (and costs a KMS call each). */
const MAX_ENCRYPTED_DATA_KEYS = 10;

const client = buildClient({
  commitmentPolicy: CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
  maxEncryptedDataKeys: MAX_ENCRYPTED_DATA_KEYS,
});

const DECRYPT_HINT =
  'the object was written under another key or encryption context, or its bytes were changed; check the key configuration and the checksum';

export interface EsdkEnvelopeOptions {
  keyring: KeyringNode;
  /** What the keyring wraps data keys under (KMS key ARNs, or the local key's name), recorded in the manifest. */
  keyIds: string[];
  /** Identifies the key in use without revealing it (local: derived from the key file; AWS: from the key ARNs). */
  fingerprint: string;
}

/** The encryption-context entry that keeps a sealed MAC key from being taken for a dump's data, and back. */
export const MANIFEST_MAC_PURPOSE = { 'keycloak-backup:purpose': 'manifest-mac' } as const;
const MAC_KEY_BYTES = 32;

/**
 * Envelope over any ESDK keyring (KMS multi-region on AWS, raw AES locally).
 */
export class EsdkEnvelope implements Envelope {
  private readonly keyring: KeyringNode;
  private readonly keyIds: string[];
  private readonly fingerprint: string;

  constructor(options: EsdkEnvelopeOptions) {
    this.keyring = options.keyring;
    this.keyIds = [...options.keyIds];
    this.fingerprint = options.fingerprint;
  }

  keyFingerprint(): string {
    return this.fingerprint;
  }

  /**
   * A fresh 256-bit MAC key per manifest, sealed as a message of the keyring (so on AWS both regions' KMS keys wrap
   * it, and either region alone can check the manifest, with the permissions the dumps already need).
   */
  async sealManifest(bytes: Uint8Array, context: Record<string, string>): Promise<ManifestSeal> {
    const macKey = randomBytes(MAC_KEY_BYTES);
    try {
      const { result } = await client.encrypt(this.keyring, macKey, {
        suiteId: SUITE_ID,
        encryptionContext: { ...context, ...MANIFEST_MAC_PURPOSE },
      });
      return {
        algorithm: 'HMAC-SHA256',
        sealedKey: Buffer.from(result).toString('base64'),
        mac: createHmac('sha256', macKey).update(bytes).digest('hex'),
      };
    } catch (error) {
      throw encryptFailure(error);
    } finally {
      macKey.fill(0);
    }
  }

  async openManifestSeal(
    bytes: Uint8Array,
    seal: ManifestSeal,
    context: Record<string, string>,
  ): Promise<void> {
    const tampered = (why: string, cause?: unknown) =>
      new ManifestTamperedError(`the manifest's MAC does not authenticate it: ${why}`, {
        cause,
        hint: 'the manifest was changed after the pipeline wrote it: do not use this backup; inspect who can write to the bucket',
      });
    let opened: Awaited<ReturnType<typeof client.decrypt>>;
    try {
      opened = await client.decrypt(this.keyring, Buffer.from(seal.sealedKey, 'base64'), {
        maxBodySize: MAC_KEY_BYTES,
      });
    } catch (error) {
      // A key service that does not answer (the ESDK's KMS keyring says "had an error") is not an attack; a
      // sealed key that no key of ours opens, or that fails authentication, is.
      if (isKeyProblem(error) || /KMS CMKs had an error/.test(messageOf(error))) {
        throw new KeyUnavailableError(`cannot open the manifest's MAC key: ${messageOf(error)}`, {
          cause: error,
          hint: 'check that the key exists, is enabled, and that this role may decrypt with it',
        });
      }
      throw tampered('its sealed key does not open under the key in use', error);
    }
    const macKey = Buffer.from(opened.plaintext);
    try {
      const wrongContext = contextMismatches(opened.messageHeader.encryptionContext, {
        ...context,
        ...MANIFEST_MAC_PURPOSE,
      });
      if (wrongContext.length > 0)
        throw tampered(`its key was sealed for another backup (${wrongContext.join(', ')})`);
      const expected = createHmac('sha256', macKey).update(bytes).digest();
      const given = Buffer.from(seal.mac, 'hex');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw tampered("the MAC differs from the manifest's content");
      }
    } finally {
      macKey.fill(0);
    }
  }

  encryptStream(context: Record<string, string>): Transform {
    const inner = client.encryptStream(this.keyring, {
      suiteId: SUITE_ID,
      frameLength: FRAME_LENGTH,
      encryptionContext: { ...context },
    });
    // The ESDK pipes its encrypt and signature streams without a callback: destroying them mid-message
    // throws an uncaught 'Premature close'. So a failed pipeline lets the message finish into nowhere instead.
    return new EsdkStage(inner, {
      destroyInnerOnFailure: false,
      translate: encryptFailure,
      highWaterMark: FRAME_LENGTH,
    });
  }

  decryptStream(expectedContext: Record<string, string>): Transform {
    // Unsigned only: our suite has no signature, so a signed message was not written by this pipeline.
    // maxBodySize bounds what one frame may make us buffer before it is authenticated.
    const inner = client.decryptUnsignedMessageStream(this.keyring, { maxBodySize: FRAME_LENGTH });
    const stage = new EsdkStage(inner, {
      destroyInnerOnFailure: true,
      translate: decryptFailure,
      // Its input is the socket's chunks (pg-restore.ts readStages).
      highWaterMark: READ_HIGH_WATER_MARK,
    });
    // The header is authenticated and no plaintext has been released when this fires.
    inner.once('MessageHeader', (header: MessageHeader) => {
      const missing = contextMismatches(header.encryptionContext, expectedContext);
      if (missing.length > 0) {
        stage.destroy(
          new DecryptionFailedError(
            `the encrypted message's context does not match the expected entries: ${missing.join(', ')}`,
            { hint: 'the object belongs to another backup or target than the one asked for' },
          ),
        );
      }
    });
    return stage;
  }

  describe(): EncryptionDescription {
    return { suite: SUITE_NAME, frameLength: FRAME_LENGTH, keyIds: [...this.keyIds] };
  }

  async checkUsable(): Promise<void> {
    const context = { purpose: 'keycloak-backup-preflight' };
    try {
      const { result } = await client.encrypt(this.keyring, Buffer.from('preflight'), {
        suiteId: SUITE_ID,
        encryptionContext: context,
      });
      const { plaintext } = await client.decrypt(this.keyring, result);
      if (plaintext.toString() !== 'preflight') throw new Error('round trip returned other bytes');
    } catch (error) {
      throw new KeyUnavailableError(`the encryption key is not usable: ${messageOf(error)}`, {
        cause: error,
        hint: 'check that the key exists, is enabled, and that this role may encrypt, decrypt and generate data keys with it',
      });
    }
  }
}

/** Expected entries that are absent or different in the message's context (names only, never values). */
export function contextMismatches(
  actual: Readonly<Record<string, string>>,
  expected: Record<string, string>,
): string[] {
  return Object.entries(expected)
    .filter(([name, value]) => actual[name] !== value)
    .map(([name]) => name);
}

/**
 * A real Transform around an ESDK Duplex (duplexify over readable-stream 3): node's pipeline sees one stage
 * with node's semantics, and every failure leaves it already named from the catalogue.
 */
class EsdkStage extends Transform {
  private readonly inner: Duplex;
  private readonly destroyInnerOnFailure: boolean;
  private innerEnded = false;
  private flushed: TransformCallback | undefined;

  constructor(
    inner: Duplex,
    options: { destroyInnerOnFailure: boolean; translate: (error: unknown) => Error; highWaterMark: number },
  ) {
    super({ highWaterMark: options.highWaterMark });
    this.inner = inner;
    this.destroyInnerOnFailure = options.destroyInnerOnFailure;
    inner.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) inner.pause();
    });
    inner.once('end', () => {
      this.innerEnded = true;
      const flushed = this.flushed;
      this.flushed = undefined;
      flushed?.();
    });
    inner.on('error', (error: unknown) => {
      this.innerEnded = true;
      this.destroy(options.translate(error));
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.inner.write(chunk)) callback();
    else this.inner.once('drain', () => callback());
  }

  override _flush(callback: TransformCallback): void {
    this.flushed = callback;
    this.inner.end();
  }

  override _read(size: number): void {
    this.inner.resume();
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.innerEnded) {
      const inner = this.inner;
      inner.removeAllListeners('data');
      inner.on('error', () => undefined);
      if (this.destroyInnerOnFailure) inner.destroy();
      else {
        inner.resume();
        inner.end();
      }
    }
    callback(error);
  }
}

function encryptFailure(error: unknown): Error {
  if (isKeycloakBackupError(error)) return error;
  if (isKeyProblem(error)) {
    return new KeyUnavailableError(`cannot get a data key to encrypt: ${messageOf(error)}`, {
      cause: error,
      hint: 'check that the key exists, is enabled, and that this role may use it',
    });
  }
  return error instanceof Error ? error : new Error(String(error));
}

function decryptFailure(error: unknown): Error {
  if (isKeycloakBackupError(error)) return error;
  return new DecryptionFailedError(`decryption failed: ${messageOf(error)}`, {
    cause: error,
    hint: DECRYPT_HINT,
  });
}

function isKeyProblem(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name ?? '';
  return /KMS|AccessDenied|NotFound|Disabled|KeyUnavailable|InvalidKeyUsage/i.test(name);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
