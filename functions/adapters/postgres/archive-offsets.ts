// Rewrites a custom-format archive written to a pipe into the file pg_restore --jobs reads fastest: the restore's spool.
//
// 1. Data offsets. pg_dump writing to a pipe cannot seek back to fill in its table of contents' data offsets: every
//    entry says "position not set", and pg_restore --jobs then has each worker read the archive from the start to
//    find its table (pg_backup_custom.c _PrintTocData). Those offsets have their bytes reserved in the TOC
//    (WriteOffset: a flag byte and 8 bytes), so once the data blocks' positions are known they are written in
//    place, as pg_dump writing to a file would. Medium bench archive (626.5 MiB, pg_restore --jobs 2): 3.4-3.7 CPU s
//    in pg_restore without offsets, 0.85 s with them (bench/RESULTS.md, seventh round).
// 2. Rows in large chunks. Uncompressed, pg_dump writes one chunk per row (WriteDataToArchiveNone, once per
//    PQgetCopyData row), and pg_restore sends each chunk as its own CopyData message (ReadDataFromArchiveNone,
//    ahwrite, PQputCopyData): 1.83 million messages for the medium archive, where from pg_dump's gzip it sends one
//    per 4 KiB of inflated data. A table's COPY data is one byte stream to the server, wherever the chunks end
//    (gzip's end anywhere), so the spool writes each table's rows in chunks of up to SPOOL_CHUNK_BYTES instead
//    (bench/RESULTS.md, eighth round).
//
// Format (pg_backup_archiver.c ReadHead/ReadToc, pg_backup_custom.c): an int is a sign byte and `intSize` bytes,
// least significant first; a string is an int length (-1: null) and its bytes; a data block is a type byte
// (1 data, 3 large objects), the entry's dump id, then length-prefixed chunks up to a zero length (large objects:
// an oid before each object's chunks, a zero oid after the last). pg_restore reads a chunk of any length
// (_CustomReadFunc grows its buffer to it).

/** Offset flags of pg_backup_archiver.h. */
export const TOC_OFFSET_NOT_SET = 1;
export const TOC_OFFSET_SET = 2;
export const TOC_OFFSET_NO_DATA = 3;
const BLK_DATA = 1;
const BLK_BLOBS = 3;
/** Archive versions whose TOC layout this reads: 1.12 (PostgreSQL 9.6) to 1.16 (17). Others are left alone. */
const OLDEST = (1 << 16) | (12 << 8);
const NEWEST = (1 << 16) | (16 << 8);
const v = (minor: number) => (1 << 16) | (minor << 8);

/** Bytes to write at `position` of the archive file: a TOC entry's offset field, now set. */
export interface OffsetPatch {
  position: number;
  bytes: Buffer;
}

class NeedMore extends Error {}

const EMPTY = Buffer.alloc(0);

interface TocEntry {
  dumpId: number;
  /** Where the entry's offset flag byte is in the archive. */
  flagAt: number;
  flag: number;
}

interface ParsedToc {
  intSize: number;
  offSize: number;
  entries: TocEntry[];
  /** The archive position just after the TOC: the first data block. */
  end: number;
  /** Table data is stored as pg_dump's rows (no compression in the header). */
  uncompressed: boolean;
}

