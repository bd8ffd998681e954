// The benchmark's recorded result (the JSON file) and its markdown section in bench/RESULTS.md.
import {
  type LambdaCeiling,
  limitText,
  PUBLISHED_PG_DUMP_LAMBDA_GB,
  type Summary,
  type TargetResult,
} from './stats.js';

export interface Sample {
  pair: number;
  /** 1 = ran first in its round, 2 = second, 3 = third. */
  position: number;
  /** raw: the tool alone with the pipeline's own pg_dump arguments, to /dev/null or from the pipeline's archive on
   * disk; default: pg_dump -Fc at its default compression (bytes counted), or pg_restore from that archive;
   * uncompressed: pg_dump -Fc -Z0 to /dev/null (only when raw is not that already); pipeline: the pipeline's step;
   * piped: raw pg_dump through a pipe into a node process that only counts the bytes. */
  side: 'raw' | 'pipeline' | 'piped' | 'default' | 'uncompressed';
  /** The timed figure of the side (ms). */
  ms: number;
  /** One-minute load average just before the sample: other work on the machine disturbs timings. */
  load1: number;
  [extra: string]: unknown;
}

export interface CompressionRow {
  setting: string;
  args: string[];
  ms: number;
  bytes: number;
  /** Archive bytes / database bytes. */
  share: number;
}

