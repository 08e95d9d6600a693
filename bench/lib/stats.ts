// The harness's own arithmetic: percentiles, rates, ratios, drain rates from polled progress and
// least-squares slopes. Pure functions, unit-tested with known inputs (test/bench/stats.test.ts).
/**
 * The p-quantile (0 <= p <= 1) of values sorted ascending, by linear interpolation between the
 * closest ranks (Hyndman & Fan type 7: numpy's and R's default). NaN for an empty array.
 */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile must be in [0, 1], got ${p}`);
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  const a = sorted[lo]!;
  return a + (h - lo) * (sorted[hi]! - a);
}

/** Sorts a copy numerically (Float64Array: no comparator call per pair). */
export function sortedCopy(values: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(values as ArrayLike<number>);
  out.sort();
  return out;
}

export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** count, min, mean, p50, p99, p99.9 and max of a sample (NaN fields when it is empty). */
export function summarize(values: ArrayLike<number>): LatencySummary {
  const s = sortedCopy(values);
  const n = s.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i]!;
  return {
    count: n,
    min: n ? s[0]! : Number.NaN,
    mean: n ? sum / n : Number.NaN,
    p50: quantileSorted(s, 0.5),
    p99: quantileSorted(s, 0.99),
    p999: quantileSorted(s, 0.999),
    max: n ? s[n - 1]! : Number.NaN,
  };
}

/** Events per second; NaN when the duration is not positive. */
export function perSecond(count: number, seconds: number): number {
  return seconds > 0 ? count / seconds : Number.NaN;
}

/** Megabytes (MiB, see MB) per second. */
export function mbPerSecond(bytes: number, seconds: number): number {
  return perSecond(bytes, seconds) / MB;
}

/**
 * Kafka's ProducerPerformance and ConsumerPerformance report "MB" as 1024 * 1024 bytes; the
 * harness uses the same unit so that its MB/s and theirs compare directly.
 */
export const MB = 1024 * 1024;

/** a / b, or null when either is not a finite number or b is not positive. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined) return null;
  if (!Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return null;
  return a / b;
}

/** CPU seconds spent per million records. */
export function cpuSecondsPerMillion(cpuSeconds: number, records: number): number {
  return records > 0 ? (cpuSeconds / records) * 1e6 : Number.NaN;
}

/** Records processed per CPU-second: the throughput one fully busy core would give. */
export function recordsPerCoreSecond(records: number, cpuSeconds: number): number {
  return cpuSeconds > 0 ? records / cpuSeconds : Number.NaN;
}

/** Nanoseconds per record from an elapsed time in nanoseconds. */
export function nsPerRecord(elapsedNs: number, records: number): number {
  return records > 0 ? elapsedNs / records : Number.NaN;
}

/** Median of a small sample (NaN when empty). */
export function median(values: readonly number[]): number {
  return quantileSorted(sortedCopy(values), 0.5);
}

/** A progress sample: at wall time t (ms), n records were done. */
export interface ProgressSample {
  t: number;
  n: number;
}

export interface DrainRate {
  /** Records counted in the rate: those done after the first sample that showed progress. */
  records: number;
  seconds: number;
  /** records / seconds. */
  rate: number;
  /** Wall time (ms) of the first progress sample and of the one that reached the total. */
  from: number;
  to: number;
}

/**
 * Throughput of draining a backlog of `total` records, from polled progress (e.g. committed
 * offsets). Counts from the first sample that shows any progress (which excludes start-up and
 * the group join, and the records of that first commit) to the first sample that reaches the
 * total, or that is `cap` records past the first one. Undefined when progress never started or
 * never reached the end.
 */
export function drainRate(samples: readonly ProgressSample[], total: number, cap = Number.POSITIVE_INFINITY): DrainRate | undefined {
  const first = samples.find((s) => s.n > 0);
  if (!first) return undefined;
  const done = samples.find((s) => s.n >= total || s.n - first.n >= cap);
  if (!done || done.t <= first.t) return undefined;
  const records = done.n - first.n;
  const seconds = (done.t - first.t) / 1000;
  return { records, seconds, rate: records / seconds, from: first.t, to: done.t };
}

/**
 * The rate of a pipe that consumes every record and produces `forward` records per consumed one,
 * when consuming and producing share one budget (one process, a 2-core machine): the time per
 * record adds up, 1/C + forward/P. With forward = 0 it is the consumer's rate.
 */
export function serialPipeRate(consumeRate: number, produceRate: number, forward: number): number {
  if (!(consumeRate > 0) || !(produceRate > 0) || forward < 0) return Number.NaN;
  return 1 / (1 / consumeRate + forward / produceRate);
}

export interface LinearFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination. */
  r2: number;
}

/** Ordinary least-squares line through (x, y) points. */
export function linearFit(xs: readonly number[], ys: readonly number[]): LinearFit {
  const n = xs.length;
  if (n !== ys.length || n < 2) throw new RangeError('a line needs at least two points');
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i]!;
    my += ys[i]!;
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    const dy = ys[i]! - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx === 0) throw new RangeError('a line needs at least two distinct x values');
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

/** Rounds to `digits` significant digits (for tables), keeping integers above that intact. */
export function sig(x: number, digits = 3): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const mag = Math.floor(Math.log10(Math.abs(x)));
  if (mag + 1 >= digits) return Math.round(x);
  const f = 10 ** (digits - 1 - mag);
  return Math.round(x * f) / f;
}
