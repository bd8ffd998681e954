// The AWS keyring: every data key wrapped under the primary-region KMS key and the DR-region key, plus a key preflight.
import { createHash } from 'node:crypto';
import { KmsKeyringNode } from '@aws-crypto/client-node';
import { DescribeKeyCommand, KMS } from '@aws-sdk/client-kms';
import { ConfigurationError, KeyUnavailableError } from '../../core/errors.js';
import { callAws, describeAwsError, isAwsError } from './errors.js';
import { KMS_HTTP_TIMEOUTS } from './http-timeouts.js';

const KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:key\/[A-Za-z0-9-]+$/;

export interface KmsKeysOptions {
  /** Full key ARN in the primary region: it generates each data key. */
  primaryKeyArn: string;
  /** Full key ARN in the DR region: it wraps a second copy of each data key. */
  drKeyArn: string;
  /**
   * Clients for the two key regions (tests hand in mocked ones); created from the key ARNs' regions otherwise.
   * The aggregated `KMS` client, because the ESDK calls it by method (generateDataKey, encrypt, decrypt).
   */
  primaryClient?: KMS;
  drClient?: KMS;
}

/** The region a KMS key ARN names; the keyring needs full key ARNs (aliases cannot be matched on decrypt). */
export function regionOfKeyArn(keyArn: string): string {
  const match = KEY_ARN.exec(keyArn);
  if (!match) {
    throw new ConfigurationError(`"${keyArn}" is not a KMS key ARN`, {
      hint: 'set KB_KMS_KEY_ID and KB_DR_KMS_KEY_ID to full key ARNs (arn:aws:kms:<region>:<account>:key/<id>), not aliases',
    });
  }
  return match[1]!;
}

/**
 * Both KMS keys of the pipeline. Encryption calls GenerateDataKey on the primary key and Encrypt on the DR key, so
 * each message carries two encrypted data keys and either region alone can decrypt it: decryption asks the client
 * of the key's own region, and moves on to the other key when one region does not answer.
 */
export class KmsKeys {
  readonly keyring: KmsKeyringNode;
  readonly primaryKeyArn: string;
  readonly drKeyArn: string;
  private readonly clients: Map<string, KMS>;

  constructor(options: KmsKeysOptions) {
    const primaryRegion = regionOfKeyArn(options.primaryKeyArn);
    const drRegion = regionOfKeyArn(options.drKeyArn);
    if (options.primaryKeyArn === options.drKeyArn || primaryRegion === drRegion) {
      throw new ConfigurationError('the primary and DR KMS keys must be in two different regions', {
        hint: 'KB_DR_KMS_KEY_ID is the key of the DR stack, in KB_DR_REGION',
      });
    }
    this.primaryKeyArn = options.primaryKeyArn;
    this.drKeyArn = options.drKeyArn;
    this.clients = new Map([
      [
        primaryRegion,
        options.primaryClient ?? new KMS({ region: primaryRegion, requestHandler: KMS_HTTP_TIMEOUTS }),
      ],
      [drRegion, options.drClient ?? new KMS({ region: drRegion, requestHandler: KMS_HTTP_TIMEOUTS })],
    ]);
    const clients = this.clients;
    this.keyring = new KmsKeyringNode({
      generatorKeyId: options.primaryKeyArn,
      keyIds: [options.drKeyArn],
      // The ESDK asks for a client by the region in the key ARN; a region we have no key in gets none (skipped).
      clientProvider: (region: string) => clients.get(region) ?? false,
    });
  }

  /**
   * A keyring that decrypts with the DR key alone (it cannot encrypt): the drill reads the DR copy of a dump with it,
   * so a passed drill proves the DR region can decrypt its backups without the primary key.
   */
  drOnlyKeyring(): KmsKeyringNode {
    const clients = this.clients;
    return new KmsKeyringNode({
      keyIds: [this.drKeyArn],
      clientProvider: (region: string) => clients.get(region) ?? false,
    });
  }

  /** The key ARNs data keys are wrapped under, for the manifest. */
  get keyIds(): string[] {
    return [this.primaryKeyArn, this.drKeyArn];
  }

  /** Identifies the pair of keys (KMS keys never leave KMS: their ARNs are their identity), for the manifest. */
  get fingerprint(): string {
    return createHash('sha256').update(this.keyIds.join('\n')).digest('hex').slice(0, 32);
  }

  /** Preflight: both keys exist, are enabled and not pending deletion. Throws KeyUnavailableError naming the key. */
  async checkKeysEnabled(): Promise<void> {
    for (const keyArn of this.keyIds) {
      const client = this.clients.get(regionOfKeyArn(keyArn))!;
      const { KeyMetadata } = await callAws(
        'kms:DescribeKey',
        () => client.send(new DescribeKeyCommand({ KeyId: keyArn })),
        (error) =>
          isAwsError(error, 'NotFound', 'AccessDenied', 'InvalidArn', 'KMSInvalidState')
            ? new KeyUnavailableError(`KMS key ${keyArn} cannot be described: ${describeAwsError(error)}`, {
                cause: error,
                hint: 'check that the key exists in its region and that this role may call kms:DescribeKey on it',
              })
            : undefined,
      );
      const state = KeyMetadata?.KeyState;
      if (!KeyMetadata?.Enabled || state !== 'Enabled') {
        const pending = state === 'PendingDeletion' || state === 'PendingReplicaDeletion';
        throw new KeyUnavailableError(`KMS key ${keyArn} is not usable: state ${state ?? 'unknown'}`, {
          hint: pending
            ? 'the key is scheduled for deletion: cancel the deletion (kms cancel-key-deletion) and enable it, or no backup can be decrypted'
            : 'enable the key (kms enable-key); backups wrapped under it need it to be decrypted',
        });
      }
    }
  }
}
