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
 */
const glibcTunables = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456';

module.exports = { glibcTunables };
