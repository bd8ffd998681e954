import { describe, expect, it } from 'vitest';
import { cpuDelta, parseStat } from '../../bench/proc-cpu.js';
import { updateResults } from '../../bench/report.js';
import {
  allPassed,
  evaluateTargets,
  isFlat,
  judge,
  lambdaCeiling,
  limitText,
  median,
  mibPerSecond,
  pairedRatios,
  pairOrder,
  ratio,
  rotation,
  summarize,
} from '../../bench/stats.js';

const passing = {
  dumpVsPgDumpDefault: 0.3,
  dumpVsUncompressed: 1.5,
  storedVsPgDumpDefault: 0.98,
  restoreVsPgRestoreDefault: 0.85,
  verifyMBps: 320,
  dumpPeakRssMb: 150,
  restorePeakRssMb: 140,
  // Information only: issue 5's same-compression ratios are no longer judged.
  dumpRatio: 1.4,
  restoreRatio: 1.3,
};

describe('median', () => {
  it('takes the middle sample of an odd count, whatever the order', () => {
    expect(median([9, 1, 5])).toBe(5);
  });

  it('averages the middle two of an even count', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('is not pulled by one outlier, as a mean would be', () => {
    expect(median([10, 11, 500])).toBe(11);
  });

  it('refuses no samples rather than inventing a figure', () => {
    expect(() => median([])).toThrow(RangeError);
  });
});

describe('ratio', () => {
  it('divides and rounds to three decimals', () => {
    expect(ratio(1100, 1000)).toBe(1.1);
    expect(ratio(2, 3)).toBe(0.667);
  });

  it('is NaN against a zero or missing baseline', () => {
    expect(ratio(5, 0)).toBeNaN();
    expect(ratio(5, Number.NaN)).toBeNaN();
  });
});

describe('pairedRatios', () => {
  it('divides the sides of each round, whatever order they ran in, skipping incomplete rounds', () => {
    const samples = [
      { pair: 0, side: 'raw', ms: 100 },
      { pair: 0, side: 'pipeline', ms: 110 },
      { pair: 1, side: 'pipeline', ms: 300 },
      { pair: 1, side: 'raw', ms: 200 },
      { pair: 2, side: 'raw', ms: 100 },
    ];
    expect(pairedRatios(samples)).toEqual([1.1, 1.5]);
  });

  it('cancels a slow round that a ratio of medians would carry', () => {
    // Round 2 ran while the machine was busy: both sides doubled.
    const samples = [
      { pair: 0, side: 'raw', ms: 100 },
      { pair: 0, side: 'pipeline', ms: 105 },
      { pair: 1, side: 'raw', ms: 200 },
      { pair: 1, side: 'pipeline', ms: 210 },
      { pair: 2, side: 'raw', ms: 100 },
      { pair: 2, side: 'pipeline', ms: 210 },
    ];
    expect(median(pairedRatios(samples))).toBe(1.05);
  });

  it('compares any two sides by name', () => {
    const samples = [
      { pair: 0, side: 'raw', ms: 100 },
      { pair: 0, side: 'piped', ms: 104 },
    ];
    expect(pairedRatios(samples, 'piped', 'raw')).toEqual([1.04]);
  });
});

describe('summarize and rates', () => {
  it('reports median, extremes and spread of the samples', () => {
    expect(summarize([100, 120, 110])).toEqual({
      median: 110,
      min: 100,
      max: 120,
      spread: 0.182,
      samples: [100, 120, 110],
    });
  });

  it('gives the median of an even number of samples as a printable number', () => {
    expect(summarize([0.431, 0.346]).median).toBe(0.3885);
    expect(summarize([0.9, 0.8]).median).toBe(0.85);
    expect(summarize([2078, 2555]).median).toBe(2316.5);
  });

  it('counts MiB per second of 2^20 bytes', () => {
    expect(mibPerSecond(300 * 1048576, 2000)).toBe(150);
    expect(mibPerSecond(1, 0)).toBeNaN();
  });
});

describe('judge', () => {
  it('passes an upper bound that is met exactly and fails one just over', () => {
    expect(judge(1.1, 1.1, 'max')).toBe('PASS');
    expect(judge(1.101, 1.1, 'max')).toBe('FAIL');
  });

  it('passes a lower bound that is met and fails one below', () => {
    expect(judge(150, 150, 'min')).toBe('PASS');
    expect(judge(149.9, 150, 'min')).toBe('FAIL');
  });

  it('gives no verdict without a measurement', () => {
    expect(judge(null, 1, 'max')).toBe('N/A');
    expect(judge(Number.NaN, 1, 'max')).toBe('N/A');
  });
});

describe('isFlat', () => {
  it('allows growth within the share plus the slack', () => {
    expect(isFlat(200, 228, 0.1, 8)).toBe(true);
  });

  it('refuses memory that grows with the database', () => {
    expect(isFlat(200, 260, 0.1, 8)).toBe(false);
  });
});

describe('evaluateTargets', () => {
  it('passes every target the figures meet, leaving flatness open without a smaller run', () => {
    const results = evaluateTargets(passing);
    expect(results.filter((r) => r.verdict === 'PASS').map((r) => r.name)).toEqual([
      'dump vs pg_dump default',
      'dump vs uncompressed',
      'stored vs pg_dump default',
      'restore vs pg_restore default',
      'dump memory',
      'restore memory',
      'verification',
    ]);
    expect(results.filter((r) => r.verdict === 'N/A')).toHaveLength(2);
    expect(allPassed(results)).toBe(true);
  });

  it("fails a dump slower than 0.4 × pg_dump's default, a larger archive than its, and verification below 300 MiB/s", () => {
    const results = evaluateTargets({
      ...passing,
      dumpVsPgDumpDefault: 0.45,
      storedVsPgDumpDefault: 1.02,
      verifyMBps: 250,
    });
    const failed = results.filter((r) => r.verdict === 'FAIL').map((r) => r.name);
    expect(failed).toEqual(['dump vs pg_dump default', 'stored vs pg_dump default', 'verification']);
    expect(allPassed(results)).toBe(false);
  });

  it('fails memory over 160 MiB', () => {
    const results = evaluateTargets({ ...passing, restorePeakRssMb: 170 });
    expect(results.find((r) => r.name === 'restore memory')?.verdict).toBe('FAIL');
  });

  it('judges flatness against the smaller recorded run', () => {
    const results = evaluateTargets(
      { ...passing, dumpPeakRssMb: 150, restorePeakRssMb: 200 },
      { size: 'medium', dumpPeakRssMb: 148, restorePeakRssMb: 140 },
    );
    expect(results.find((r) => r.name === 'dump memory flat')?.verdict).toBe('PASS');
    expect(results.find((r) => r.name === 'restore memory flat')).toMatchObject({
      verdict: 'FAIL',
      measured: 1.429,
    });
  });
});

describe('limitText', () => {
  it('shows the flatness allowance beside its limit, and nothing more beside the others', () => {
    const results = evaluateTargets(passing, { size: 'small', dumpPeakRssMb: 150, restorePeakRssMb: 150 });
    expect(limitText(results.find((r) => r.name === 'restore memory flat')!)).toBe(
      '≤ 1.1 × (+ 8 MiB of allocator noise)',
    );
    expect(limitText(results.find((r) => r.name === 'verification')!)).toBe('≥ 300 MiB/s');
  });
});

describe('pairOrder', () => {
  it('alternates which side runs first', () => {
    expect(pairOrder(0, 'raw', 'pipeline')).toEqual(['raw', 'pipeline']);
    expect(pairOrder(1, 'raw', 'pipeline')).toEqual(['pipeline', 'raw']);
    expect(pairOrder(2, 'raw', 'pipeline')).toEqual(['raw', 'pipeline']);
  });
});

describe('rotation', () => {
  it('puts every side in every position once over as many rounds as sides', () => {
    const rounds = [0, 1, 2].map((i) => rotation(i, ['raw', 'pipeline', 'piped']));
    expect(rounds).toEqual([
      ['raw', 'pipeline', 'piped'],
      ['pipeline', 'piped', 'raw'],
      ['piped', 'raw', 'pipeline'],
    ]);
  });
});

describe('updateResults', () => {
  it('replaces the section of the size run again and keeps the others in size order', () => {
    let text = updateResults(undefined, 'medium', 'medium one');
    text = updateResults(text, 'small', 'small one');
    text = updateResults(text, 'medium', 'medium two');
    expect(text).toContain('# Benchmark results');
    expect(text).not.toContain('medium one');
    expect(text.indexOf('small one')).toBeLessThan(text.indexOf('medium two'));
  });
});

describe('parseStat', () => {
  it('reads own and reaped-children CPU from /proc/<pid>/stat, whatever the command name holds', () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
    const line =
      '4242 (pg_dump (x) y) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 1200 300 20 0 1 0 1000 0 0';
    expect(parseStat(line)).toEqual({ self: 3, children: 15 });
  });

  it('refuses a line that is not a stat line', () => {
    expect(() => parseStat('hello')).toThrow();
  });

  it('subtracts a run start from its end', () => {
    expect(cpuDelta({ self: 1, children: 2 }, { self: 1.5, children: 10.25 })).toEqual({
      self: 0.5,
      children: 8.25,
    });
    expect(cpuDelta(undefined, { self: 1, children: 1 })).toBeUndefined();
  });
});

