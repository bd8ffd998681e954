// A child's stdout read into a fixed ring of buffers, so the dump's read side allocates nothing per chunk.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, type Transform, type TransformCallback } from 'node:stream';

/**
 * 16 × 256 KiB: 4 MiB held for the whole dump. A read from the socket returns what pg_dump has written since the
 * last one (up to its socket buffer, about 200 KiB), so a buffer holds one read. Against a fresh 64 KiB Buffer per
 * pipe read, medium bench dumps peaked 3-7 MiB lower and spent 0.3-0.5 s less CPU (bench/RESULTS.md, tenth round).
 */
export const RING_BUFFERS = 16;
export const RING_BUFFER_SIZE = 256 * 1024;

/**
 * The buffers of one read side. A buffer is lent out with the chunk read into it and comes back when the stage
 * that consumes the bytes (zstd, or the gathering of frames) has finished with that chunk; reading pauses while
 * none is free, so the ring, not the garbage collector, bounds the memory.
 */
export class BufferRing {
  private readonly free: Buffer[] = [];
  private readonly lent = new Set<ArrayBufferLike>();
  private readonly owned = new Set<ArrayBufferLike>();
  private onFree: (() => void) | undefined;
  private outside = 0;

  private readonly size: number;

  constructor(count = RING_BUFFERS, size = RING_BUFFER_SIZE) {
    this.size = size;
    if (count < 2) throw new Error('a buffer ring needs at least two buffers: one read into, one lent');
    for (let i = 0; i < count; i += 1) {
      const buffer = Buffer.allocUnsafeSlow(size);
      this.free.push(buffer);
      this.owned.add(buffer.buffer);
    }
  }

  get freeCount(): number {
    return this.free.length;
  }

  /**
   * A free buffer to read into. The reader stops before the last one is taken, so there always is one; should
   * there not be, a fresh buffer outside the ring, never one that is lent.
   */
  take(): Buffer {
    const buffer = this.free.pop();
    if (buffer !== undefined) return buffer;
    this.outside += 1;
    return Buffer.allocUnsafe(this.size);
  }

  /** How many times `take` found no free buffer: 0 unless the reader failed to stop in time. */
  get takenOutside(): number {
    return this.outside;
  }

  /** The chunk read into `buffer` goes downstream: `buffer` is not free until that chunk is released. */
  lend(buffer: Buffer): void {
    if (this.owned.has(buffer.buffer)) this.lent.add(buffer.buffer);
  }

  /** The consuming stage is done with `chunk`: its buffer is free again. Chunks of other memory are ignored. */
  release(chunk: Buffer): void {
    const memory = chunk.buffer;
    if (!this.owned.has(memory) || !this.lent.delete(memory)) return;
    this.free.push(Buffer.from(memory, 0, memory.byteLength));
    const onFree = this.onFree;
    this.onFree = undefined;
    onFree?.();
  }

  /** Calls `listener` once, the next time a buffer comes back. */
  whenFree(listener: () => void): void {
    this.onFree = listener;
  }

  /**
   * Makes `stage` release each chunk it was given once it has consumed it (its transform callback). For a stage
   * that copies or fully consumes its input, as zstd's compression (the bytes are in its window once the callback
   * runs) and coalesce (each chunk smaller than a frame is copied) do.
   */
  releasedBy<T extends Transform>(stage: T): T {
    const transform = stage._transform.bind(stage);
    stage._transform = (chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback) => {
      transform(chunk, encoding, (error?: Error | null, data?: unknown) => {
        this.release(chunk);
        callback(error, data);
      });
    };
    return stage;
  }
}

export interface RingStdout {
  /** Give this as the child's stdout (spawn's stdio); close it once the child is spawned. */
  childEnd: net.Socket;
  /** The child's bytes, each chunk a part of one of the ring's buffers. */
  output: Readable;
  /** Closes what is left open (the reading socket); call when the child has exited or failed. */
  close(): void;
}

/**
 * A connected Unix socket pair in a private (0700) folder: one end goes to the child as its stdout, the other is
 * read with net.Socket's `onread`, which reads into buffers handed to it instead of a fresh 64 KiB one per read.
 * (A pipe's reading side cannot be given buffers: node creates that socket itself.) pg_dump writes to a socket as
 * to a pipe: neither can seek, and the custom format then writes no data offsets, as through a pipe.
 */
export async function openRingStdout(ring: BufferRing): Promise<RingStdout> {
  const folder = await mkdtemp(path.join(tmpdir(), 'kb-stdout-'));
  const server = net.createServer({ pauseOnConnect: true });
  try {
    const socketPath = path.join(folder, 'stdout.sock');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    // The socket reads while the consumer wants more (as a pipe's reading side does) and a buffer is free.
    let reading = true;
    let wanted = true;
    const output = new Readable({
      read() {
        wanted = true;
        resume();
      },
      destroy(error, callback) {
        reader.destroy();
        callback(error);
      },
    });
    const reader = new net.Socket({
      allowHalfOpen: true,
      onread: {
        buffer: () => ring.take(),
        callback: (bytes: number, buffer: Uint8Array) => {
          const chunk = buffer as Buffer;
          ring.lend(chunk);
          wanted = output.push(chunk.subarray(0, bytes));
          // The socket reads next into the buffer taken after this returns: stop while that is the last free one,
          // so a resumed read never lands in a lent buffer.
          if (wanted && ring.freeCount > 1) return true;
          reading = false;
          if (ring.freeCount <= 1) ring.whenFree(resume);
          return false;
        },
      },
    });
    const resume = () => {
      if (reading || !wanted || reader.destroyed) return;
      if (ring.freeCount === 0) {
        ring.whenFree(resume);
        return;
      }
      reading = true;
      reader.resume();
    };
    reader.once('end', () => output.push(null));
    reader.once('error', (error) => output.destroy(error));
    const connected = new Promise<void>((resolve, reject) => {
      reader.once('error', reject);
      reader.connect(socketPath, () => {
        reader.off('error', reject);
        resolve();
      });
    });
    const [childEnd] = await Promise.all([accepted, connected]);
    return { childEnd, output, close: () => reader.destroy() };
  } finally {
    server.close();
    await rm(folder, { recursive: true, force: true });
  }
}
