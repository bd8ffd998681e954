// One conformance suite for every ObjectStore: the in-memory fake and S3ObjectStore must keep the same contract.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ObjectChangedError, ObjectExistsError, ObjectNotFoundError } from '../../functions/core/errors.js';
import type { ObjectStore } from '../../functions/core/ports.js';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

async function listKeys(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of store.list(prefix)) keys.push(object.key);
  return keys;
}

/** A body that yields `good` bytes and then fails, as a dump that dies half-way does. */
function failingBody(good: Buffer): Readable {
  return Readable.from(
    (async function* () {
      yield good;
      throw new Error('the producer died');
    })(),
  );
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * Registers the contract tests. `open` gives a store over an empty bucket (or one whose keys the tests do not
 * reuse: every test works under its own prefix). `largeBytes` is big enough to force a multipart upload.
 */
export function objectStoreContract(
  name: string,
  open: () => ObjectStore,
  options: { largeBytes: number },
): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let run = 0;
    const prefix = () => `contract-${Date.now().toString(36)}-${(run++).toString(36)}/`;

    it('returns the bytes a stream stored, and counts them', async () => {
      const store = open();
      const key = `${prefix()}small.bin`;
      const body = randomBytes(1000);
      await expect(store.putStream(key, Readable.from([body]))).resolves.toEqual({ bytes: 1000 });
      expect(sha256(await readAll(await store.getStream(key)))).toBe(sha256(body));
      expect(await store.head(key)).toMatchObject({ key, size: 1000 });
    });

    it('stores a body larger than a part whole (multipart where the store uses it)', async () => {
      const store = open();
      const key = `${prefix()}large.bin`;
      const body = randomBytes(options.largeBytes);
      const chunks = [body.subarray(0, 7), body.subarray(7, 1_000_003), body.subarray(1_000_003)];
      await expect(store.putStream(key, Readable.from(chunks))).resolves.toEqual({ bytes: body.length });
      expect(sha256(await readAll(await store.getStream(key)))).toBe(sha256(body));
    });

    it('stores an empty body as an empty object', async () => {
      const store = open();
      const key = `${prefix()}empty.bin`;
      await expect(store.putStream(key, Readable.from([]))).resolves.toEqual({ bytes: 0 });
      expect((await readAll(await store.getStream(key))).length).toBe(0);
    });

    it('leaves nothing behind when the body fails, and says why', async () => {
      const store = open();
      const base = prefix();
      const key = `${base}failed.bin`;
      await expect(store.putStream(key, failingBody(randomBytes(options.largeBytes)))).rejects.toThrow(
        /the producer died/,
      );
      expect(await store.head(key)).toBeUndefined();
      expect(await listKeys(store, base)).toEqual([]);
      await expect(store.getStream(key)).rejects.toBeInstanceOf(ObjectNotFoundError);
    });

    it('round-trips JSON', async () => {
      const store = open();
      const key = `${prefix()}manifest.json`;
      const value = { a: 1, b: ['x', null], c: { d: 'é' } };
      await store.putJson(key, value);
      expect(await store.getJson(key)).toEqual(value);
    });

    it('throws ObjectNotFoundError for a missing key on getStream and getJson, and head answers undefined', async () => {
      const store = open();
      const key = `${prefix()}missing`;
      await expect(store.getStream(key)).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(store.getJson(key)).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(store.head(key)).resolves.toBeUndefined();
    });

    it('refuses to read an object that is not JSON as JSON', async () => {
      const store = open();
      const key = `${prefix()}truncated.json`;
      await store.putStream(key, Readable.from([Buffer.from('{"manifestVersion": 1, "backupId"')]));
      await expect(store.getJson(key)).rejects.toThrow(/not JSON/);
    });

    it('lists exactly the keys under a prefix, in key order, with their sizes', async () => {
      const store = open();
      const base = prefix();
      for (const [key, size] of [
        ['b/2', 2],
        ['a/1', 1],
        ['b/10', 10],
      ] as const) {
        await store.putStream(`${base}${key}`, Readable.from([Buffer.alloc(size)]));
      }
      await store.putStream(`${base.slice(0, -1)}x/other`, Readable.from([Buffer.alloc(1)]));
      const listed = [];
      for await (const object of store.list(`${base}b/`)) listed.push([object.key, object.size]);
      expect(listed).toEqual([
        [`${base}b/10`, 10],
        [`${base}b/2`, 2],
      ]);
      expect(await listKeys(store, base)).toEqual([`${base}a/1`, `${base}b/10`, `${base}b/2`]);
    });

    it('overwrites an object in place', async () => {
      const store = open();
      const key = `${prefix()}manifest.json`;
      await store.putJson(key, { v: 1 });
      await store.putJson(key, { v: 2 });
      expect(await store.getJson(key)).toEqual({ v: 2 });
    });

    it("replaces an object with an If-Match write only while it has the ETag read, keeping the other writer's object", async () => {
      const store = open();
      const key = `${prefix()}manifest.json`;
      await store.putJson(key, { v: 1 });
      const read = await store.getJsonWithEtag(key);
      expect(read.value).toEqual({ v: 1 });
      expect(read.etag).toMatch(/^"[0-9a-f]{32}"$/);
      // Two writers read version 1; the first to write wins, the second finds it changed.
      await store.putJson(key, { v: 2, by: 'first' }, { ifMatch: read.etag });
      await expect(store.putJson(key, { v: 2, by: 'second' }, { ifMatch: read.etag })).rejects.toBeInstanceOf(
        ObjectChangedError,
      );
      const now = await store.getJsonWithEtag(key);
      expect(now.value).toEqual({ v: 2, by: 'first' });
      expect(now.etag).not.toBe(read.etag);
      await store.putJson(key, { v: 3 }, { ifMatch: now.etag });
      expect(await store.getJson(key)).toEqual({ v: 3 });
      await expect(
        store.putJson(`${prefix()}absent.json`, { v: 1 }, { ifMatch: read.etag }),
      ).rejects.toBeInstanceOf(ObjectNotFoundError);
      expect(await listKeys(store, key)).toEqual([key]);
    });

    it('lets exactly one of racing If-Match writes of the same version win', async () => {
      const store = open();
      const key = `${prefix()}raced.json`;
      await store.putJson(key, { v: 0 });
      const { etag } = await store.getJsonWithEtag(key);
      const results = await Promise.allSettled(
        [1, 2, 3, 4].map((v) => store.putJson(key, { v }, { ifMatch: etag })),
      );
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i + 1] : []));
      expect(won).toHaveLength(1);
      for (const result of results) {
        if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(ObjectChangedError);
      }
      expect(await store.getJson(key)).toEqual({ v: won[0] });
    });

    it('creates with a create-only write where the key is free, and refuses one where it is taken, keeping the object', async () => {
      const store = open();
      const base = prefix();
      await store.putJson(`${base}claim.json`, { owner: 'first' }, { createOnly: true });
      await expect(
        store.putJson(`${base}claim.json`, { owner: 'second' }, { createOnly: true }),
      ).rejects.toBeInstanceOf(ObjectExistsError);
      expect(await store.getJson(`${base}claim.json`)).toEqual({ owner: 'first' });

      const first = randomBytes(1000);
      await store.putStream(`${base}small.bin`, Readable.from([first]), { createOnly: true });
      await expect(
        store.putStream(`${base}small.bin`, Readable.from([randomBytes(1000)]), { createOnly: true }),
      ).rejects.toBeInstanceOf(ObjectExistsError);
      expect(sha256(await readAll(await store.getStream(`${base}small.bin`)))).toBe(sha256(first));
    });

    it('refuses a create-only multipart upload over an existing object, keeping it and leaving nothing else', async () => {
      const store = open();
      const base = prefix();
      const key = `${base}dump.bin`;
      const first = randomBytes(options.largeBytes);
      await store.putStream(key, Readable.from([first]), { createOnly: true });
      await expect(
        store.putStream(key, Readable.from([randomBytes(options.largeBytes)]), { createOnly: true }),
      ).rejects.toBeInstanceOf(ObjectExistsError);
      expect(sha256(await readAll(await store.getStream(key)))).toBe(sha256(first));
      expect(await listKeys(store, base)).toEqual([key]);
    });

    it('lets exactly one of racing create-only writes of a free key win, and stores the winner whole', async () => {
      const store = open();
      const key = `${prefix()}raced.bin`;
      const bodies = [0, 1, 2].map(() => randomBytes(options.largeBytes));
      const results = await Promise.allSettled(
        bodies.map((body) => store.putStream(key, Readable.from([body]), { createOnly: true })),
      );
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      for (const result of results) {
        if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(ObjectExistsError);
      }
      expect(sha256(await readAll(await store.getStream(key)))).toBe(sha256(bodies[won[0]!]!));
    });

    it('deletes what it is asked to, and a missing key is no error', async () => {
      const store = open();
      const base = prefix();
      await store.putJson(`${base}keep`, 1);
      await store.putJson(`${base}drop`, 2);
      await store.deleteObjects([`${base}drop`, `${base}never-there`]);
      await store.deleteObjects([]);
      expect(await listKeys(store, base)).toEqual([`${base}keep`]);
    });
  });
}