export interface BenchResult {
  size: string;
  command: string;
  date: string;
  machine: {
    cores: number;
    cpuModel: string;
    memoryMib: number;
    kernel: string;
    loadAverage: { start: number[]; end: number[] };
  };
  versions: { node: string; pgDump: string; pgRestore: string; postgres: string };
  /** The code measured: HEAD and the files of the data path that differed from it. */
  revision: { commit: string; dirty: string[] };
  settings: {
    pairs: number;
    jobs: number;
    compression: string;
    /** KB_DUMP_ZSTD_LEVEL of the pipeline's compression. */
    zstdLevel?: number;
    durable: boolean;
    seed: number;
    /** How the worker ran: 'tsx loader' or 'esbuild bundle, plain node' (as the Lambdas run). */
    worker: string;
    restoreServer: string;
  };
  sizeBytes: number;
  /** The headline figures (issue 16's JSON fields). */
  dumpVsPgDumpDefault: number;
  dumpVsUncompressed: number;
  storedVsPgDumpDefault: number;
  restoreVsPgRestoreDefault: number;
  /** Information: issue 5's same-compression ratios. */
  dumpRatio: number;
  restoreRatio: number;
  verifyMBps: number;
  dumpPeakRssMb: number;
  restorePeakRssMb: number;
  /** Issue 16 item 4: the largest database a 15-minute Lambda dumps, projected from this run (judged from large). */
  lambdaCeiling?: LambdaCeiling;
  dump: {
    raw: Summary;
    pipeline: Summary;
    /** Raw pg_dump through a pipe into node, bytes counted and dropped: what streaming alone costs. */
    piped: Summary;
    /** Raw pg_dump -Fc at its default compression, through a pipe that counts the bytes. */
    default: Summary;
    /** Raw pg_dump -Fc -Z0 to /dev/null (the raw side itself when the pipeline compresses). */
    uncompressed: Summary;
    /** pipeline / default and pipeline / uncompressed of each round. */
    vsDefaultRatios: Summary;
    vsUncompressedRatios: Summary;
    /** Bytes of the default archive (median over the rounds). */
    defaultBytes: number;
    /** The archive inside the stored object (manifest archiveBytes). */
    archiveBytes: number;
    /** pipeline / raw of each round; dumpRatio is their median. */
    ratios: Summary;
    /** median(pipeline) / median(raw), for comparison. */
    ratioOfMedians: number;
    /** piped / raw of each round: the share of the overhead any streaming consumer pays. */
    pipedRatios: Summary;
    /** Median CPU seconds per run by who spent them: tool (pg_dump), worker (the pipeline's node process),
     * s3rver, consumer (the piped side's counting), server (the replica's backends). */
    cpu: Record<'raw' | 'pipeline' | 'piped' | 'default', Record<string, number>>;
    /** The dump's own figure from the manifest (pg_dump start to upload complete), without catalog and manifest. */
    pipelineDataPath: Summary;
    /** Whole worker process, module loading and service wiring included. */
    pipelineProcess: Summary;
    plainBytes: number;
    storedBytes: number;
    samples: Sample[];
  };
  restore: {
    raw: Summary;
    pipeline: Summary;
    ratios: Summary;
    ratioOfMedians: number;
    /** pg_restore --jobs N from the default pg_dump -Fc archive on local disk, and pipeline / that of each round. */
    default: Summary;
    vsDefaultRatios: Summary;
    /** As for the dump; server = the restore cluster's backends, tool = pg_restore and its parallel workers. */
    cpu: Record<'raw' | 'pipeline' | 'default', Record<string, number>>;
    /** restoreStep as a whole: the data path plus the Keycloak checks against the manifest. */
    pipelineStep: Summary;
    samples: Sample[];
  };
  verify: {
    MBps: Summary;
    /** A second pass in the same worker: the read path's modules loaded and its code compiled already. */
    warmMBps: Summary;
    /** With pg_restore --list in the same pass, as the verify step runs it (third pass in the worker). */
    listMBps: Summary;
    storedBytes: number;
    samples: Record<string, unknown>[];
  };
  memory: {
    /** Peak RSS of a worker that only loaded the modules and built the services. */
    baselineRssMb: number;
    /** CPU seconds of that idle worker: node start, tsx, module loading (part of every worker's CPU). */
    baselineCpuS: number;
    dumpRssMb: Summary;
    restoreRssMb: Summary;
    verifyRssMb: Summary;
    /** Peaks of heap and Buffer memory inside the workers (sampled), MiB. */
    dumpHeapMb: number;
    dumpExternalMb: number;
    restoreHeapMb: number;
    restoreExternalMb: number;
  };
  compression: { rows: CompressionRow[]; note: string };
  targets: TargetResult[];
  passed: boolean;
  notes: string[];
  durationS: number;
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function cpuCell(parts: Record<string, number>): string {
  return Object.entries(parts)
    .map(([name, value]) => `${name} ${value.toFixed(2)}`)
    .join(', ');
}

function summaryCell(summary: Summary, format: (value: number) => string): string {
  return `${format(summary.median)} (${summary.samples.map(format).join(', ')})`;
}

/** The markdown section of one size; the whole section is replaced when that size is run again. */
export function renderSection(result: BenchResult): string {
  const lines: string[] = [];
  const target = (name: string) => result.targets.find((t) => t.name === name);
  lines.push(`## ${result.size}: ${result.passed ? 'all targets PASS' : 'some targets FAIL'}`);
  lines.push('');
  lines.push(`Command: \`${result.command}\``);
  lines.push('');
  lines.push(
    `Date ${result.date}; ${result.machine.cores} cores (${result.machine.cpuModel}), ${Math.round(result.machine.memoryMib / 1024)} GiB; ` +
      `load average ${result.machine.loadAverage.start[0]?.toFixed(1)} at start, ${result.machine.loadAverage.end[0]?.toFixed(1)} at end; ` +
      `node ${result.versions.node}, pg_dump ${result.versions.pgDump}, PostgreSQL ${result.versions.postgres}; ` +
      `database ${mib(result.sizeBytes)} (pg_database_size); ${result.settings.pairs} pairs, pg_restore --jobs ${result.settings.jobs}, ` +
      `compression ${result.settings.compression}, worker: ${result.settings.worker}, ${result.settings.durable ? 'durable (fsync on)' : 'fsync off'}; run took ${Math.round(result.durationS / 60)} min; ` +
      `code at ${result.revision.commit.slice(0, 7)}${result.revision.dirty.length > 0 ? ` with uncommitted changes in ${result.revision.dirty.join(', ')}` : ''}.`,
  );
  lines.push('');
  lines.push('| target | measured | limit | verdict |');
  lines.push('|---|---|---|---|');
  for (const t of result.targets) {
    const measured = t.measured === null ? '–' : `${t.measured} ${t.unit}`;
    lines.push(`| ${t.name}: ${t.description} | ${measured} | ${limitText(t)} | ${t.verdict} |`);
  }
  lines.push('');
  lines.push('| measurement | median (samples) |');
  lines.push('|---|---|');
  lines.push(
    `| raw \`pg_dump -Fc\` at its default compression, bytes counted | ${summaryCell(result.dump.default, seconds)} |`,
  );
  lines.push(`| raw \`pg_dump -Fc -Z0\` to /dev/null | ${summaryCell(result.dump.uncompressed, seconds)} |`);
  lines.push(
    `| raw \`pg_dump -Fc\` with the pipeline's pg_dump arguments, to /dev/null | ${summaryCell(result.dump.raw, seconds)} |`,
  );
  lines.push(
    `| pipeline dump step (dump, encrypt, upload, manifest) | ${summaryCell(result.dump.pipeline, seconds)} |`,
  );
  lines.push(`| CPU seconds per dump (median), raw | ${cpuCell(result.dump.cpu.raw)} |`);
  lines.push(`| CPU seconds per dump (median), pipeline | ${cpuCell(result.dump.cpu.pipeline)} |`);
  lines.push(`| CPU seconds per dump (median), piped | ${cpuCell(result.dump.cpu.piped)} |`);
  lines.push(`| CPU seconds per dump (median), pg_dump default | ${cpuCell(result.dump.cpu.default)} |`);
  lines.push(
    `| information: pipeline / raw at the same pg_dump arguments (issue 5), median of the rounds | ${summaryCell(result.dump.ratios, (v) => `${v}`)} |`,
  );
  lines.push(
    `| … of which pg_dump to upload complete | ${summaryCell(result.dump.pipelineDataPath, seconds)} |`,
  );
  lines.push(
    `| … whole worker process (node start, modules) | ${summaryCell(result.dump.pipelineProcess, seconds)} |`,
  );
  lines.push(
    `| archive / decrypted (plain) / stored; the default pg_dump -Fc archive | ${mib(result.dump.archiveBytes)} / ${mib(result.dump.plainBytes)} / ${mib(result.dump.storedBytes)}; ${mib(result.dump.defaultBytes)} |`,
  );
  lines.push(
    `| raw \`pg_restore --jobs ${result.settings.jobs}\` from the default archive on local disk | ${summaryCell(result.restore.default, seconds)} |`,
  );
  lines.push(
    `| raw \`pg_restore --jobs ${result.settings.jobs}\` from the pipeline's own archive on local disk | ${summaryCell(result.restore.raw, seconds)} |`,
  );
  lines.push(
    `| pipeline restore (download, decrypt, decompress, spool, pg_restore) | ${summaryCell(result.restore.pipeline, seconds)} |`,
  );
  lines.push(
    `| information: pipeline / raw from the same archive (issue 5), median of the rounds | ${summaryCell(result.restore.ratios, (v) => `${v}`)} |`,
  );
  lines.push(`| CPU seconds per restore (median), raw | ${cpuCell(result.restore.cpu.raw)} |`);
  lines.push(`| CPU seconds per restore (median), pipeline | ${cpuCell(result.restore.cpu.pipeline)} |`);
  lines.push(
    `| CPU seconds per restore (median), pg_restore default | ${cpuCell(result.restore.cpu.default)} |`,
  );
  lines.push(
    `| … restore step with the Keycloak checks | ${summaryCell(result.restore.pipelineStep, seconds)} |`,
  );
  lines.push(
    `| verification (re-read, SHA-256, decrypt), first pass in a fresh worker | ${summaryCell(result.verify.MBps, (v) => `${v} MiB/s`)} |`,
  );
  lines.push(
    `| … second pass in the same process (warm) | ${summaryCell(result.verify.warmMBps, (v) => `${v} MiB/s`)} |`,
  );
  lines.push(
    `| … with pg_restore --list (the verify step) | ${summaryCell(result.verify.listMBps, (v) => `${v} MiB/s`)} |`,
  );
  lines.push(`| peak RSS, dump worker | ${summaryCell(result.memory.dumpRssMb, (v) => `${v} MiB`)} |`);
  lines.push(`| peak RSS, restore worker | ${summaryCell(result.memory.restoreRssMb, (v) => `${v} MiB`)} |`);
  lines.push(`| peak RSS, verify worker | ${summaryCell(result.memory.verifyRssMb, (v) => `${v} MiB`)} |`);
  lines.push(
    `| idle worker (modules and services only): peak RSS; CPU | ${result.memory.baselineRssMb} MiB; ${result.memory.baselineCpuS} s |`,
  );
  lines.push(
    `| sampled peaks, dump: V8 heap / Buffers | ${result.memory.dumpHeapMb} / ${result.memory.dumpExternalMb} MiB |`,
  );
  lines.push(
    `| sampled peaks, restore: V8 heap / Buffers | ${result.memory.restoreHeapMb} / ${result.memory.restoreExternalMb} MiB |`,
  );
  lines.push('');
  const ceiling = result.lambdaCeiling;
  if (ceiling) {
    const cpu = ceiling.cpuCeilingGiB.map((c) => `${c.gib} GiB at ${c.vcpus} vCPUs`).join(', ');
    lines.push(
      `Lambda ceiling, projected from this run (issue 16: judged from large): a Lambda dump spends ${ceiling.lambdaCpuS} CPU s ` +
        `(pg_dump and the worker; the backend runs on RDS, S3 takes the upload) per ${ceiling.databaseMib} MiB of database, ` +
        `${ceiling.mibPerVcpuSecond} MiB per vCPU-second: in 15 minutes ${cpu} if its threads keep the vCPUs busy; ` +
        `${ceiling.wallCeilingGiB} GiB at this run's median wall time, which shares two cores with the backend and the local S3 (the conservative figure). ` +
        `\`pg_dump -Fc\` at its default compression alone: ${ceiling.pgDumpDefaultCeilingGiB} GiB by its own CPU. ` +
        `Published for a plain pg_dump-on-Lambda tool: ${PUBLISHED_PG_DUMP_LAMBDA_GB} GB in about 15 minutes.`,
    );
    lines.push('');
  }
  if (result.compression.rows.length > 0) {
    lines.push('| pg_dump compression | time | archive size | of database |');
    lines.push('|---|---|---|---|');
    for (const row of result.compression.rows) {
      lines.push(
        `| ${row.setting} (\`${row.args.join(' ')}\`) | ${seconds(row.ms)} | ${mib(row.bytes)} | ${(row.share * 100).toFixed(1)} % |`,
      );
    }
    lines.push('');
  }
  lines.push(result.compression.note);
  lines.push('');
  const timed = ['dump vs pg_dump default', 'dump vs uncompressed', 'restore vs pg_restore default'];
  if (timed.some((name) => target(name)?.verdict === 'FAIL')) {
    lines.push('Samples (ms, load average before each):');
    lines.push('');
    for (const s of [...result.dump.samples, ...result.restore.samples]) {
      lines.push(
        `- ${s.side} round ${s.pair + 1} (position ${s.position}): ${s.ms} ms, load ${s.load1.toFixed(1)}`,
      );
    }
    lines.push('');
  }
  for (const note of result.notes) lines.push(`- ${note}`);
  if (result.notes.length > 0) lines.push('');
  return lines.join('\n');
}

const HEADER = `# Benchmark results

Produced by \`npm run bench -- --size small|medium|large\` (bench/run.ts); each section is rewritten when its size
is run again, and the full figures and every sample are in \`bench/results/<size>.json\`. Method: see the comment at
the top of bench/run.ts. Targets (issue 16), at medium, against what a user would run instead: dump ≤ 0.40 × raw
\`pg_dump -Fc\` at its default compression and ≤ 1.60 × \`pg_dump -Fc -Z0\` to /dev/null, stored bytes ≤ 1.00 × that
default archive, restore ≤ 0.90 × \`pg_restore --jobs 2\` from the default archive on disk, verification ≥ 300
MiB/s, peak RSS ≤ 160 MiB for dump and restore and flat from medium to large. Issue 5's same-compression ratios
are kept as information.
`;

/** Replaces (or appends) the section of `size` in the results file's text, keeping the other sizes. */
export function updateResults(existing: string | undefined, size: string, section: string): string {
  const begin = `<!-- bench:${size}:begin -->`;
  const end = `<!-- bench:${size}:end -->`;
  const block = `${begin}\n${section.trimEnd()}\n${end}`;
  const text = existing && existing.trim() !== '' ? existing : HEADER;
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from >= 0 && to > from) return `${text.slice(0, from)}${block}${text.slice(to + end.length)}`;
  // Sizes in their natural order: small, medium, large.
  const order = ['small', 'medium', 'large'];
  const later = order.slice(order.indexOf(size) + 1).map((s) => text.indexOf(`<!-- bench:${s}:begin -->`));
  const insertAt = later.filter((i) => i >= 0).sort((a, b) => a - b)[0];
  if (insertAt !== undefined) return `${text.slice(0, insertAt)}${block}\n\n${text.slice(insertAt)}`;
  return `${text.trimEnd()}\n\n${block}\n`;
}
