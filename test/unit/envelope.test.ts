import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { EsdkEnvelope, FRAME_LENGTH, SUITE_NAME } from '../../functions/adapters/crypto/envelope.js';
import { localKeyFingerprint } from '../../functions/adapters/local/key-file.js';
import { LOCAL_KEY_ID, localKeyring } from '../../functions/adapters/local/raw-aes-keyring.js';
import { ConfigurationError, DecryptionFailedError } from '../../functions/core/errors.js';

const context = { target: 'kc', backupId: '20260101T0000Z' };

function envelope(key = randomBytes(32)) {
  return new EsdkEnvelope({
    keyring: localKeyring(key),
    keyIds: [LOCAL_KEY_ID],
    fingerprint: localKeyFingerprint(key),
  });
}

async function run(input: Buffer, stream: NodeJS.ReadWriteStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(
    Readable.from([input]),
    stream,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(chunks);
}

describe('EsdkEnvelope', () => {
  it('round-trips several frames of data and the ciphertext reveals none of it', async () => {
    const key = randomBytes(32);
    const plain = Buffer.concat([
      Buffer.from('PGDMP CREATE TABLE public.user_entity'),
      randomBytes(2.5 * FRAME_LENGTH),
    ]);

    const sealed = await run(plain, envelope(key).encryptStream(context));
    const opened = await run(sealed, envelope(key).decryptStream(context));

    expect(opened.equals(plain)).toBe(true);
    expect(sealed.subarray(0, 5).toString()).not.toBe('PGDMP');
    expect(sealed.includes(Buffer.from('CREATE TABLE'))).toBe(false);
    expect(sealed.length).toBeGreaterThan(plain.length);
  });

  it('fails with DecryptionFailedError under a different key', async () => {
    const sealed = await run(Buffer.from('secret'), envelope().encryptStream(context));
    const failure = await run(sealed, envelope().decryptStream(context)).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DecryptionFailedError);
    expect((failure as DecryptionFailedError).hint).toBeTruthy();
  });

  it('fails with DecryptionFailedError when an expected context entry is missing or different', async () => {
    const key = randomBytes(32);
    const sealed = await run(Buffer.from('secret'), envelope(key).encryptStream(context));

    const other = await run(sealed, envelope(key).decryptStream({ ...context, backupId: 'another' })).catch(
      (error: unknown) => error,
    );
    const extra = await run(sealed, envelope(key).decryptStream({ ...context, region: 'eu-west-1' })).catch(
      (error: unknown) => error,
    );

    expect(other).toBeInstanceOf(DecryptionFailedError);
    expect((other as Error).message).toContain('backupId');
    expect((other as Error).message).not.toContain('another'); // names, never values
    expect(extra).toBeInstanceOf(DecryptionFailedError);
  });

  it('accepts a subset of the context as the expectation', async () => {
    const key = randomBytes(32);
    const sealed = await run(Buffer.from('secret'), envelope(key).encryptStream(context));
    const opened = await run(sealed, envelope(key).decryptStream({ target: 'kc' }));
    expect(opened.toString()).toBe('secret');
  });

  it('fails with DecryptionFailedError when one byte of the body changed', async () => {
    const key = randomBytes(32);
    const sealed = await run(randomBytes(100_000), envelope(key).encryptStream(context));
    sealed[sealed.length - 5000]! ^= 0x01;
    const failure = await run(sealed, envelope(key).decryptStream(context)).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DecryptionFailedError);
  });

  it('fails with DecryptionFailedError when the message is cut short', async () => {
    const key = randomBytes(32);
    const sealed = await run(randomBytes(3 * FRAME_LENGTH), envelope(key).encryptStream(context));
    const failure = await run(
      sealed.subarray(0, FRAME_LENGTH + 1000),
      envelope(key).decryptStream(context),
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DecryptionFailedError);
  });

  it('lets a pipeline fail in the middle of a message without an uncaught error', async () => {
    let pushed = 0;
    const source = new Readable({
      read() {
        if (pushed < 3) {
          pushed += 1;
          this.push(randomBytes(FRAME_LENGTH));
        } else this.destroy(new Error('upstream failed'));
      },
    });

    const failure = await run(Buffer.alloc(0), envelope().encryptStream(context))
      .then(() =>
        pipeline(source, envelope().encryptStream(context), new Writable({ write: (_c, _e, cb) => cb() })),
      )
      .catch((error: unknown) => error);
    // The ESDK's own inner pipeline used to throw 'Premature close' out of band here; give it time to.
    await new Promise((resolve) => setTimeout(resolve, 100));

    expect((failure as Error).message).toBe('upstream failed');
  });

  it('describes its suite, frame length and key ids for the manifest', () => {
    expect(envelope().describe()).toEqual({
      suite: SUITE_NAME,
      frameLength: 1024 * 1024,
      keyIds: [LOCAL_KEY_ID],
    });
  });

  it('passes the preflight with a usable key', async () => {
    await expect(envelope().checkUsable()).resolves.toBeUndefined();
  });
});

describe('localKeyring', () => {
  it('refuses a key that is not 32 bytes', () => {
    expect(() => localKeyring(randomBytes(16))).toThrow(ConfigurationError);
  });
});
