import { describe, expect, it } from 'vitest';
import {
  cpuSecondsPerMillion,
  drainRate,
  linearFit,
  mbPerSecond,
  median,
  nsPerRecord,
  perSecond,
  quantileSorted,
  ratio,
  recordsPerCoreSecond,
  serialPipeRate,
  summarize,
} from '../../bench/lib/stats.ts';

describe('quantileSorted (linear interpolation between closest ranks)', () => {
  const one_to_ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

  it('gives the ends at 0 and 1', () => {
    expect(quantileSorted(one_to_ten, 0)).toBe(1);
    expect(quantileSorted(one_to_ten, 1)).toBe(10);
  });

  it('interpolates like numpy.percentile', () => {
    // numpy.percentile(range(1, 11), [50, 90, 99, 99.9]) = 5.5, 9.1, 9.91, 9.991
    expect(quantileSorted(one_to_ten, 0.5)).toBeCloseTo(5.5, 12);
    expect(quantileSorted(one_to_ten, 0.9)).toBeCloseTo(9.1, 12);
    expect(quantileSorted(one_to_ten, 0.99)).toBeCloseTo(9.91, 12);
    expect(quantileSorted(one_to_ten, 0.999)).toBeCloseTo(9.991, 12);
  });

  it('hits exact ranks on 1..1001', () => {
    const xs = Array.from({ length: 1001 }, (_, i) => i + 1);
    expect(quantileSorted(xs, 0.5)).toBe(501);
    expect(quantileSorted(xs, 0.99)).toBe(991);
    expect(quantileSorted(xs, 0.999)).toBe(1000);
  });

  it('handles one value and no value', () => {
    expect(quantileSorted([7], 0.99)).toBe(7);
    expect(quantileSorted([], 0.5)).toBeNaN();
  });

  it('refuses a quantile outside [0, 1]', () => {
    expect(() => quantileSorted([1, 2], 1.5)).toThrow(RangeError);
    expect(() => quantileSorted([1, 2], -0.1)).toThrow(RangeError);
  });
});

describe('summarize', () => {
  it('sorts its input and reports count, min, mean, percentiles and max', () => {
    const values = [9, 1, 5, 3, 7, 2, 10, 4, 8, 6];
    const s = summarize(values);
    expect(s).toMatchObject({ count: 10, min: 1, max: 10, mean: 5.5 });
    expect(s.p50).toBeCloseTo(5.5, 12);
    expect(s.p99).toBeCloseTo(9.91, 12);
    expect(s.p999).toBeCloseTo(9.991, 12);
    expect(values[0]).toBe(9); // the input is left alone
  });

  it('sorts numerically, not as strings', () => {
    expect(summarize([100, 20, 3]).p50).toBe(20);
  });

  it('gives NaN fields for an empty sample', () => {
    const s = summarize([]);
    expect(s.count).toBe(0);
    expect(s.p50).toBeNaN();
    expect(s.max).toBeNaN();
  });
});

describe('rates and ratios', () => {
  it('computes per-second rates and MiB/s', () => {
    expect(perSecond(50_000, 2)).toBe(25_000);
    expect(perSecond(1, 0)).toBeNaN();
    expect(mbPerSecond(3 * 1024 * 1024, 1.5)).toBeCloseTo(2, 12);
  });

  it('gives a ratio only for finite, positive denominators', () => {
    expect(ratio(30, 40)).toBe(0.75);
    expect(ratio(30, 0)).toBeNull();
    expect(ratio(30, undefined)).toBeNull();
    expect(ratio(Number.NaN, 40)).toBeNull();
    expect(ratio(30, Number.POSITIVE_INFINITY)).toBeNull();
  });

  it('turns CPU time into seconds per million records and records per core-second', () => {
    expect(cpuSecondsPerMillion(1.5, 100_000)).toBeCloseTo(15, 12);
    expect(recordsPerCoreSecond(100_000, 1.5)).toBeCloseTo(66_666.667, 2);
    expect(cpuSecondsPerMillion(1, 0)).toBeNaN();
    expect(recordsPerCoreSecond(1, 0)).toBeNaN();
  });

  it('gives ns per record and the median of a small sample', () => {
    expect(nsPerRecord(2_000_000, 1000)).toBe(2000);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });

  it('bounds a pipe that consumes and produces by the sum of the per-record times', () => {
    // 1 / (1/200k + 1/100k) = 66,667 records/s; nothing produced: the consumer's rate.
    expect(serialPipeRate(200_000, 100_000, 1)).toBeCloseTo(66_666.667, 2);
    expect(serialPipeRate(200_000, 100_000, 0.5)).toBeCloseTo(100_000, 6);
    expect(serialPipeRate(200_000, 100_000, 0)).toBeCloseTo(200_000, 6);
    expect(serialPipeRate(0, 100_000, 1)).toBeNaN();
  });
});

describe('drainRate', () => {
  const samples = [
    { t: 1000, n: 0 },
    { t: 1050, n: 0 },
    { t: 1100, n: 20_000 }, // first commit: its records and everything before are excluded
    { t: 2100, n: 60_000 },
    { t: 3100, n: 100_000 },
    { t: 3150, n: 100_000 },
  ];

  it('counts from the first progress to the first sample that reaches the total', () => {
    const d = drainRate(samples, 100_000)!;
    expect(d.records).toBe(80_000);
    expect(d.seconds).toBe(2);
    expect(d.rate).toBe(40_000);
    expect(d.from).toBe(1100);
    expect(d.to).toBe(3100);
  });

  it('stops at a cap of records past the first commit, counting what the stopping sample shows', () => {
    const d = drainRate(samples, 100_000, 30_000)!;
    expect(d.records).toBe(40_000);
    expect(d.seconds).toBe(1);
    expect(d.rate).toBe(40_000);
  });

  it('is undefined when progress never started, never finished, or fits in one poll', () => {
    expect(drainRate([{ t: 0, n: 0 }], 10)).toBeUndefined();
    expect(drainRate([{ t: 0, n: 5 }, { t: 50, n: 8 }], 10)).toBeUndefined();
    expect(drainRate([{ t: 0, n: 0 }, { t: 50, n: 10 }], 10)).toBeUndefined();
  });
});

describe('linearFit', () => {
  it('recovers an exact line', () => {
    const f = linearFit([0, 1, 2, 4, 8, 16], [1000, 1060, 1120, 1240, 1480, 1960]);
    expect(f.slope).toBeCloseTo(60, 10);
    expect(f.intercept).toBeCloseTo(1000, 10);
    expect(f.r2).toBeCloseTo(1, 12);
  });

  it('gives the least-squares slope of noisy points', () => {
    // x = 0..3, y = 1, 3, 2, 4: slope = 0.8, intercept = 1.3, r² = 0.64
    const f = linearFit([0, 1, 2, 3], [1, 3, 2, 4]);
    expect(f.slope).toBeCloseTo(0.8, 12);
    expect(f.intercept).toBeCloseTo(1.3, 12);
    expect(f.r2).toBeCloseTo(0.64, 12);
  });

  it('needs two distinct x values', () => {
    expect(() => linearFit([1], [1])).toThrow(RangeError);
    expect(() => linearFit([2, 2], [1, 3])).toThrow(RangeError);
  });
});
