// An in-memory ObjectStore that keeps the port's contract (test/integration/object-store-contract.test.ts proves it).
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectChangedError, ObjectExistsError, ObjectNotFoundError } from '../../functions/core/errors.js';
import type { ObjectStore, PutOptions, StoredObject } from '../../functions/core/ports.js';

interface MemoryObject {
  body: Buffer;
  lastModified: Date;
  retainUntil?: Date;
}

/**
 * Objects in a Map, listed in key order as S3 lists them. A failed body stream stores nothing (an aborted
 * multipart upload); a missing key is ObjectNotFoundError; what is stored is a copy, so later changes to a
 * caller's buffer or object do not reach it. A create-only write finds the key free or fails with ObjectExistsError
 * when its body has been read, as S3 checks at completion, and the check and the store are one synchronous step,
 * so of two racing writes exactly one wins; a replace-if-unchanged write (ifMatch) likewise compares the ETag (the
 * body's quoted MD5, as S3 gives for a single PUT) and stores in one step. `now` sets the time objects are stamped with.
 */
export class MemoryObjectStore implements ObjectStore {
  readonly bucket: string;
  readonly region: string;
  private readonly objects = new Map<string, MemoryObject>();
  private readonly now: () => Date;

  constructor(options: { bucket?: string; region?: string; now?: () => Date } = {}) {
    this.bucket = options.bucket ?? 'kb-memory';
    this.region = options.region ?? 'eu-west-1';
    this.now = options.now ?? (() => new Date());
  }

  async putStream(key: string, body: Readable, options: PutOptions = {}): Promise<{ bytes: number }> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array));
    } catch (error) {
      if (!body.destroyed) body.destroy(error as Error);
      throw error;
    }
    const stored = Buffer.concat(chunks);
    this.set(key, stored, options);
    return { bytes: stored.length };
  }

  async putJson(key: string, value: unknown, options: PutOptions = {}): Promise<void> {
    this.set(key, Buffer.from(`${JSON.stringify(value, null, 2)}\n`), options);
  }

  async getStream(key: string): Promise<Readable> {
    return Readable.from([this.get(key).body], { objectMode: false });
  }

  async getJson(key: string): Promise<unknown> {
    return (await this.getJsonWithEtag(key)).value;
  }

  async getJsonWithEtag(key: string): Promise<{ value: unknown; etag: string }> {
    const { body } = this.get(key);
    try {
      return { value: JSON.parse(body.toString('utf8')) as unknown, etag: etagOf(body) };
    } catch (error) {
      throw new SyntaxError(`object ${key} in ${this.bucket} is not JSON: ${(error as Error).message}`);
    }
  }

  async head(key: string): Promise<StoredObject | undefined> {
    const object = this.objects.get(key);
    return object ? { key, size: object.body.length, lastModified: object.lastModified } : undefined;
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const keys = [...this.objects.keys()].filter((key) => key.startsWith(prefix)).sort();
    for (const key of keys) {
      const object = this.objects.get(key);
      if (object) yield { key, size: object.body.length, lastModified: object.lastModified };
    }
  }

  async deleteObjects(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.objects.delete(key);
  }

  // Test helpers, outside the port.

  /** The stored bytes (a copy), or undefined. */
  bytes(key: string): Buffer | undefined {
    const object = this.objects.get(key);
    return object ? Buffer.from(object.body) : undefined;
  }

  /** Replaces an object's bytes as someone with write access to the bucket could. */
  overwrite(key: string, body: Buffer | string): void {
    this.set(key, Buffer.from(body), {});
  }

  sha256(key: string): string {
    return createHash('sha256').update(this.get(key).body).digest('hex');
  }

  keys(): string[] {
    return [...this.objects.keys()].sort();
  }

  private set(key: string, body: Buffer, options: PutOptions): void {
    if (options.createOnly && this.objects.has(key)) {
      throw new ObjectExistsError(
        `write of ${key} to ${this.bucket} refused: the key exists and the write was create-only`,
      );
    }
    if (options.ifMatch !== undefined) {
      const current = this.get(key);
      if (etagOf(current.body) !== options.ifMatch) {
        throw new ObjectChangedError(
          `write of ${key} to ${this.bucket} refused: it changed since it was read`,
        );
      }
    }
    this.objects.set(key, {
      body: Buffer.from(body),
      lastModified: this.now(),
      retainUntil: options.retainUntil,
    });
  }

  private get(key: string): MemoryObject {
    const object = this.objects.get(key);
    if (!object) throw new ObjectNotFoundError(`object ${key} not found in ${this.bucket}`);
    return object;
  }
}

function etagOf(body: Buffer): string {
  return `"${createHash('md5').update(body).digest('hex')}"`;
}
