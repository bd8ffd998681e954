import { describe, expect, it } from 'vitest';
import {
  ArchiveSpoolRewriter,
  readTocOffsets,
  TOC_OFFSET_NO_DATA,
  TOC_OFFSET_NOT_SET,
  TOC_OFFSET_SET,
} from '../../functions/adapters/postgres/archive-offsets.js';

// A custom-format archive as pg_dump 15 writes it to a pipe (format 1.14, 4-byte ints, 8-byte offsets).
const int = (n: number) => {
  const b = Buffer.alloc(5);
  b[0] = n < 0 ? 1 : 0;
  b.writeUInt32LE(Math.abs(n), 1);
  return b;
};
const str = (s: string | null) =>
  s === null ? int(-1) : Buffer.concat([int(Buffer.byteLength(s)), Buffer.from(s)]);
const offset = (flag: number, at = 0) => {
  const b = Buffer.alloc(9);
  b[0] = flag;
  b.writeBigUInt64LE(BigInt(at), 1);
  return b;
};

function entry(dumpId: number, flag: number): Buffer {
  return Buffer.concat([
    int(dumpId),
    int(flag === TOC_OFFSET_NO_DATA ? 0 : 1),
    str('1259'),
    str(String(16000 + dumpId)),
    str(`t${dumpId}`),
    str(flag === TOC_OFFSET_NO_DATA ? 'TABLE' : 'TABLE DATA'),
    int(flag === TOC_OFFSET_NO_DATA ? 1 : 2),
    str(''),
    str(''),
    str(flag === TOC_OFFSET_NO_DATA ? null : `COPY public.t${dumpId} (id) FROM stdin;\n`),
    str('public'),
    str(''),
    str('heap'),
    str('keycloak'),
    str('false'),
    str('1'),
    str(null),
    offset(flag),
  ]);
}

function archive(
  options: { minor?: number; flag?: number; rows?: string[][]; level?: number; blobs?: boolean } = {},
) {
  const flag = options.flag ?? TOC_OFFSET_NOT_SET;
  const header = Buffer.concat([
    Buffer.from('PGDMP'),
    Buffer.from([1, options.minor ?? 14, 0, 4, 8, 1]),
    int(options.level ?? 0),
    ...Array.from({ length: 7 }, () => int(1)),
    str('keycloak'),
    str('15.18'),
    str('15.18'),
  ]);
  const rows = options.rows ?? [['a\tb\n', 'c\td\n'], [], ['e\n']];
  const toc = Buffer.concat([
    int(4),
    entry(1, TOC_OFFSET_NO_DATA),
    entry(2, flag),
    entry(3, flag),
    entry(4, flag),
  ]);
  // The last entry's block holds large objects when asked: an oid before each object's chunks, a zero oid after.
  const blobs = (i: number) => options.blobs === true && i === rows.length - 1;
  const blocks = rows.map((tableRows, i) =>
    Buffer.concat([
      Buffer.from([blobs(i) ? 3 : 1]),
      int(i + 2),
      ...(blobs(i) ? [int(16400)] : []),
      ...tableRows.map((row) => Buffer.concat([int(row.length), Buffer.from(row)])),
      int(0),
      ...(blobs(i) ? [int(0)] : []),
    ]),
  );
  return { bytes: Buffer.concat([header, toc, ...blocks]), dataStart: header.length + toc.length, blocks };
}

/** The archive through the rewriter in chunks of `chunk` bytes (copies: it compacts them in place). */
function rewrite(bytes: Buffer, chunk = bytes.length, chunkBytes?: number) {
  const rewriter = new ArchiveSpoolRewriter(chunkBytes);
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += chunk)
    out.push(...rewriter.update(Buffer.from(bytes.subarray(at, at + chunk))));
  const { rest, patches } = rewriter.finish();
  const written = Buffer.concat([...out, ...rest]);
  const patched = Buffer.from(written);
  for (const patch of patches) patch.bytes.copy(patched, patch.position);
  return { written, patched, patches };
}

function index(bytes: Buffer, chunk = bytes.length) {
  return rewrite(bytes, chunk).patches;
}

/** Each data block of an archive with offsets set, as pg_restore reads it: its chunks' lengths and their bytes. */
function blocksOf(bytes: Buffer) {
  return readTocOffsets(bytes)!
    .filter((entry) => entry.flag === TOC_OFFSET_SET)
    .map((entry) => {
      let at = entry.offset;
      const type = bytes[at]!;
      const dumpId = bytes.readUInt32LE(at + 2);
      at += 6;
      if (type === 3) at += 5; // the large object's oid
      const lengths: number[] = [];
      const data: Buffer[] = [];
      for (;;) {
        const length = bytes.readUInt32LE(at + 1);
        at += 5;
        if (length === 0) break;
        lengths.push(length);
        data.push(bytes.subarray(at, at + length));
        at += length;
      }
      return { entry: entry.dumpId, type, dumpId, lengths, data: Buffer.concat(data).toString() };
    });
}

