// Streams an object from one store into another (the DR copy), verifying its SHA-256 before the upload completes.
import { pipeline } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { ChecksumMismatchError, ObjectExistsError } from '../core/errors.js';
import type { CopyObject, ObjectStore } from '../core/ports.js';
import { DigestStage } from './streams.js';

/**
 * The digest stage fails at the end of the stream on a mismatch, before the multipart upload completes, so a
 * corrupted copy aborts the upload and leaves nothing. The bytes stay ciphertext: the DR key can decrypt them
 * because every data key is wrapped under both regions' keys. A copy never replaces an object: it is written
 * create-only, and an object already at the key (a retried or replayed copy, or one that won a race) is read and
 * accepted only when it has the expected SHA-256; any other is ChecksumMismatchError and stays as it is.
 */
export const copyObjectVerified: CopyObject = async ({ from, to, key, expectedSha256, retainUntil }) => {
  if (await to.head(key)) return checkExisting(to, key, expectedSha256);
  const source = await from.getStream(key);
  const digest = new DigestStage({ expectSha256: expectedSha256, objectKey: `${to.bucket}/${key}` });
  // pipeline destroys both stages on an error in either, so the upload reading `digest` sees it and aborts.
  pipeline(source, digest, () => undefined);
  try {
    return await to.putStream(key, digest, { retainUntil, createOnly: true });
  } catch (error) {
    // A store may refuse without reading the body to its end: the source's connection is let go either way.
    digest.destroy();
    if (error instanceof ObjectExistsError) return checkExisting(to, key, expectedSha256);
    throw error;
  }
};

/** The object already at `key` counts as the copy only when its bytes hash to `expectedSha256`. */
async function checkExisting(
  store: ObjectStore,
  key: string,
  expectedSha256: string,
): Promise<{ bytes: number }> {
  const digest = new DigestStage({ expectSha256: expectedSha256, objectKey: `${store.bucket}/${key}` });
  try {
    await pipelineAsync(await store.getStream(key), digest, async (chunks: AsyncIterable<Buffer>) => {
      for await (const _ of chunks);
    });
  } catch (error) {
    if (!(error instanceof ChecksumMismatchError)) throw error;
    throw new ChecksumMismatchError(
      `${store.bucket} already holds another object at ${key}, which is left in place (a copy never replaces one): ${error.message}`,
      { cause: error, hint: 'find out who wrote it; the backup itself is intact in the primary region' },
    );
  }
  return { bytes: digest.bytes };
}
