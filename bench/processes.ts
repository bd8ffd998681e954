// The programs the bench runs (raw pg_dump and pg_restore, the pipeline worker) and what each cost: wall time,
// stdout bytes, CPU by process.
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { toolConnection } from '../functions/adapters/postgres/pg-process.js';
import type { WorkerJob, WorkerReport } from './pipeline-worker.js';
import { cpuDelta, cpuTimes } from './proc-cpu.js';

/** The Lambdas' process settings (serverless/runtime.cjs), so the worker runs as they do. */
export const lambdaRuntime = createRequire(import.meta.url)('../serverless/runtime.cjs') as {
  glibcTunables: string;
  nodeOptions: string;
  /** serverless-esbuild's options: esbuild's, plus its own `exclude`, `packager` and `outputFileExtension`. */
  esbuild: Record<string, unknown> & { exclude: string[] };
};
/**
 * What the worker and the raw tools add to this process's environment: the Lambdas' own settings, which the
 * pipeline's pg_dump and pg_restore inherit from the worker (serverless.yml takes them from the same module).
 */
export const LAMBDA_ENV = {
  GLIBC_TUNABLES: lambdaRuntime.glibcTunables,
  NODE_OPTIONS: lambdaRuntime.nodeOptions,
};
export const execFileAsync = promisify(execFile);
export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(BENCH_DIR, '..');
const WORKER = path.join(BENCH_DIR, 'pipeline-worker.ts');

/** Programs running now, signalled if this process exits under them. */
const liveChildren = new Set<number>();

export const say = (line: string) =>
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/** Sends SIGTERM to every program the bench is running: at exit, whatever ended it. */
export function stopChildrenSync(): void {
  for (const pid of liveChildren) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
}

/** Children run at normal priority even when this process (s3rver's) was niced with --s3-nice. */
function unniceChild(pid: number | undefined): void {
  if (pid === undefined || os.getPriority(0) === 0) return;
  try {
    os.setPriority(pid, 0);
  } catch {
    // not allowed (not root): the child keeps this process's niceness
  }
}

/** Runs `run`, with the CPU this process (s3rver, reaped children) and the server's postmaster tree used meanwhile. */
export async function withCpu<T>(serverPid: number | undefined, run: () => Promise<T>) {
  const before = await Promise.all([cpuTimes('self'), serverPid ? cpuTimes(serverPid) : undefined]);
  const result = await run();
  // A backend exits just after its client disconnects, and the postmaster reaps it a moment later.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const after = await Promise.all([cpuTimes('self'), serverPid ? cpuTimes(serverPid) : undefined]);
  return { result, main: cpuDelta(before[0], after[0]), server: cpuDelta(before[1], after[1]) };
}

/** The local clusters' URLs carry their password: it goes to the program by PGPASSWORD, never in its argv. */
function passwordsOutOfArgs(args: string[]): { args: string[]; password?: string } {
  let password: string | undefined;
  const stripped = args.map((arg) => {
    if (!/^postgres(ql)?:\/\//.test(arg)) return arg;
    const connection = toolConnection(arg);
    password = connection.env.PGPASSWORD ?? password;
    return connection.dbname;
  });
  return password === undefined ? { args: stripped } : { args: stripped, password };
}

/** Runs a program to completion: wall time, and the bytes of its stdout when counted. */
export async function timeProcess(
  file: string,
  args: string[],
  stdout: 'null' | 'count',
): Promise<{ ms: number; bytes: number }> {
  const devNull = stdout === 'null' ? openSync('/dev/null', 'w') : undefined;
  const { args: argv, password } = passwordsOutOfArgs(args);
  const started = performance.now();
  const child = spawn(file, argv, {
    stdio: ['ignore', devNull ?? 'pipe', 'pipe'],
    env: { ...process.env, ...LAMBDA_ENV, ...(password === undefined ? {} : { PGPASSWORD: password }) },
  });
  unniceChild(child.pid);
  if (child.pid) liveChildren.add(child.pid);
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    stderr = (stderr + text).slice(-8192);
  });
  let bytes = 0;
  const counted =
    stdout === 'count'
      ? pipeline(
          child.stdout!,
          new Writable({
            highWaterMark: 1 << 20,
            write(chunk: Buffer, _encoding, callback) {
              bytes += chunk.length;
              callback();
            },
          }),
        )
      : Promise.resolve();
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  try {
    const [{ code, signal }] = await Promise.all([exit, counted]);
    const ms = Math.round(performance.now() - started);
    if (code !== 0)
      throw new Error(
        `${path.basename(file)} ${code !== null ? `exited with ${code}` : `was killed by ${signal}`}: ${stderr.trim()}`,
      );
    return { ms, bytes };
  } finally {
    if (child.pid) liveChildren.delete(child.pid);
    if (devNull !== undefined) closeSync(devNull);
  }
}

/** Bundles the worker as serverless.yml bundles the Lambdas (serverless/runtime.cjs: esbuild, ESM, source map). */
export async function bundleWorker(dir: string): Promise<string> {
  const esbuild = await import('esbuild');
  const outfile = path.join(dir, 'pipeline-worker.mjs');
  const { exclude, packager: _packager, outputFileExtension: _extension, ...options } = lambdaRuntime.esbuild;
  await esbuild.build({
    ...options,
    entryPoints: [WORKER],
    outfile,
    external: exclude,
    logLevel: 'error',
  });
  say(`worker bundled into ${path.relative(REPO, outfile)}`);
  return outfile;
}

/**
 * Runs the pipeline worker in its own node process and reads its report: tsx as a loader (one process), or the
 * bundle from bundleWorker with plain node.
 */
export async function runWorker(
  job: WorkerJob,
  env: NodeJS.ProcessEnv,
  profileDir: string | undefined,
  bundle: string | undefined,
): Promise<WorkerReport> {
  const nodeArgs = bundle ? [] : ['--import', 'tsx'];
  // One directory per run: node writes one profile per thread (tsx's loader has its own), named by pid and thread.
  if (profileDir) {
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', path.join(profileDir, `${job.mode}-${Date.now()}`));
  }
  const child = execFileAsync(process.execPath, [...nodeArgs, bundle ?? WORKER, JSON.stringify(job)], {
    cwd: REPO,
    env,
    maxBuffer: 1 << 20,
  });
  if (child.child.pid) liveChildren.add(child.child.pid);
  unniceChild(child.child.pid);
  try {
    const { stdout } = await child;
    const line = stdout.trim().split('\n').at(-1) ?? '';
    return JSON.parse(line) as WorkerReport;
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? '').trim();
    throw new Error(`the ${job.mode} worker failed: ${stderr || (error as Error).message}`);
  } finally {
    if (child.child.pid) liveChildren.delete(child.child.pid);
  }
}
