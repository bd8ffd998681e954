import { describe, expect, it } from 'vitest';
import {
  ArchiveOffsetIndex,
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

function archive(options: { minor?: number; flag?: number; rows?: string[][] } = {}) {
  const flag = options.flag ?? TOC_OFFSET_NOT_SET;
  const header = Buffer.concat([
    Buffer.from('PGDMP'),
    Buffer.from([1, options.minor ?? 14, 0, 4, 8, 1]),
    int(0),
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
  const blocks = rows.map((tableRows, i) =>
    Buffer.concat([
      Buffer.from([1]),
      int(i + 2),
      ...tableRows.map((row) => Buffer.concat([int(row.length), Buffer.from(row)])),
      int(0),
    ]),
  );
  return { bytes: Buffer.concat([header, toc, ...blocks]), dataStart: header.length + toc.length, blocks };
}

function index(bytes: Buffer, chunk = bytes.length) {
  const offsets = new ArchiveOffsetIndex();
  for (let at = 0; at < bytes.length; at += chunk) offsets.update(bytes.subarray(at, at + chunk));
  return offsets.finish();
}

describe('data offsets of an archive written to a pipe', () => {
  it("fills in each table's data block, wherever the chunks end", () => {
    const { bytes, dataStart, blocks } = archive();
    for (const chunk of [1, 2, 7, bytes.length]) {
      const patched = Buffer.from(bytes);
      for (const patch of index(bytes, chunk)) patch.bytes.copy(patched, patch.position);
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

  it('leaves alone an archive whose offsets are set, one cut short, one with a block of no entry, and unknown versions', () => {
    expect(index(archive({ flag: TOC_OFFSET_SET }).bytes)).toEqual([]);
    const { bytes } = archive();
    expect(index(bytes.subarray(0, bytes.length - 3))).toEqual([]);
    expect(index(archive({ rows: [[], [], [], []] }).bytes)).toEqual([]);
    expect(index(archive({ minor: 17 }).bytes)).toEqual([]);
    expect(index(Buffer.from('-- a plain SQL dump\n'))).toEqual([]);
    expect(index(Buffer.alloc(0))).toEqual([]);
  });
});
