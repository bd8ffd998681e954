// The bench's result: the figures and verdicts from the samples, the JSON record, RESULTS.md and the summary lines.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchSizeName } from './generate.js';
import { type BenchRun, SIZES } from './options.js';
import type { WorkerReport } from './pipeline-worker.js';
import { execFileAsync, lambdaRuntime, REPO } from './processes.js';
import {
  type BenchResult,
  type CompressionRow,
  renderSection,
  type Sample,
  updateResults,
} from './report.js';
import type { BenchServers, BenchSource } from './setup.js';
import {
  evaluateTargets,
  kibToMib,
  lambdaCeiling,
  limitText,
  median,
  mibPerSecond,
  type OtherRun,
  pairedRatios,
  ratio,
  round,
  summarize,
} from './stats.js';

/** What the phases measured, for buildResult. */
export interface Measurements {
  dump: { samples: Sample[]; reports: WorkerReport[] };
  restore: { samples: Sample[]; reports: WorkerReport[] };
  verify: { reports: WorkerReport[]; baseline: WorkerReport };
  compression: { rows: CompressionRow[]; note: string };
  /** Said so far (too few pairs, failed Keycloak checks); buildResult adds its own. */
  notes: string[];
  /** performance.now() at the start of the run. */
  started: number;
}

export async function buildResult(
  run: BenchRun,
  servers: Pick<BenchServers, 'durable' | 'loadStart'>,
  source: BenchSource,
  measured: Measurements,
): Promise<BenchResult> {
  const { options } = run;
  const { sizeBytes, versions, rawIsUncompressed } = source;
  const { notes } = measured;
  const dumpSamples = measured.dump.samples;
  const dumpReports = measured.dump.reports;
  const restoreSamples = measured.restore.samples;
  const restoreReports = measured.restore.reports;
  const verifyReports = measured.verify.reports;
  const lastDump = dumpReports.at(-1)!;
  const side = (samples: Sample[], which: Sample['side']) =>
    samples.filter((s) => s.side === which).map((s) => s.ms);
  const dumpRaw = summarize(side(dumpSamples, 'raw'));
  const dumpPipeline = summarize(side(dumpSamples, 'pipeline'));
  const restoreRaw = summarize(side(restoreSamples, 'raw'));
  const restorePipeline = summarize(side(restoreSamples, 'pipeline'));
  const verifyMBps = summarize(
    verifyReports.map((r) => mibPerSecond(Number(r.details.storedBytes), Number(r.details.verifyMs))),
  );
  const warmMBps = summarize(
    verifyReports.map((r) => mibPerSecond(Number(r.details.storedBytes), Number(r.details.verifyWarmMs))),
  );
  const listMBps = summarize(
    verifyReports.map((r) => mibPerSecond(Number(r.details.storedBytes), Number(r.details.listMs))),
  );
  const rss = (reports: WorkerReport[]) => summarize(reports.map((r) => kibToMib(r.maxRssKib)));
  const dumpRss = rss(dumpReports);
  const restoreRss = rss(restoreReports);
  const dumpRatios = summarize(pairedRatios(dumpSamples));
  const restoreRatios = summarize(pairedRatios(restoreSamples));
  const uncompressedSide = rawIsUncompressed ? 'raw' : 'uncompressed';
  const dumpVsDefault = summarize(pairedRatios(dumpSamples, 'pipeline', 'default'));
  const dumpVsUncompressed = summarize(pairedRatios(dumpSamples, 'pipeline', uncompressedSide));
  const restoreVsDefault = summarize(pairedRatios(restoreSamples, 'pipeline', 'default'));
  const bytesOf = (which: Sample['side'], field: string) =>
    median(dumpSamples.filter((s) => s.side === which).map((s) => Number(s[field])));
  const defaultBytes = bytesOf('default', 'bytes');
  const storedBytes = bytesOf('pipeline', 'storedBytes');
  const figures = {
    dumpVsPgDumpDefault: dumpVsDefault.median,
    dumpVsUncompressed: dumpVsUncompressed.median,
    storedVsPgDumpDefault: ratio(storedBytes, defaultBytes),
    restoreVsPgRestoreDefault: restoreVsDefault.median,
    dumpRatio: dumpRatios.median,
    restoreRatio: restoreRatios.median,
    verifyMBps: verifyMBps.median,
    // The peak over every run: memory is judged by its worst case.
    dumpPeakRssMb: dumpRss.max,
    restorePeakRssMb: restoreRss.max,
  };
  const smaller = await readSmallerRun(options.size, path.dirname(run.jsonFile));
  const targets = evaluateTargets(figures, smaller);
  if (options.s3Nice > 0) {
    notes.push(
      `diagnostic run: the bench process, which hosts s3rver, ran at niceness ${options.s3Nice} (children at 0), so s3rver's CPU yields to pg_dump and the pipeline`,
    );
  }
  if (options.size !== 'medium')
    notes.push('the issue sets its targets at medium (memory flatness: medium to large)');
  const loads = [...dumpSamples, ...restoreSamples].map((s) => s.load1);
  if (Math.max(...loads) > os.cpus().length) {
    notes.push(
      `the machine was shared: one-minute load average up to ${Math.max(...loads).toFixed(1)} on ${os.cpus().length} cores during the samples (median ${median(loads).toFixed(1)}); sides alternate and medians are reported`,
    );
  }
  const dumpCpu = {
    raw: cpuMedians(dumpSamples, 'raw'),
    pipeline: cpuMedians(dumpSamples, 'pipeline'),
    piped: cpuMedians(dumpSamples, 'piped'),
    default: cpuMedians(dumpSamples, 'default'),
  };
  const ceiling = lambdaCeiling({
    sizeBytes,
    pipelineCpu: dumpCpu.pipeline,
    pipelineWallMs: dumpPipeline.median,
    defaultCpu: dumpCpu.default,
  });
  return {
    size: options.size,
    command: run.command,
    date: new Date().toISOString(),
    machine: {
      cores: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      memoryMib: Math.round(os.totalmem() / 1048576),
      kernel: os.release(),
      loadAverage: {
        start: servers.loadStart.map((l) => round(l, 2)),
        end: os.loadavg().map((l) => round(l, 2)),
      },
    },
    versions,
    revision: await revision(),
    settings: {
      pairs: options.pairs,
      jobs: options.jobs,
      compression: options.compression,
      zstdLevel: options.zstdLevel,
      durable: servers.durable,
      seed: options.seed,
      worker: `${options.bundle ? 'esbuild bundle, plain node' : 'tsx loader'}, GLIBC_TUNABLES=${lambdaRuntime.glibcTunables}, NODE_OPTIONS=${lambdaRuntime.nodeOptions}`,
      restoreServer:
        'a standalone local cluster of the same PostgreSQL (no WAL archive, no standby), fresh database per run',
    },
    sizeBytes,
    ...figures,
    ...(ceiling ? { lambdaCeiling: ceiling } : {}),
    dump: {
      raw: dumpRaw,
      pipeline: dumpPipeline,
      piped: summarize(side(dumpSamples, 'piped')),
      default: summarize(side(dumpSamples, 'default')),
      uncompressed: summarize(side(dumpSamples, uncompressedSide)),
      vsDefaultRatios: dumpVsDefault,
      vsUncompressedRatios: dumpVsUncompressed,
      defaultBytes,
      archiveBytes: Number(lastDump.details.archiveBytes ?? lastDump.details.plainBytes),
      ratios: dumpRatios,
      ratioOfMedians: ratio(dumpPipeline.median, dumpRaw.median),
      pipedRatios: summarize(pairedRatios(dumpSamples, 'piped', 'raw')),
      cpu: dumpCpu,
      pipelineDataPath: summarize(dumpReports.map((r) => Number(r.details.dumpMs))),
      pipelineProcess: summarize(dumpReports.map((r) => r.processMs)),
      plainBytes: Number(lastDump.details.plainBytes),
      storedBytes: Number(lastDump.details.storedBytes),
      samples: dumpSamples,
    },
    restore: {
      raw: restoreRaw,
      pipeline: restorePipeline,
      ratios: restoreRatios,
      ratioOfMedians: ratio(restorePipeline.median, restoreRaw.median),
      default: summarize(side(restoreSamples, 'default')),
      vsDefaultRatios: restoreVsDefault,
      cpu: {
        raw: cpuMedians(restoreSamples, 'raw'),
        pipeline: cpuMedians(restoreSamples, 'pipeline'),
        default: cpuMedians(restoreSamples, 'default'),
      },
      pipelineStep: summarize(restoreReports.map((r) => r.durationMs)),
      samples: restoreSamples,
    },
    verify: {
      MBps: verifyMBps,
      warmMBps,
      listMBps,
      storedBytes: Number(verifyReports[0]?.details.storedBytes),
      samples: verifyReports.map((r) => ({
        ...r.details,
        maxRssMib: kibToMib(r.maxRssKib),
        cpuS: round(r.cpu.userS + r.cpu.systemS, 2),
      })),
    },
    memory: {
      baselineRssMb: kibToMib(measured.verify.baseline.maxRssKib),
      baselineCpuS: round(measured.verify.baseline.cpu.userS + measured.verify.baseline.cpu.systemS, 2),
      dumpRssMb: dumpRss,
      restoreRssMb: restoreRss,
      verifyRssMb: rss(verifyReports),
      dumpHeapMb: kibToMib(Math.max(...dumpReports.map((r) => r.sampled.heapUsedKib))),
      dumpExternalMb: kibToMib(Math.max(...dumpReports.map((r) => r.sampled.externalKib))),
      restoreHeapMb: kibToMib(Math.max(...restoreReports.map((r) => r.sampled.heapUsedKib))),
      restoreExternalMb: kibToMib(Math.max(...restoreReports.map((r) => r.sampled.externalKib))),
    },
    compression: measured.compression,
    targets,
    passed: targets.every((t) => t.verdict !== 'FAIL'),
    notes,
    durationS: Math.round((performance.now() - measured.started) / 1000),
  };
}

