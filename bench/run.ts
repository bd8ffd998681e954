// `npm run bench -- --size small|medium|large --json FILE`: the pipeline against raw pg_dump / pg_restore, side by side.
//
// Method
// - Its own local stack (bench/out/stack-<size>, reused across runs), seeded with the Keycloak fixture and grown
//   once with bench/generate.ts; durable (fsync on, the stack's default): the restores write to disk as a real
//   server would, and a restore into a server that skips fsync would flatter neither side in particular but would
//   not be a restore anyone runs. Dumps read the replica after it has replayed the growth.
// - Restores go into a separate, standalone cluster (no WAL archive, no standby) in the same state dir, into a
//   fresh database each time (dropped, re-created and checkpointed, untimed): restoring into the stack's primary
//   would archive and stream every restored byte, which is work no real scratch server does.
// - Each round runs the raw tools and the pipeline back to back, in rotating order, ≥ 3 rounds; medians.
//   What users would run instead (issue 16): `pg_dump -Fc` at its default compression (gzip, bytes counted through a
//   pipe), `pg_dump -Fc -Z0` to /dev/null (the physical limit of producing the archive), and `pg_restore --jobs N`
//   from the default archive on local disk (written once, untimed).
//   Raw dump: `pg_dump -Fc` with the pipeline's pg_dump arguments (-Z0 when the pipeline compresses), stdout to
//   /dev/null. Pipeline dump:
//   dumpStep (what the dump Lambda runs: pg_dump in an exported snapshot on the replica, the table counts,
//   encryption, multipart upload to s3rver, manifest) in a separate node process, run as the Lambdas run it (one
//   esbuild bundle, plain node; --no-bundle runs the sources through tsx); the ratio uses the step's own
//   wall time, with services already built (as in a warm Lambda); the whole process time is recorded too.
//   Raw restore: `pg_restore --jobs N` with the pipeline's flags from the stored archive, decrypted once to disk.
//   Pipeline restore: restoreStep in a separate process; the ratio uses its data path (download, decrypt, spool,
//   pg_restore); the step with its Keycloak checks is recorded too.
// - Environment: the worker, and the raw pg_dump and pg_restore, start with the Lambdas' GLIBC_TUNABLES and NODE_OPTIONS
//   (serverless/runtime.cjs), which the pipeline's own pg_dump and pg_restore inherit.
// - Verification: tools.verifyStored over the stored dump as the steps describe it (stored SHA-256 against the
//   manifest, authenticated decryption), in MiB of stored bytes per second, first pass in a fresh worker (as a
//   Lambda would run it) and a second pass in the same worker; then with pg_restore --list (the verify step).
// - Peak RSS: process.resourceUsage().maxRSS of each worker (pg_dump's and pg_restore's own memory is theirs, not
//   the pipeline's). Flatness: compared with the recorded result of the next smaller size in bench/results/.
// - Compression table: raw pg_dump at each setting, counted through a pipe, one run each.
// - s3rver runs inside this process (the stack's), so its CPU competes with the pipeline on a small machine;
//   on AWS that work is S3's.
import { performance } from 'node:perf_hooks';
import { describeError } from '../functions/core/errors.js';
import { parseOptions } from './options.js';
import { compressionTable, measureDumps, measureRestores, measureVerification } from './phases.js';
import { say } from './processes.js';
import { buildResult, printSummary, recordResult } from './result.js';
import { prepareSource, startBench, stopBench } from './setup.js';

async function main(): Promise<number> {
  const run = parseOptions();
  const { options } = run;
  const started = performance.now();
  const notes: string[] = [];
  if (options.pairs < 3) notes.push(`only ${options.pairs} pair(s): the issue asks for at least 3`);

  const servers = await startBench(run);
  try {
    const source = await prepareSource(run, servers);
    const dump = await measureDumps(run, servers, source);
    const restore = await measureRestores(run, servers, source, dump.reference, notes);
    const verify = await measureVerification(run, source, dump.reference);
    const compression = await compressionTable(run, source);

    if (run.partial) {
      say(`partial run (--only ${options.only}): nothing recorded; samples follow`);
      for (const sample of [...dump.samples, ...restore.samples])
        process.stdout.write(`${JSON.stringify(sample)}\n`);
      return 0;
    }
    const result = await buildResult(run, servers, source, {
      dump,
      restore,
      verify,
      compression,
      notes,
      started,
    });
    await recordResult(result, run.jsonFile, options.results);
    printSummary(result, run.jsonFile, options.results);
    return result.passed ? 0 : 1;
  } finally {
    await stopBench(run, servers);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench failed: ${describeError(error)}\n`);
    process.exitCode = 2;
  },
);