describe('the Lambda ceiling projected from a bench run (issue 16, item 4)', () => {
  it('scales the database per vCPU-second of what a Lambda runs to 15 minutes, and the same from the wall time', () => {
    const ceiling = lambdaCeiling({
      sizeBytes: 1024 * 1048576,
      // server and s3rver are RDS's and S3's work: not counted
      pipelineCpu: { tool: 1, worker: 3, server: 5, s3rver: 2, total: 11 },
      pipelineWallMs: 8000,
      defaultCpu: { tool: 12, consumer: 1, server: 2, total: 15 },
    });
    expect(ceiling).toEqual({
      databaseMib: 1024,
      lambdaCpuS: 4,
      mibPerVcpuSecond: 256,
      cpuCeilingGiB: [
        { vcpus: 1.7, gib: 382.5 },
        { vcpus: 2, gib: 450 },
      ],
      wallCeilingGiB: 112.5,
      pgDumpDefaultCeilingGiB: 75,
    });
  });

  it('gives none without CPU figures (not Linux) or dump rounds', () => {
    const base = { sizeBytes: 1048576, pipelineWallMs: 1000, defaultCpu: {} };
    expect(lambdaCeiling({ ...base, pipelineCpu: {} })).toBeUndefined();
    expect(
      lambdaCeiling({ ...base, pipelineCpu: { tool: 1, worker: 1 }, pipelineWallMs: Number.NaN }),
    ).toBeUndefined();
  });
});
