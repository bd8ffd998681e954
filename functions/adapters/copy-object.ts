// Streams an object from one store into another (the DR copy), verifying its SHA-256 before the upload completes.
import { pipeline } from 'node:stream';
import type { CopyObject } from '../core/ports.js';
import { DigestStage } from './streams.js';

/**
 * The digest stage fails at the end of the stream on a mismatch, before the multipart upload completes, so a
 * corrupted copy aborts the upload and leaves nothing. The bytes stay ciphertext: the DR key can decrypt them
 * because every data key is wrapped under both regions' keys.
 */
export const copyObjectVerified: CopyObject = async ({ from, to, key, expectedSha256, retainUntil }) => {
  const source = await from.getStream(key);
  const digest = new DigestStage({ expectSha256: expectedSha256, objectKey: `${to.bucket}/${key}` });
  // pipeline destroys both stages on an error in either, so the upload reading `digest` sees it and aborts.
  pipeline(source, digest, () => undefined);
  return to.putStream(key, digest, { retainUntil });
};