/** Writes the JSON record and the size's section of the markdown summary. */
export async function recordResult(
  result: BenchResult,
  jsonFile: string,
  resultsFile: string,
): Promise<void> {
  await mkdir(path.dirname(jsonFile), { recursive: true });
  await writeFile(jsonFile, `${JSON.stringify(result, null, 2)}\n`);
  const existing = await readFile(resultsFile, 'utf8').catch(() => undefined);
  await writeFile(resultsFile, updateResults(existing, result.size, renderSection(result)));
}

/** The verdicts on stdout, one line a target. */
export function printSummary(result: BenchResult, jsonFile: string, resultsFile: string): void {
  process.stdout.write(`\nbench ${result.size}: database ${(result.sizeBytes / 1048576).toFixed(0)} MiB\n`);
  for (const t of result.targets) {
    const measured = t.measured === null ? '–' : `${t.measured} ${t.unit}`;
    process.stdout.write(
      `  ${t.verdict.padEnd(4)} ${t.name.padEnd(20)} ${measured.padStart(12)}  (${limitText(t)}) ${t.description}\n`,
    );
  }
  process.stdout.write(`results: ${path.relative(REPO, jsonFile)}, ${path.relative(REPO, resultsFile)}\n`);
}

/** Median CPU seconds per part over the samples of one side. */
function cpuMedians(samples: Sample[], side: Sample['side']): Record<string, number> {
  const parts = new Map<string, number[]>();
  for (const sample of samples.filter((s) => s.side === side)) {
    for (const [name, value] of Object.entries((sample.cpu ?? {}) as Record<string, number>)) {
      parts.set(name, [...(parts.get(name) ?? []), value]);
    }
  }
  return Object.fromEntries([...parts].map(([name, values]) => [name, round(median(values), 2)]));
}