/** Parses header and TOC from the start of an archive; NeedMore when `head` is too short, null when not readable. */
function parseToc(head: Buffer): ParsedToc | null {
  let at = 0;
  const need = (n: number) => {
    if (at + n > head.length) throw new NeedMore();
  };
  const byte = () => {
    need(1);
    return head[at++]!;
  };
  if (head.length < 5) throw new NeedMore();
  if (head.toString('latin1', 0, 5) !== 'PGDMP') return null;
  at = 5;
  const version = (byte() << 16) | (byte() << 8) | byte();
  if (version < OLDEST || version > NEWEST) return null;
  const intSize = byte();
  const offSize = byte();
  if (intSize < 1 || intSize > 8 || offSize < 1 || offSize > 8) return null;
  if (byte() !== 1) return null; // not the custom format
  const readInt = (): number => {
    need(1 + intSize);
    const negative = head[at++] !== 0;
    let value = 0;
    for (let i = 0; i < intSize; i++) value += head[at++]! * 2 ** (8 * i);
    return negative ? -value : value;
  };
  const skipString = (): boolean => {
    const length = readInt();
    if (length < 0) return false;
    need(length);
    at += length;
    return true;
  };
  // 0 is none both as the compression algorithm (1.15 on) and as the gzip level (before).
  const uncompressed = version >= v(15) ? byte() === 0 : readInt() === 0;
  for (let i = 0; i < 7; i++) readInt(); // creation time
  skipString(); // database name
  skipString(); // server version
  skipString(); // pg_dump version
  const count = readInt();
  if (count < 0) return null;
  const entries: TocEntry[] = [];
  for (let n = 0; n < count; n++) {
    const dumpId = readInt();
    readInt(); // hadDumper
    skipString(); // table oid
    skipString(); // oid
    skipString(); // tag
    skipString(); // desc
    readInt(); // section
    skipString(); // defn
    skipString(); // dropStmt
    skipString(); // copyStmt
    skipString(); // namespace
    skipString(); // tablespace
    if (version >= v(14)) skipString(); // tableam
    if (version >= v(16)) readInt(); // relkind
    skipString(); // owner
    skipString(); // 'false': with oids
    while (skipString()); // dependencies, up to a null
    const flagAt = at;
    const flag = byte();
    need(offSize);
    at += offSize;
    if (flag !== TOC_OFFSET_NOT_SET && flag !== TOC_OFFSET_SET && flag !== TOC_OFFSET_NO_DATA) return null;
    entries.push({ dumpId, flagAt, flag });
  }
  return { intSize, offSize, entries, end: at, uncompressed };
}

/** A TOC entry's data offset as the archive states it: flag 1 not set, 2 set (at `offset`), 3 no data. */
export interface TocOffset {
  dumpId: number;
  flag: number;
  offset: number;
  /** Where the flag byte is. */
  flagAt: number;
}

/** The data offsets of an archive's TOC entries (its start is enough); undefined when it cannot be read. */
export function readTocOffsets(archive: Buffer): TocOffset[] | undefined {
  let toc: ParsedToc | null;
  try {
    toc = parseToc(archive);
  } catch (error) {
    if (error instanceof NeedMore) return undefined;
    throw error;
  }
  if (!toc) return undefined;
  return toc.entries.map(({ dumpId, flag, flagAt }) => {
    let offset = 0;
    for (let i = 0; i < toc.offSize; i++) offset += archive[flagAt + 1 + i]! * 2 ** (8 * i);
    return { dumpId, flag, offset, flagAt };
  });
}

/** The largest chunk of table rows the spool writes: one CopyData message of pg_restore's. */
export const SPOOL_CHUNK_BYTES = 256 * 1024;

/**
 * Rewrites an archive stream as it goes by (`update` with each chunk, in order, writing what it returns, then
 * `finish`): an uncompressed table's rows go out in chunks of up to SPOOL_CHUNK_BYTES, everything else as it came,
 * and `finish` says which TOC offsets to fill in (positions in the output). An archive that has its offsets
 * already, is of a version it does not know, or does not read as expected goes out as it came from there on, with
 * no offsets: pg_restore then reads it as it always did. The chunks given to `update` are compacted in place.
 */
export class ArchiveSpoolRewriter {
  private head: Buffer[] = [];
  private headBytes = 0;
  private nextAttempt = 64 * 1024;
  private toc: ParsedToc | null | undefined;
  private failed = false;
  /** Output bytes so far. */
  private outPosition = 0;
  /** Bytes of a field split across chunks; the output position of its first byte. */
  private carry: Buffer = EMPTY;
  private carryOut = 0;
  /** Bytes of a chunk still to skip. */
  private skip = 0;
  private state: 'block' | 'length' | 'oid' = 'block';
  private inBlobs = false;
  /** Inside an uncompressed table's rows: their lengths are dropped, the rows written in large chunks. */
  private merging = false;
  private blocks = new Map<number, number>();
  private wanted = new Set<number>();
  private intSize = 4;
  /** The chunk being scanned: what of it is written as it is (from `from`), or its rows compacted (`from` to `to`). */
  private chunk: Buffer = EMPTY;
  private out: Buffer[] = [];
  private from = 0;
  private to = 0;

  /** The archive's header and TOC once read, unless the archive goes out as it came (then undefined). */
  tocBytes: Buffer | undefined;

  constructor(private readonly chunkBytes = SPOOL_CHUNK_BYTES) {}

