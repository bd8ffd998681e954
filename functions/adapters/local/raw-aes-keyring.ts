// The local keyring: a raw AES-256 key (read from the key file by key-file.ts) wrapping each data key.
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/client-node';
import { ConfigurationError } from '../../core/errors.js';

export const LOCAL_KEY_NAMESPACE = 'keycloak-backup';
export const LOCAL_KEY_NAME = 'local-key';
/** The key id recorded in manifests for the local key. */
export const LOCAL_KEY_ID = `${LOCAL_KEY_NAMESPACE}/${LOCAL_KEY_NAME}`;

export function localKeyring(keyBytes: Uint8Array): RawAesKeyringNode {
  if (keyBytes.length !== 32) {
    throw new ConfigurationError(`the local key must be 32 bytes (AES-256), got ${keyBytes.length}`, {
      hint: 'point KB_LOCAL_KEY_FILE at the key file the local stack created, or remove it to create a new one',
    });
  }
  return new RawAesKeyringNode({
    keyNamespace: LOCAL_KEY_NAMESPACE,
    keyName: LOCAL_KEY_NAME,
    // A copy, so the caller may wipe its own buffer.
    unencryptedMasterKey: Uint8Array.from(keyBytes),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
}
