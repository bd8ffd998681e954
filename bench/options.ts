// The bench's command line: which size, how many pairs, which phases, where the results go.
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { BenchSizeName } from './generate.js';
import { BENCH_DIR } from './processes.js';

export const SIZES: readonly BenchSizeName[] = ['small', 'medium', 'large'];
export const PHASES = ['dump', 'restore', 'verify', 'table'] as const;

export interface Options {
  size: BenchSizeName;
  json?: string;
  pairs: number;
  jobs: number;
  stateDir?: string;
  compression: string;
  zstdLevel: number;
  seed: number;
  table: boolean;
  results: string;
  profile: boolean;
  clean: boolean;
  only: string;
  s3Nice: number;
  bundle: boolean;
}

/** One bench run as asked for: the options and what follows from them. */
export interface BenchRun {
  options: Options;
  /** The phases to run (--only). */
  phases: Set<string>;
  /** Some phase is left out: nothing is recorded. */
  partial: boolean;
  /** The command as typed, for the record. */
  command: string;
  /** The bench stack's state folder. */
  root: string;
  jsonFile: string;
}

function positive(name: string, min = 1) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

export function parseOptions(): BenchRun {
  const program = new Command('bench')
    .description('dump and restore speed and memory of the pipeline against raw pg_dump / pg_restore')
    .option(
      '--size <size>',
      'small | medium | large',
      (value: string) => {
        if (!SIZES.includes(value as BenchSizeName)) throw new InvalidArgumentError('small, medium or large');
        return value as BenchSizeName;
      },
      'small',
    )
    .option('--json <file>', 'where the result goes (default bench/results/<size>.json)')
    .option(
      '--pairs <n>',
      'raw/pipeline pairs per measurement (the issue asks for at least 3)',
      positive('--pairs'),
      3,
    )
    .option('--jobs <n>', 'pg_restore --jobs on both sides', positive('--jobs'), 2)
    .option('--state-dir <dir>', 'the bench stack (default bench/out/stack-<size>)')
    .option(
      '--compression <setting>',
      'KB_DUMP_COMPRESSION of the pipeline (the raw side gets its pg_dump arguments)',
      'pipeline',
    )
    .option('--zstd-level <n>', 'KB_DUMP_ZSTD_LEVEL of the pipeline', positive('--zstd-level'), 1)
    .option('--seed <n>', 'generator seed', positive('--seed', 0), 1)
    .option('--no-table', 'skip the compression table')
    .option(
      '--only <phases>',
      `run only these phases (${PHASES.join(',')}) for diagnosis; nothing is recorded`,
      PHASES.join(','),
    )
    .option('--results <file>', 'markdown summary to update', path.join(BENCH_DIR, 'RESULTS.md'))
    .option('--profile', 'write CPU profiles of the workers (--cpu-prof) into <state-dir>/bench-prof', false)
    .option(
      '--s3-nice <n>',
      "run this process (it hosts s3rver) at this niceness, its children at 0: a diagnosis of how much s3rver, whose work is S3's on AWS, takes from pg_dump on a small machine",
      positive('--s3-nice', 0),
      0,
    )
    .option(
      '--no-bundle',
      'run the worker through tsx as a loader instead of as the esbuild bundle with plain node that the Lambdas run',
    )
    .option(
      '--clean',
      'stop and delete the bench stack at the end (default: keep it for the next run)',
      false,
    );
  program.parse();
  const options = program.opts<Options>();
  const phases = new Set(options.only.split(',').map((p) => p.trim()));
  const unknown = [...phases].filter((p) => !(PHASES as readonly string[]).includes(p));
  if (unknown.length > 0) throw new Error(`--only: unknown phase ${unknown.join(', ')}`);
  return {
    options,
    phases,
    partial: PHASES.some((p) => !phases.has(p) && (p !== 'table' || options.table)),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    root: path.resolve(options.stateDir ?? path.join(BENCH_DIR, 'out', `stack-${options.size}`)),
    jsonFile: path.resolve(options.json ?? path.join(BENCH_DIR, 'results', `${options.size}.json`)),
  };
}
