// Text output for people: sizes, durations, tables, and a progress line that rewrites itself on a terminal.

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** Columns padded to their widest cell; the first row is the header. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** One status line: rewritten in place on a terminal, printed at most every few seconds otherwise. */
export function progressLine(stream: NodeJS.WriteStream = process.stderr) {
  let lastPrinted = 0;
  let shown = false;
  return {
    update(text: string) {
      if (stream.isTTY) {
        stream.write(`\r\x1b[2K${text}`);
        shown = true;
      } else if (Date.now() - lastPrinted > 5000) {
        stream.write(`${text}\n`);
        lastPrinted = Date.now();
      }
    },
    done(text?: string) {
      if (shown) stream.write('\r\x1b[2K');
      shown = false;
      if (text) stream.write(`${text}\n`);
    },
  };
}