describe('the restore spool: an archive written to a pipe, rewritten', () => {
  it("fills in each table's data block, wherever the chunks end (gzip-compressed data as it came)", () => {
    const { bytes, dataStart, blocks } = archive({ level: -1 });
    for (const chunk of [1, 2, 7, bytes.length]) {
      const { written, patched } = rewrite(bytes, chunk);
      expect(written.equals(bytes), `chunks of ${chunk}`).toBe(true);
      const offsets = readTocOffsets(patched)!;
      expect(
        offsets.map((o) => [o.dumpId, o.flag]),
        `chunks of ${chunk}`,
      ).toEqual([
        [1, TOC_OFFSET_NO_DATA],
        [2, TOC_OFFSET_SET],
        [3, TOC_OFFSET_SET],
        [4, TOC_OFFSET_SET],
      ]);
      expect(offsets.slice(1).map((o) => o.offset)).toEqual([
        dataStart,
        dataStart + blocks[0]!.length,
        dataStart + blocks[0]!.length + blocks[1]!.length,
      ]);
    }
  });

  it("writes an uncompressed table's rows in large chunks instead of one per row, wherever the chunks end", () => {
    const many = Array.from({ length: 40 }, (_, i) => `${i}\tuser-${i}\n`);
    const rows = [many, [], ['e\n'], ['x\n', 'y\n']];
    const { bytes } = archive({ rows: rows.slice(0, 3) });
    const expected = rows.slice(0, 3).map((tableRows, i) => ({
      entry: i + 2,
      type: 1,
      dumpId: i + 2,
      data: tableRows.join(''),
    }));
    for (const chunk of [1, 2, 7, 100, bytes.length]) {
      const { patched, patches } = rewrite(bytes, chunk);
      expect(patches, `chunks of ${chunk}`).toHaveLength(3);
      const read = blocksOf(patched);
      expect(
        read.map(({ lengths: _, ...block }) => block),
        `chunks of ${chunk}`,
      ).toEqual(expected);
      if (chunk === bytes.length) expect(read.map((block) => block.lengths.length)).toEqual([1, 0, 1]);
    }
    // No chunk is larger than asked for: 40 rows of 9-10 bytes in chunks of at most 64.
    const small = blocksOf(rewrite(bytes, bytes.length, 64).patched);
    expect(small[0]!.lengths.every((length) => length <= 64)).toBe(true);
    expect(small[0]!.lengths.length).toBe(Math.ceil(many.join('').length / 64));
    expect(small[0]!.data).toBe(many.join(''));
  });

  it('leaves large objects as they came', () => {
    const { bytes } = archive({ rows: [['a\n', 'b\n'], [], ['lo-1', 'lo-2']], blobs: true });
    const { written, patched, patches } = rewrite(bytes, 3);
    expect(patches).toHaveLength(3);
    const read = blocksOf(patched);
    expect(read.map((block) => [block.type, block.dumpId, block.data])).toEqual([
      [1, 2, 'a\nb\n'],
      [1, 3, ''],
      [3, 4, 'lo-1lo-2'],
    ]);
    expect(read[2]!.lengths).toEqual([4, 4]);
    // Only the first table's two rows became one chunk: one length (5 bytes) fewer.
    expect(written.length).toBe(bytes.length - 5);
  });

  it('leaves alone an archive whose offsets are set, one with a block of no entry, and unknown versions', () => {
    for (const bytes of [
      archive({ flag: TOC_OFFSET_SET }).bytes,
      archive({ rows: [[], [], [], []] }).bytes,
      archive({ minor: 17 }).bytes,
      Buffer.from('-- a plain SQL dump\n'),
      Buffer.alloc(0),
    ]) {
      for (const chunk of [3, Math.max(bytes.length, 1)]) {
        const { written, patches } = rewrite(bytes, chunk);
        expect(patches).toEqual([]);
        expect(written.equals(bytes)).toBe(true);
      }
    }
    const { bytes } = archive();
    expect(index(bytes.subarray(0, bytes.length - 3))).toEqual([]);
  });

  it('writes what follows a chunk length that makes no sense as it came, and fills in no offsets', () => {
    const { bytes, dataStart } = archive({ rows: [['a\n', 'b\n'], [], []] });
    // The second row's length made negative: pg_restore must meet it as pg_dump wrote it.
    const bad = dataStart + 6 + 5 + 2;
    const broken = Buffer.from(bytes);
    broken[bad] = 1;
    for (const chunk of [1, 4, broken.length]) {
      const { written, patches } = rewrite(broken, chunk);
      expect(patches).toEqual([]);
      const tail = broken.subarray(bad);
      expect(written.subarray(written.length - tail.length).equals(tail), `chunks of ${chunk}`).toBe(true);
      expect(written.subarray(0, dataStart + 6).equals(broken.subarray(0, dataStart + 6))).toBe(true);
    }
  });
});