/** HEAD, and the data-path files that differ from it (other sessions may be changing them while we measure). */
async function revision(): Promise<{ commit: string; dirty: string[] }> {
  // trimEnd only: a porcelain line starts with its status, a space for an unstaged change (" M functions/...").
  const git = async (...args: string[]) => (await execFileAsync('git', args, { cwd: REPO })).stdout.trimEnd();
  try {
    const commit = await git('rev-parse', 'HEAD');
    const dirty = (await git('status', '--porcelain', '--', 'functions', 'cli', 'local', 'bench/*.ts'))
      .split('\n')
      .filter(Boolean)
      .map((line) => line.slice(3));
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: [] };
  }
}

/** The recorded result of the next smaller size, if any, for the memory flatness verdict. */
async function readSmallerRun(size: BenchSizeName, dir: string): Promise<OtherRun | undefined> {
  const index = SIZES.indexOf(size);
  for (let i = index - 1; i >= 0; i--) {
    try {
      const other = JSON.parse(await readFile(path.join(dir, `${SIZES[i]}.json`), 'utf8')) as BenchResult;
      // Flatness is a statement about sizes from medium up; small's figures are still shown when that is all there is.
      return {
        size: other.size,
        dumpPeakRssMb: other.dumpPeakRssMb,
        restorePeakRssMb: other.restorePeakRssMb,
      };
    } catch {
      // not recorded
    }
  }
  return undefined;
}
