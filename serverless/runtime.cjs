// Process settings every Lambda starts with, and how its code is bundled, shared by serverless.yml and the
// benchmark's worker (bench/run.ts), which runs the pipeline as the Lambdas run it.
'use strict';

/**
 * glibc malloc, read once at process start (GLIBC_TUNABLES; Debian's and Amazon Linux's glibc both read it).
 * The data path moves every byte through short-lived buffers: 64 KiB socket reads (node's HTTP parser copies each
 * into a new one), 1 MiB encryption frames in and out. With glibc's defaults, freed memory at the top of the heap
 * goes back to the kernel (trim) and 1 MiB blocks may be mmap'ed one by one, so the next buffer faults its pages
 * in afresh: a first verification pass of a 163 MiB dump took 20,000-26,000 page faults. Keeping freed memory
 * for reuse (blocks below 32 MiB from the heap, no trim below 256 MiB free) costs no peak memory: the peak is
 * what the buffers in flight need, and the heap stays at that peak instead of shrinking and growing again.
 *
 * And the heap in transparent huge pages (hugetlb=1: malloc madvises the memory it takes from the kernel, which
 * counts where the kernel's THP mode is "madvise", as on the machine the benchmark ran on): what a fresh process
 * touches once then costs a fault per 2 MiB instead of one per 4 KiB. A first verification pass of the 163 MiB
 * medium dump took 10,700-12,200 page faults and 822-1,261 ms without it, 1,300-2,200 faults and 634-931 ms with
 * it (scratch, eight fresh processes each); peak RSS moved by less than its run-to-run spread. glibc reads this
 * tunable from 2.35 on. An older glibc ignores it and keeps the other two: Amazon Linux 2023, under the nodejs22.x
 * runtime, has 2.34, so in Lambda this part is a no-op until the runtime's glibc moves.
 */
const glibcTunables =
  'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456:glibc.malloc.hugetlb=1';

/**
 * Node's options (NODE_OPTIONS). Source maps for readable stack traces, and V8's young generation capped at 2 MiB per
 * semi-space: the dump reads pg_dump's archive in 64 KiB socket chunks, 10,000 fresh Buffers per 626 MiB, each freed
 * only when a scavenge finds it dead, and with the default young generation tens of MiB of them waited for one.
 * Medium bench dumps, the worker alternating (scratch, three pairs at a load of 5-7): peak RSS 151.4-158.5 MiB with
 * the cap against 165.4-171.2 MiB without, CPU unchanged (3.6-5.3 s each way; bench/RESULTS.md, seventh round).
 */
const nodeOptions = '--enable-source-maps --max-semi-space-size=2';

/**
 * How the Lambdas are bundled (serverless-esbuild's options; `exclude`, `packager` and `outputFileExtension` are its
 * own, the rest goes to esbuild). Source maps for readable stack traces (--enable-source-maps above), without the
 * sources' text: Node reads the map of the whole bundle when the module loads and keeps it, and it needs only the
 * mappings to name the TypeScript file and line. With the sources in it the map was 5.1 MB and a worker's RSS after
 * loading 98.7 MiB; without, 2.0 MB and 89.1 MiB (85.6 MiB with no map), measured with the bench's worker bundle.
 */
const esbuild = {
  bundle: true,
  minify: false,
  sourcemap: true,
  sourcesContent: false,
  target: 'node22',
  platform: 'node',
  format: 'esm',
  outputFileExtension: '.mjs',
  // CommonJS dependencies (pg, the Encryption SDK) call require(); ESM output gets one back.
  banner: {
    js: "import { createRequire as kbCreateRequire } from 'node:module'; const require = kbCreateRequire(import.meta.url);",
  },
  // Bundle everything (no npm install at package time, so no network); pg's optional native binding is absent.
  exclude: ['pg-native'],
  packager: 'npm',
};

module.exports = { glibcTunables, nodeOptions, esbuild };
