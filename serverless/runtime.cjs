// Process settings every Lambda starts with, shared by serverless.yml and the benchmark's worker (bench/run.ts),
// which runs the pipeline as the Lambdas run it.
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

module.exports = { glibcTunables, nodeOptions };
