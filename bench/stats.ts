// Pure statistics of the benchmark: medians, ratios and the PASS/FAIL judgement against the targets.

/** The median of the samples (the mean of the middle two for an even count); throws on none. */
export function median(samples: readonly number[]): number {
  const finite = samples.filter((value) => Number.isFinite(value));
  if (finite.length === 0) throw new RangeError('median of no samples');
  const sorted = [...finite].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** `part / whole`, rounded to 3 decimals; NaN when the whole is not a positive number. */
export function ratio(part: number, whole: number): number {
  if (!(whole > 0) || !Number.isFinite(part)) return Number.NaN;
  return round(part / whole, 3);
}

/** Rounds to `digits` decimals (for figures people read; medians are computed on the raw samples). */
export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * The ratio pipeline/raw of each round (both sides ran back to back), for rounds that have both sides.
 * On a shared machine the load drifts between rounds; a ratio within one round cancels most of that drift,
 * so the median of these is steadier than the ratio of the two medians.
 */
export function pairedRatios(
  samples: readonly { pair: number; side: string; ms: number }[],
  numerator = 'pipeline',
  denominator = 'raw',
): number[] {
  const rounds = new Map<number, { top?: number; bottom?: number }>();
  for (const sample of samples) {
    const round = rounds.get(sample.pair) ?? {};
    if (sample.side === numerator) round.top = sample.ms;
    if (sample.side === denominator) round.bottom = sample.ms;
    rounds.set(sample.pair, round);
  }
  return [...rounds.entries()]
    .sort(([a], [b]) => a - b)
    .filter(([, r]) => r.top !== undefined && r.bottom !== undefined)
    .map(([, r]) => ratio(r.top!, r.bottom!));
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median: how much the samples disagree, for judging the noise of a shared machine. */
  spread: number;
  samples: number[];
}

export function summarize(samples: readonly number[]): Summary {
  // An even number of samples averages the middle two: 0.3885 printed as 0.38849999999999996 without the rounding.
  const med = round(median(samples), 4);
  const min = Math.min(...samples);
  const max = Math.max(...samples);
  return { median: med, min, max, spread: med > 0 ? round((max - min) / med, 3) : 0, samples: [...samples] };
}

/** Bytes per second in MiB/s (2^20 bytes, as the pipeline's own verification figure counts them). */
export function mibPerSecond(bytes: number, durationMs: number): number {
  if (!(durationMs > 0)) return Number.NaN;
  return round(bytes / 1048576 / (durationMs / 1000), 1);
}

export function kibToMib(kib: number): number {
  return round(kib / 1024, 1);
}

export type Verdict = 'PASS' | 'FAIL' | 'N/A';

export interface TargetResult {
  name: string;
  /** What is compared, in words, e.g. 'pipeline dump wall / raw pg_dump wall'. */
  description: string;
  measured: number | null;
  /** The bound the measurement must not cross. */
  limit: number;
  /** 'max': measured must be ≤ limit; 'min': measured must be ≥ limit. */
  kind: 'max' | 'min';
  unit: string;
  verdict: Verdict;
  note?: string;
}

/** PASS when the measurement is within its bound, FAIL when not, N/A when there is no measurement. */
export function judge(measured: number | null | undefined, limit: number, kind: 'max' | 'min'): Verdict {
  if (measured === null || measured === undefined || !Number.isFinite(measured)) return 'N/A';
  return (kind === 'max' ? measured <= limit : measured >= limit) ? 'PASS' : 'FAIL';
}

/**
 * The targets of issue 16 ("Faster than pg_dump itself"): against what a user would run instead, pg_dump -Fc at its
 * default compression and pg_restore from that archive. The same-compression ratios of issue 5 are kept in the
 * result as information (Figures.dumpRatio, restoreRatio), not judged.
 */
export const TARGETS = {
  dumpVsPgDumpDefault: 0.4,
  dumpVsUncompressed: 1.6,
  storedVsPgDumpDefault: 1.0,
  restoreVsPgRestoreDefault: 0.9,
  peakRssMb: 160,
  verifyMBps: 300,
  /** "Flat from medium to large": the larger database may cost at most this share more peak memory. */
  rssGrowthAllowed: 0.1,
} as const;

/**
 * Whether peak memory is flat across sizes: the larger run's peak RSS may exceed the smaller one's by at most
 * `allowed` (a share) plus `slackMb` (allocator and GC noise that has nothing to do with the data size).
 */
export function isFlat(
  smallerMb: number,
  largerMb: number,
  allowed: number = TARGETS.rssGrowthAllowed,
  slackMb = 8,
): boolean {
  return largerMb <= smallerMb * (1 + allowed) + slackMb;
}

export interface Figures {
  /** Pipeline dump wall / raw `pg_dump -Fc` (default compression) wall, median of the rounds. */
  dumpVsPgDumpDefault: number;
  /** Pipeline dump wall / raw `pg_dump -Fc -Z0` to /dev/null wall, median of the rounds. */
  dumpVsUncompressed: number;
  /** Stored bytes / bytes of the default `pg_dump -Fc` archive. */
  storedVsPgDumpDefault: number;
  /** Pipeline restore data path / raw `pg_restore --jobs N` from the default archive on local disk. */
  restoreVsPgRestoreDefault: number;
  verifyMBps: number;
  dumpPeakRssMb: number;
  restorePeakRssMb: number;
  /** Information (issue 5's targets): pipeline / raw at the same pg_dump arguments, and restore from the same archive. */
  dumpRatio: number;
  restoreRatio: number;
}

/** Peak RSS of another size's recorded run, to judge flatness against. */
export interface OtherRun {
  size: string;
  dumpPeakRssMb: number;
  restorePeakRssMb: number;
}

/**
 * Every target, judged. Flatness is judged only when `smaller` (a recorded run at a smaller size) is given;
 * without it the verdict is N/A.
 */
export function evaluateTargets(figures: Figures, smaller?: OtherRun): TargetResult[] {
  const target = (
    name: string,
    description: string,
    measured: number,
    limit: number,
    kind: 'max' | 'min',
    unit: string,
  ): TargetResult => ({
    name,
    description,
    measured,
    limit,
    kind,
    unit,
    verdict: judge(measured, limit, kind),
  });
  const results: TargetResult[] = [
    target(
      'dump vs pg_dump default',
      'pipeline dump wall / raw pg_dump -Fc (its default compression) wall, median of the rounds',
      figures.dumpVsPgDumpDefault,
      TARGETS.dumpVsPgDumpDefault,
      'max',
      '×',
    ),
    target(
      'dump vs uncompressed',
      'pipeline dump wall / raw pg_dump -Fc -Z0 to /dev/null wall, median of the rounds',
      figures.dumpVsUncompressed,
      TARGETS.dumpVsUncompressed,
      'max',
      '×',
    ),
    target(
      'stored vs pg_dump default',
      'stored (compressed, encrypted) bytes / bytes of the default pg_dump -Fc archive',
      figures.storedVsPgDumpDefault,
      TARGETS.storedVsPgDumpDefault,
      'max',
      '×',
    ),
    target(
      'restore vs pg_restore default',
      'pipeline restore wall (download, decrypt, decompress, spool, pg_restore) / raw pg_restore from the default archive on disk, median of the rounds',
      figures.restoreVsPgRestoreDefault,
      TARGETS.restoreVsPgRestoreDefault,
      'max',
      '×',
    ),
    target(
      'dump memory',
      'peak RSS of the pipeline dump process',
      figures.dumpPeakRssMb,
      TARGETS.peakRssMb,
      'max',
      'MiB',
    ),
    target(
      'restore memory',
      'peak RSS of the pipeline restore process',
      figures.restorePeakRssMb,
      TARGETS.peakRssMb,
      'max',
      'MiB',
    ),
    target(
      'verification',
      'verification pass (re-read, SHA-256, decrypt) over stored bytes',
      figures.verifyMBps,
      TARGETS.verifyMBps,
      'min',
      'MiB/s',
    ),
  ];
  for (const [name, mine, theirs] of [
    ['dump memory flat', figures.dumpPeakRssMb, smaller?.dumpPeakRssMb],
    ['restore memory flat', figures.restorePeakRssMb, smaller?.restorePeakRssMb],
  ] as const) {
    const growth = theirs === undefined ? null : round(mine / theirs, 3);
    results.push({
      name,
      description: smaller
        ? `peak RSS here / peak RSS at ${smaller.size} (${theirs} MiB)`
        : 'peak RSS against a smaller recorded size (none recorded)',
      measured: growth,
      limit: round(1 + TARGETS.rssGrowthAllowed, 3),
      kind: 'max',
      unit: '×',
      verdict: theirs === undefined ? 'N/A' : isFlat(theirs, mine) ? 'PASS' : 'FAIL',
      note: '+ 8 MiB of allocator noise',
    });
  }
  return results;
}

/** A target's limit as the console and RESULTS.md show it, with any allowance the verdict also grants. */
export function limitText(target: TargetResult): string {
  const limit = `${target.kind === 'max' ? '≤' : '≥'} ${target.limit} ${target.unit}`;
  return target.note ? `${limit} (${target.note})` : limit;
}

/** Whether every judged target passed (N/A ones do not count either way). */
export function allPassed(results: readonly TargetResult[]): boolean {
  return results.every((result) => result.verdict !== 'FAIL');
}

/** The order in which a pair's sides run: alternating, so neither side always runs on a warmer machine. */
export function pairOrder<T>(pairIndex: number, first: T, second: T): [T, T] {
  return rotation(pairIndex, [first, second]) as [T, T];
}

/** The sides of round `index`, rotated by one each round: every side runs in every position equally often. */
export function rotation<T>(index: number, sides: readonly T[]): T[] {
  const shift = index % sides.length;
  return [...sides.slice(shift), ...sides.slice(0, shift)];
}

/** Lambda's time limit, seconds. */
export const LAMBDA_LIMIT_S = 900;
/** vCPUs of a 3,008 MB Lambda: one per 1,769 MB of memory (1.7); issue 16 rounds it to 2. */
export const LAMBDA_VCPUS: readonly number[] = [round(3008 / 1769, 2), 2];
/** What issue 16 compares with: a plain pg_dump-on-Lambda tool, published as 10.5 GB in about 15 minutes. */
export const PUBLISHED_PG_DUMP_LAMBDA_GB = 10.5;

/** The largest database whose dump fits in Lambda's 15 minutes, projected from one bench size (issue 16, item 4). */
export interface LambdaCeiling {
  databaseMib: number;
  /** CPU seconds per dump of what a Lambda runs: pg_dump and the worker (the backend runs on RDS, S3 takes the upload). */
  lambdaCpuS: number;
  /** Database MiB dumped per vCPU-second of that work. */
  mibPerVcpuSecond: number;
  /** At each vCPU count, if pg_dump, the zstd thread and the main thread keep them all busy: GiB of database. */
  cpuCeilingGiB: { vcpus: number; gib: number }[];
  /**
   * From the pipeline dump's median wall time on the bench machine, whose pg_dump backend, local S3 server and
   * other load share its cores (they do not on AWS): GiB of database; the conservative figure.
   */
  wallCeilingGiB: number;
  /** `pg_dump -Fc` at its default compression in the same 15 minutes, by its own CPU (one core: its gzip is single-threaded). */
  pgDumpDefaultCeilingGiB: number;
}

/**
 * Projects the Lambda ceiling from a bench run: database size over the CPU seconds a Lambda would spend (the
 * pipeline's `tool` and `worker` medians), scaled to 900 s at each vCPU count, and the same from the wall time.
 * Undefined when the run has no CPU figures (not Linux) or no dump rounds.
 */
export function lambdaCeiling(input: {
  sizeBytes: number;
  pipelineCpu: Readonly<Record<string, number>>;
  pipelineWallMs: number;
  defaultCpu: Readonly<Record<string, number>>;
}): LambdaCeiling | undefined {
  const { tool, worker } = input.pipelineCpu;
  const defaultTool = input.defaultCpu.tool;
  if (tool === undefined || worker === undefined || !(tool + worker > 0) || !(input.pipelineWallMs > 0)) {
    return undefined;
  }
  const databaseMib = input.sizeBytes / 1048576;
  const lambdaCpuS = tool + worker;
  const perVcpuSecond = databaseMib / lambdaCpuS;
  const gib = (mibPerSecond: number) => round((mibPerSecond * LAMBDA_LIMIT_S) / 1024, 1);
  return {
    databaseMib: round(databaseMib, 1),
    lambdaCpuS: round(lambdaCpuS, 2),
    mibPerVcpuSecond: round(perVcpuSecond, 1),
    cpuCeilingGiB: LAMBDA_VCPUS.map((vcpus) => ({ vcpus, gib: gib(perVcpuSecond * vcpus) })),
    wallCeilingGiB: gib(databaseMib / (input.pipelineWallMs / 1000)),
    pgDumpDefaultCeilingGiB: defaultTool && defaultTool > 0 ? gib(databaseMib / defaultTool) : 0,
  };
}
