// Two regions' KMS keys for unit tests (aws-sdk-client-mock): stand-in keys that wrap by prefixing a marker, and
// the envelope over them as the AWS wiring builds it.
import { randomBytes } from 'node:crypto';
import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand, type KMS } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { KmsKeys } from '../../functions/adapters/aws/kms-keyring.js';
import { EsdkEnvelope } from '../../functions/adapters/crypto/envelope.js';

export const PRIMARY_KEY = 'arn:aws:kms:eu-west-1:111122223333:key/1111aaaa-1111-aaaa-1111-aaaa1111aaaa';
export const DR_KEY = 'arn:aws:kms:eu-central-1:111122223333:key/2222bbbb-2222-bbbb-2222-bbbb2222bbbb';

/** A stand-in KMS key: "wraps" by prefixing a marker, so each region unwraps only what it wrapped. */
export function fakeKms(client: KMS, keyArn: string) {
  const mock = mockClient(client);
  const marker = Buffer.from(keyArn);
  mock.on(GenerateDataKeyCommand).callsFake((input: { NumberOfBytes?: number }) => {
    const plaintext = randomBytes(input.NumberOfBytes ?? 32);
    return { KeyId: keyArn, Plaintext: plaintext, CiphertextBlob: Buffer.concat([marker, plaintext]) };
  });
  mock.on(EncryptCommand).callsFake((input: { Plaintext: Uint8Array }) => ({
    KeyId: keyArn,
    CiphertextBlob: Buffer.concat([marker, Buffer.from(input.Plaintext)]),
  }));
  mock.on(DecryptCommand).callsFake((input: { CiphertextBlob: Uint8Array }) => ({
    KeyId: keyArn,
    Plaintext: Buffer.from(input.CiphertextBlob).subarray(marker.length),
  }));
  return mock;
}

/** The keys PRIMARY_KEY and DR_KEY through these clients, and the envelope that wraps under both. */
export function kmsEnvelope(primary: KMS, dr: KMS): { keys: KmsKeys; envelope: EsdkEnvelope } {
  const keys = new KmsKeys({
    primaryKeyArn: PRIMARY_KEY,
    drKeyArn: DR_KEY,
    primaryClient: primary,
    drClient: dr,
  });
  const envelope = new EsdkEnvelope({
    keyring: keys.keyring,
    keyIds: keys.keyIds,
    fingerprint: keys.fingerprint,
  });
  return { keys, envelope };
}
