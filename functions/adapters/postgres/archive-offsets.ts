// Finds where each table's data starts in a custom-format archive written to a pipe, so a spooled copy can say so.
//
// pg_dump writing to a pipe cannot seek back to fill in its table of contents' data offsets: every entry says
// "position not set", and pg_restore --jobs then has each worker read the archive from the start to find its
// table (pg_backup_custom.c _PrintTocData). Those offsets have their bytes reserved in the TOC (WriteOffset: a flag
// byte and 8 bytes), so once the data blocks' positions are known they can be written in place, and the spool is
// the archive pg_dump would have written to a file. Medium bench archive (626.5 MiB, pg_restore --jobs 2): 3.4-3.7
// CPU s in pg_restore without offsets, 0.85 s with them (bench/RESULTS.md, seventh round).
//
// Format (pg_backup_archiver.c ReadHead/ReadToc, pg_backup_custom.c): an int is a sign byte and `intSize` bytes,
// least significant first; a string is an int length (-1: null) and its bytes; a data block is a type byte
// (1 data, 3 large objects), the entry's dump id, then length-prefixed chunks up to a zero length (large objects:
// an oid before each object's chunks, a zero oid after the last).

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
  if (version >= v(15))
    byte(); // compression algorithm
  else readInt(); // compression level
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
  return { intSize, offSize, entries, end: at };
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

/**
 * Watches an archive stream go by (`update` with each chunk, in order, then `finish`) and says which TOC offsets to
 * fill in. Gives none when the archive has them already, is of a version it does not know, or does not read as
 * expected: pg_restore then finds the data as it always did, by reading.
 */
export class ArchiveOffsetIndex {
  private head: Buffer[] = [];
  private headBytes = 0;
  private nextAttempt = 64 * 1024;
  private toc: ParsedToc | null | undefined;
  private failed = false;
  /** Archive position of the start of `carry`/the next chunk. */
  private position = 0;
  /** Bytes of a field split across chunks. */
  private carry: Buffer = EMPTY;
  private carryAt = 0;
  /** Bytes of a chunk still to skip. */
  private skip = 0;
  private state: 'block' | 'length' | 'oid' = 'block';
  private inBlobs = false;
  private blocks = new Map<number, number>();
  private wanted = new Set<number>();
  private intSize = 4;

  update(chunk: Buffer): void {
    if (this.failed) return;
    if (this.toc === undefined) {
      this.head.push(chunk);
      this.headBytes += chunk.length;
      if (this.headBytes < this.nextAttempt) return;
      this.tryToc();
      return;
    }
    this.scan(chunk);
  }

  /** The patches, once the whole archive went through `update`; none unless every block was where it should be. */
  finish(): OffsetPatch[] {
    if (this.toc === undefined && !this.failed) this.tryToc(true);
    const toc = this.toc;
    if (this.failed || !toc || this.skip !== 0 || this.carry.length !== 0 || this.state !== 'block')
      return [];
    const patches: OffsetPatch[] = [];
    for (const entry of toc.entries) {
      const at = this.blocks.get(entry.dumpId);
      if (entry.flag !== TOC_OFFSET_NOT_SET || at === undefined) continue;
      const bytes = Buffer.alloc(1 + toc.offSize);
      bytes[0] = TOC_OFFSET_SET;
      let rest = at;
      for (let i = 0; i < toc.offSize; i++) {
        bytes[1 + i] = rest % 256;
        rest = Math.floor(rest / 256);
      }
      if (rest !== 0) return [];
      patches.push({ position: entry.flagAt, bytes });
    }
    return patches;
  }

  private tryToc(atEnd = false): void {
    const head = Buffer.concat(this.head, this.headBytes);
    let toc: ParsedToc | null;
    try {
      toc = parseToc(head);
    } catch (error) {
      if (!(error instanceof NeedMore)) throw error;
      if (atEnd) this.failed = true;
      this.nextAttempt = this.headBytes * 2;
      return;
    }
    this.head = [];
    if (!toc) {
      this.failed = true;
      return;
    }
    this.toc = toc;
    this.intSize = toc.intSize;
    for (const entry of toc.entries) if (entry.flag === TOC_OFFSET_NOT_SET) this.wanted.add(entry.dumpId);
    if (this.wanted.size === 0) {
      this.failed = true; // nothing to fill in (offsets set already, or no data)
      return;
    }
    this.position = toc.end;
    this.scan(head.subarray(toc.end));
  }

  /** Walks the data blocks: reads each int it needs, skips every chunk's bytes. */
  private scan(chunk: Buffer): void {
    const base = this.position;
    this.position += chunk.length;
    const toc = this.toc!;
    const intBytes = 1 + toc.intSize;
    let at = 0;
    while (at < chunk.length) {
      // The common case, once per row of every table: a chunk length, then that many bytes, within this chunk.
      if (this.skip === 0 && this.state === 'length' && this.carry.length === 0) {
        while (at + intBytes <= chunk.length) {
          const length = this.readInt(chunk, at);
          at += intBytes;
          if (length > 0) {
            at += length;
            continue;
          }
          if (length < 0) {
            this.failed = true;
            return;
          }
          this.state = this.inBlobs ? 'oid' : 'block';
          break;
        }
        if (at > chunk.length) {
          this.skip = at - chunk.length;
          return;
        }
        if (at === chunk.length) return;
        if (this.state === 'length' && at + intBytes > chunk.length) {
          // a length split across chunks: the general path below carries it
        } else continue;
      }
      if (this.skip > 0) {
        const step = Math.min(this.skip, chunk.length - at);
        this.skip -= step;
        at += step;
        continue;
      }
      const fieldBytes = this.state === 'block' ? 1 + intBytes : intBytes;
      let field: Buffer;
      let offset: number;
      let fieldAt: number;
      if (this.carry.length === 0 && chunk.length - at >= fieldBytes) {
        field = chunk;
        offset = at;
        fieldAt = base + at;
        at += fieldBytes;
      } else {
        if (this.carry.length === 0) this.carryAt = base + at;
        const take = Math.min(fieldBytes - this.carry.length, chunk.length - at);
        this.carry = Buffer.concat([this.carry, chunk.subarray(at, at + take)]);
        at += take;
        if (this.carry.length < fieldBytes) return;
        field = this.carry;
        offset = 0;
        fieldAt = this.carryAt;
        this.carry = EMPTY;
      }
      if (!this.field(field, offset, fieldAt)) {
        this.failed = true;
        return;
      }
    }
  }

  /** One int (or a block's type and dump id) read at archive position `fieldAt`; false when it makes no sense. */
  private field(field: Buffer, offset: number, fieldAt: number): boolean {
    if (this.state === 'block') {
      const type = field[offset]!;
      const dumpId = this.readInt(field, offset + 1);
      if ((type !== BLK_DATA && type !== BLK_BLOBS) || !this.wanted.has(dumpId) || this.blocks.has(dumpId)) {
        return false;
      }
      this.blocks.set(dumpId, fieldAt);
      this.inBlobs = type === BLK_BLOBS;
      this.state = this.inBlobs ? 'oid' : 'length';
      return true;
    }
    const value = this.readInt(field, offset);
    if (this.state === 'oid') {
      this.state = value === 0 ? 'block' : 'length';
      return true;
    }
    if (value < 0) return false;
    if (value === 0) this.state = this.inBlobs ? 'oid' : 'block';
    else this.skip = value;
    return true;
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
