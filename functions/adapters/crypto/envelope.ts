// Streaming envelope encryption with the AWS Encryption SDK: key-committing suite, no signature, 1 MiB frames.
import type { Duplex, Transform } from 'node:stream';
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  type KeyringNode,
  type MessageHeader,
} from '@aws-crypto/client-node';
import { DecryptionFailedError, isKeycloakBackupError, KeyUnavailableError } from '../../core/errors.js';
import type { EncryptionDescription, Envelope } from '../../core/ports.js';

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
}

/**
 * Envelope over any ESDK keyring (KMS multi-region on AWS, raw AES locally).
 * The ESDK's streams are Duplex (duplexify) rather than Transform; they behave as transforms in a pipeline.
 */
export class EsdkEnvelope implements Envelope {
  private readonly keyring: KeyringNode;
  private readonly keyIds: string[];

  constructor(options: EsdkEnvelopeOptions) {
    this.keyring = options.keyring;
    this.keyIds = [...options.keyIds];
  }

  encryptStream(context: Record<string, string>): Transform {
    const stream = client.encryptStream(this.keyring, {
      suiteId: SUITE_ID,
      frameLength: FRAME_LENGTH,
      encryptionContext: { ...context },
    });
    mapErrors(stream, (error) =>
      isKeyProblem(error)
        ? new KeyUnavailableError(`cannot get a data key to encrypt: ${messageOf(error)}`, {
            cause: error,
            hint: 'check that the key exists, is enabled, and that this role may use it',
          })
        : error,
    );
    return stream as unknown as Transform;
  }

  decryptStream(expectedContext: Record<string, string>): Transform {
    // Unsigned only: our suite has no signature, so a signed message was not written by this pipeline.
    // maxBodySize bounds what one frame may make us buffer before it is authenticated.
    const stream = client.decryptUnsignedMessageStream(this.keyring, { maxBodySize: FRAME_LENGTH });
    mapErrors(stream, (error) =>
      error instanceof DecryptionFailedError
        ? error
        : new DecryptionFailedError(`decryption failed: ${messageOf(error)}`, {
            cause: error,
            hint: DECRYPT_HINT,
          }),
    );
    stream.once('MessageHeader', (header: MessageHeader) => {
      const missing = contextMismatches(header.encryptionContext, expectedContext);
      if (missing.length > 0) {
        stream.destroy(
          new DecryptionFailedError(
            `the encrypted message's context does not match the expected entries: ${missing.join(', ')}`,
            { hint: 'the object belongs to another backup or target than the one asked for' },
          ),
        );
      }
    });
    return stream as unknown as Transform;
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
 * Every error the ESDK stream reports goes through its own emit('error') (duplexify's destroy and the inner
 * pipeline's callback both end there): translating at that one point names the failure for the pipeline.
 */
function mapErrors(stream: Duplex, translate: (error: unknown) => unknown): void {
  const emit = stream.emit.bind(stream);
  stream.emit = ((event: string | symbol, ...args: unknown[]) => {
    if (event === 'error' && !isKeycloakBackupError(args[0]) && !isPrematureClose(args[0])) {
      return emit('error', translate(args[0]));
    }
    return emit(event, ...args);
  }) as Duplex['emit'];
}

/** A pipeline tearing down after another stage failed is not the envelope's failure. */
function isPrematureClose(error: unknown): boolean {
  return (error as { code?: string } | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
}

function isKeyProblem(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name ?? '';
  return /KMS|AccessDenied|NotFound|Disabled|KeyUnavailable|InvalidKeyUsage/i.test(name);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
