// DDSketch quantile sketches whose state is plain JSON (for the runtime's changelogged stores).
//
// The value -> bucket mapping is @datadog/sketches-js's (the LogarithmicMapping of its DDSketch,
// taken from a DDSketch instance: the package exports no mapping class), so bucket boundaries
// and the relative-accuracy guarantee are DDSketch's. The bins are kept here rather than in the
// library's DDSketch object because that object cannot be the stored state (it holds a mapping
// instance and its protobuf form loses min/max/sum), and because its merge() (2.1.1) drops the
// negative-value store. State: sparse bins (bucket key -> count) for positive and negative
// values, their numbers of buckets, a zero count, the exact count, min and max. Sparse because a
// window of telemetry usually holds a few dozen values spread over hundreds of buckets.
//
// Quantile q of n values is the value of rank floor(q * (n - 1)) (0-based) of the sorted values,
// the lower of the two nearest ranks, returned within `accuracy` relative error (clamped to the
// exact [min, max]; rank 0 and rank n - 1 are the exact min and max). Merging is exact in count: a
// merged sketch equals one built from all the values (as long as no buckets were collapsed).
import sketches from '@datadog/sketches-js';

const { DDSketch } = sketches;

/**
 * Buckets kept per sign: as many as cover this dynamic range (max / min magnitude), ~2,100 at 1%
 * accuracy (the library's default bin limit is 2,048). Past that, the lowest buckets are folded
 * into the lowest kept one (DDSketch's "collapsing lowest" policy): a sketch's size is bounded and
 * its upper quantiles stay accurate.
 */
export const DYNAMIC_RANGE = 1e18;

/** Sparse bins: bucket key (an integer, as a string) -> count. */
export type Bins = Record<string, number>;

export interface SketchState {
  /** Number of values. */
  n: number;
  /** Values mapped to zero (|v| below the smallest bucket). */
  z: number;
  /** Positive values by bucket, and the number of buckets. */
  p: Bins;
  pb: number;
  /** Negative values by the bucket of their absolute value, and the number of buckets. */
  q: Bins;
  qb: number;
  /** Exact min and max (null when empty). */
  lo: number | null;
  hi: number | null;
}

interface Mapping {
  key(value: number): number;
  value(key: number): number;
  minPossible: number;
  gamma: number;
}

const ascending = (a: number, b: number): number => a - b;

function sortedKeys(bins: Bins): number[] {
  const keys = Object.keys(bins);
  const out = new Array<number>(keys.length);
  for (let i = 0; i < keys.length; i++) out[i] = Number(keys[i]);
  return out.sort(ascending);
}

export class QuantileSketch {
  private readonly mapping: Mapping;
  /** Buckets kept per sign. */
  readonly maxBins: number;

  constructor(
    readonly accuracy = 0.01,
    maxBins?: number,
  ) {
    if (!(accuracy > 0 && accuracy < 1)) throw new RangeError(`sketch accuracy must be in (0, 1), got ${accuracy}`);
    const sketch = new DDSketch({ relativeAccuracy: accuracy });
    this.mapping = sketch.mapping;
    this.maxBins = maxBins ?? Math.ceil(Math.log(DYNAMIC_RANGE) / Math.log(sketch.mapping.gamma));
  }

  init(): SketchState {
    return { n: 0, z: 0, p: {}, pb: 0, q: {}, qb: 0, lo: null, hi: null };
  }

  /** Adds a finite value (mutates and returns `s`). */
  add(s: SketchState, v: number): SketchState {
    const m = this.mapping;
    if (v > m.minPossible) {
      const k = m.key(v);
      const c = s.p[k];
      if (c === undefined) {
        s.p[k] = 1;
        if (++s.pb > this.maxBins) s.pb = this.collapse(s.p);
      } else {
        s.p[k] = c + 1;
      }
    } else if (v < -m.minPossible) {
      const k = m.key(-v);
      const c = s.q[k];
      if (c === undefined) {
        s.q[k] = 1;
        if (++s.qb > this.maxBins) s.qb = this.collapse(s.q);
      } else {
        s.q[k] = c + 1;
      }
    } else {
      s.z += 1;
    }
    s.n += 1;
    if (s.lo === null || v < s.lo) s.lo = v;
    if (s.hi === null || v > s.hi) s.hi = v;
    return s;
  }

  /** Merges `b` into `a` (mutates and returns `a`; `b` is not modified nor shared). */
  merge(a: SketchState, b: SketchState): SketchState {
    if (b.n === 0) return a;
    a.n += b.n;
    a.z += b.z;
    if (b.pb > 0) a.pb = this.mergeBins(a.p, a.pb, b.p);
    if (b.qb > 0) a.qb = this.mergeBins(a.q, a.qb, b.q);
    if (a.lo === null || (b.lo !== null && b.lo < a.lo)) a.lo = b.lo;
    if (a.hi === null || (b.hi !== null && b.hi > a.hi)) a.hi = b.hi;
    return a;
  }

  /** The value at quantile q in [0, 1] (see the file comment); null when empty. */
  quantile(s: SketchState, q: number): number | null {
    if (s.n === 0) return null;
    const rank = Math.floor(q * (s.n - 1));
    // The extremes are known exactly.
    if (rank <= 0 && s.lo !== null) return s.lo;
    if (rank >= s.n - 1 && s.hi !== null) return s.hi;
    let v = this.valueAtRank(s, rank);
    if (s.lo !== null && v < s.lo) v = s.lo;
    if (s.hi !== null && v > s.hi) v = s.hi;
    return v;
  }

  private valueAtRank(s: SketchState, rank: number): number {
    let seen = 0;
    if (s.qb > 0) {
      // Negative values, most negative first: highest keys of the negative store first.
      const keys = sortedKeys(s.q);
      for (let i = keys.length - 1; i >= 0; i--) {
        seen += s.q[keys[i]!]!;
        if (seen > rank) return -this.mapping.value(keys[i]!);
      }
    }
    seen += s.z;
    if (seen > rank) return 0;
    if (s.pb > 0) {
      const keys = sortedKeys(s.p);
      for (let i = 0; i < keys.length; i++) {
        seen += s.p[keys[i]!]!;
        if (seen > rank) return this.mapping.value(keys[i]!);
      }
      return this.mapping.value(keys[keys.length - 1]!);
    }
    return 0;
  }

  /** Adds b's buckets to a's; returns a's new number of buckets. */
  private mergeBins(a: Bins, count: number, b: Bins): number {
    for (const k in b) {
      const c = a[k];
      if (c === undefined) {
        a[k] = b[k]!;
        count++;
      } else {
        a[k] = c + b[k]!;
      }
    }
    return count > this.maxBins ? this.collapse(a) : count;
  }

  /**
   * Folds the lowest buckets into the lowest kept one until maxBins remain (DDSketch's
   * "collapsing lowest" policy); returns the number of buckets.
   */
  private collapse(bins: Bins): number {
    const keys = sortedKeys(bins);
    const excess = keys.length - this.maxBins;
    if (excess <= 0) return keys.length;
    let folded = 0;
    for (let i = 0; i < excess; i++) {
      folded += bins[keys[i]!]!;
      delete bins[keys[i]!];
    }
    bins[keys[excess]!]! += folded;
    return this.maxBins;
  }
}