  update(chunk: Buffer): Buffer[] {
    if (this.failed) return this.pass([chunk]);
    if (this.toc === undefined) {
      this.head.push(chunk);
      this.headBytes += chunk.length;
      if (this.headBytes < this.nextAttempt) return [];
      return this.tryToc();
    }
    return this.scan(chunk);
  }

  /** What is left to write once the whole archive went through `update`, and the offsets to fill in. */
  finish(): { rest: Buffer[]; patches: OffsetPatch[] } {
    const rest = this.toc === undefined && !this.failed ? this.tryToc(true) : [];
    if (this.merging && this.carry.length > 0) rest.push(this.carry); // cut short inside a length: keep its bytes
    const toc = this.toc;
    if (this.failed || !toc || this.skip !== 0 || this.carry.length !== 0 || this.state !== 'block')
      return { rest, patches: [] };
    const patches: OffsetPatch[] = [];
    for (const entry of toc.entries) {
      const at = this.blocks.get(entry.dumpId);
      if (entry.flag !== TOC_OFFSET_NOT_SET || at === undefined) continue;
      const bytes = Buffer.alloc(1 + toc.offSize);
      bytes[0] = TOC_OFFSET_SET;
      let left = at;
      for (let i = 0; i < toc.offSize; i++) {
        bytes[1 + i] = left % 256;
        left = Math.floor(left / 256);
      }
      if (left !== 0) return { rest, patches: [] };
      patches.push({ position: entry.flagAt, bytes });
    }
    return { rest, patches };
  }

  private pass(chunks: Buffer[]): Buffer[] {
    for (const chunk of chunks) this.outPosition += chunk.length;
    return chunks;
  }

  private tryToc(atEnd = false): Buffer[] {
    const head = Buffer.concat(this.head, this.headBytes);
    let toc: ParsedToc | null;
    try {
      toc = parseToc(head);
    } catch (error) {
      if (!(error instanceof NeedMore)) throw error;
      if (!atEnd) {
        this.nextAttempt = this.headBytes * 2;
        return [];
      }
      toc = null;
    }
    this.head = [];
    if (toc) {
      for (const entry of toc.entries) if (entry.flag === TOC_OFFSET_NOT_SET) this.wanted.add(entry.dumpId);
    }
    if (!toc || this.wanted.size === 0) {
      // not an archive this reads, or nothing to fill in (offsets set already, or no data): left as it is
      this.failed = true;
      return this.pass(head.length > 0 ? [head] : []);
    }
    this.toc = toc;
    this.intSize = toc.intSize;
    const written = this.pass([head.subarray(0, toc.end)]);
    this.tocBytes = written[0];
    return [...written, ...this.scan(head.subarray(toc.end))];
  }

  /** Walks the data blocks: reads each int it needs, skips (or, merging, compacts) every chunk's bytes. */
  private scan(chunk: Buffer): Buffer[] {
    this.chunk = chunk;
    this.out = [];
    this.from = 0;
    this.to = 0;
    const intBytes = 1 + this.intSize;
    let at = 0;
    while (at < chunk.length) {
      // The common case, once per row of every table: a chunk length, then that many bytes, within this chunk.
      if (this.skip === 0 && this.state === 'length' && this.carry.length === 0) {
        while (at + intBytes <= chunk.length) {
          const length = this.readInt(chunk, at);
          if (length > 0) {
            const end = Math.min(at + intBytes + length, chunk.length);
            if (this.merging) this.keep(chunk, at + intBytes, end);
            this.skip = at + intBytes + length - end;
            at = end;
            if (this.skip > 0) break;
            continue;
          }
          if (length < 0) return this.fail(chunk, at);
          at += intBytes;
          this.endOfBlock(at);
          break;
        }
        if (at >= chunk.length) break;
        if (this.state === 'length' && this.skip === 0) {
          // a length split across chunks: the general path below carries it
        } else continue;
      }
      if (this.skip > 0) {
        const step = Math.min(this.skip, chunk.length - at);
        if (this.merging) this.keep(chunk, at, at + step);
        this.skip -= step;
        at += step;
        continue;
      }
      const fieldBytes = this.state === 'block' ? 1 + intBytes : intBytes;
      let field: Buffer;
      let offset: number;
      let fieldOut: number;
      const fieldAt = at;
      if (this.carry.length === 0 && chunk.length - at >= fieldBytes) {
        field = chunk;
        offset = at;
        fieldOut = this.outPosition + this.pendingBytes(at);
        at += fieldBytes;
      } else {
        if (this.carry.length === 0) this.carryOut = this.outPosition + this.pendingBytes(at);
        const take = Math.min(fieldBytes - this.carry.length, chunk.length - at);
        this.carry = Buffer.concat([this.carry, chunk.subarray(at, at + take)]);
        at += take;
        if (this.carry.length < fieldBytes) break;
        field = this.carry;
        offset = 0;
        fieldOut = this.carryOut;
        this.carry = EMPTY;
      }
      if (!this.field(field, offset, fieldOut, at)) {
        if (field !== chunk) return this.fail(chunk, at, field);
        return this.fail(chunk, fieldAt);
      }
    }
    if (this.merging) this.flushRows(chunk);
    else this.write(chunk.subarray(this.from));
    return this.out;
  }

  /** Output bytes of this chunk not yet written (outside the rows), before index `at`. */
  private pendingBytes(at: number): number {
    return this.merging ? 0 : at - this.from;
  }

  /** One int (or a block's type and dump id) read; `at` is just after it. False when it makes no sense. */
  private field(field: Buffer, offset: number, fieldOut: number, at: number): boolean {
    if (this.state === 'block') {
      const type = field[offset]!;
      const dumpId = this.readInt(field, offset + 1);
      if ((type !== BLK_DATA && type !== BLK_BLOBS) || !this.wanted.has(dumpId) || this.blocks.has(dumpId)) {
        return false;
      }
      this.blocks.set(dumpId, fieldOut);
      this.inBlobs = type === BLK_BLOBS;
      this.state = this.inBlobs ? 'oid' : 'length';
      if (!this.inBlobs && this.toc!.uncompressed) {
        // The block header (and anything before it) goes out as it is; the rows from here are compacted.
        this.write(this.chunk.subarray(this.from, at));
        this.merging = true;
        this.from = at;
        this.to = at;
      }
      return true;
    }
    const value = this.readInt(field, offset);
    if (this.state === 'oid') {
      this.state = value === 0 ? 'block' : 'length';
      return true;
    }
    if (value < 0) return false;
    if (value === 0) this.endOfBlock(at);
    else this.skip = value;
    return true;
  }

  /** The zero length that ends a block was read; `at` is just after it. */
  private endOfBlock(at: number): void {
    this.state = this.inBlobs ? 'oid' : 'block';
    if (!this.merging) return;
    this.flushRows(this.chunk);
    this.write(this.zero());
    this.merging = false;
    this.from = at;
  }

  /** Moves row bytes [start, end) of the chunk down to the end of the rows kept so far. */
  private keep(chunk: Buffer, start: number, end: number): void {
    if (start !== this.to) chunk.copyWithin(this.to, start, end);
    this.to += end - start;
  }

  /** Writes the rows kept from this chunk, as length-prefixed chunks of at most `chunkBytes`. */
  private flushRows(chunk: Buffer): void {
    for (let start = this.from; start < this.to; start += this.chunkBytes) {
      const end = Math.min(start + this.chunkBytes, this.to);
      this.write(this.lengthOf(end - start));
      this.write(chunk.subarray(start, end));
    }
    this.from = this.to;
  }

  /** Not what it expected at `at`: what was read goes out, the rest as it is, and no offsets. */
  private fail(chunk: Buffer, at: number, carried?: Buffer): Buffer[] {
    if (this.merging) {
      this.flushRows(chunk);
      if (carried) this.write(carried);
      this.from = at;
    }
    this.merging = false;
    this.failed = true;
    this.write(chunk.subarray(this.from));
    return this.out;
  }

  private write(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.out.push(bytes);
    this.outPosition += bytes.length;
  }

  private lengthOf(n: number): Buffer {
    const bytes = Buffer.alloc(1 + this.intSize);
    let left = n;
    for (let i = 0; i < this.intSize; i++) {
      bytes[1 + i] = left % 256;
      left = Math.floor(left / 256);
    }
    return bytes;
  }

  private zero(): Buffer {
    return Buffer.alloc(1 + this.intSize);
  }

  /** pg_dump's int at `from`: a sign byte, then intSize bytes, least significant first. */
  private readInt(buffer: Buffer, from: number): number {
    const size = this.intSize;
    let value: number;
    if (size === 4) value = buffer.readUInt32LE(from + 1);
    else {
      value = 0;
      for (let i = 0; i < size; i++) value += buffer[from + 1 + i]! * 2 ** (8 * i);
    }
    return buffer[from] !== 0 ? -value : value;
  }
}
