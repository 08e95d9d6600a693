// novelty: how unlike anything the series did before its latest values are, by two measures.
//
// 1. Shape. The series is downsampled in blocks of 4 values (each block kept as its value farthest
//    from the block's mean, so a one-value spike survives), and each new stretch of 8 blocks is
//    compared with every earlier stretch of the history (`history` values, 800 by default: 200
//    blocks): the distance to the nearest one is its novelty (the left matrix profile, without
//    normalisation, so a shift of level is as novel as a new shape). That novelty is compared with
//    the largest one seen before it (a decayed maximum, never below the long-run mean novelty): a
//    stretch as novel as the most novel earlier one scores 0.5, one far beyond it near 1. The
//    maximum halves every ~1,400 values while the series is young and ever more slowly as it ages
//    (its half-life is half the values seen), so a series that has shown a lot is surprised less
//    often by noise; it follows a rise of novelty at most doubling every 48 values, so one large
//    anomaly does not raise it so far that the smaller ones after it go unseen. After a stretch that
//    sets a new maximum, the next 20 blocks (80 values) score 0, and while stretches stay above the
//    maximum the rest goes on: an anomaly is reported where it starts, not for as long as it lasts.
//    Assessed once per block (every 4th value).
// 2. Extremes. A value beyond the whole range the series has shown (after its first 150 values), by
//    more than 5 % of that range, is novel whatever its shape: it scores 0.5 at 5 % past the range
//    and near 1 far past it, on every value, and again only after 50 values within the margin.
//
// The score is the larger of the two. Measured on the Numenta Anomaly Benchmark with the same
// parameters for every series: bench/README.md has the score and what each part adds to it.
import type { Assessment, Detector, DetectorKind, DetectorParams } from './index.ts';

const BLOCK = 4;
const M = 8; // blocks per stretch
const WARM = 30; // assessed stretches before scores
const MIN_HALF_LIFE = 1386; // values: the maximum's half-life while the series is young
const AGE_HALF_LIFE = 0.5; // the maximum's half-life, as a share of the values seen
const MEAN_HALF_LIFE = 2000; // values: the long-run mean novelty
const MAX_RISE = 2 ** (1 / 12); // per block: the maximum at most doubles in 12 blocks (48 values)
const REST = 20; // blocks
const EXTREME_WARM = 150; // values before extremes are scored
const EXTREME_MARGIN = 0.05; // of the range: how far past it a value scores 0.5
const EXTREME_REST = 50; // values

interface NoveltyState {
  /** Values of the block being filled. */
  block: number[];
  /** Blocks so far. */
  t: number;
  /** Block values as 32-bit floats, a ring of history/4 + 8 (block i at i mod its length). */
  ring: Float32Array;
  /** The decayed maximum novelty, stretches assessed, and the block of the latest new maximum. */
  max: number;
  seen: number;
  last: number;
  /** The long-run mean novelty (the maximum's floor). */
  mean: number;
  /** The range of the values so far, and how many values it holds (0: none yet). */
  lo: number;
  hi: number;
  values: number;
  /** The value (its count in `values`) of the latest extreme past the margin. */
  extreme: number;
}

function blockValue(b: readonly number[]): number {
  let mean = 0;
  for (const x of b) mean += x;
  mean /= b.length;
  let far = b[0]!;
  for (const x of b) if (Math.abs(x - mean) > Math.abs(far - mean)) far = x;
  return far;
}

/** The score of a value against the range so far (0 inside it or during warm-up), and learns the value. */
function extremeScore(s: NoveltyState, x: number): number {
  let score = 0;
  if (s.values >= EXTREME_WARM && s.hi > s.lo) {
    const u = Math.max(x - s.hi, s.lo - x) / (s.hi - s.lo) / EXTREME_MARGIN;
    if (u >= 1) {
      if (s.values - s.extreme > EXTREME_REST) score = u / (1 + u);
      s.extreme = s.values;
    }
  }
  if (s.values === 0) {
    s.lo = x;
    s.hi = x;
  } else {
    s.lo = Math.min(s.lo, x);
    s.hi = Math.max(s.hi, x);
  }
  s.values++;
  return score;
}

export function novelty(p: DetectorParams): Detector<NoveltyState> {
  const H = Math.max(M, Math.floor(p.history / BLOCK)); // blocks of history
  const RING = H + M;
  const meanRate = 1 - 0.5 ** (BLOCK / MEAN_HALF_LIFE);
  return {
    state: {
      type: 'record',
      name: 'NoveltyState',
      namespace: 'vigil.state',
      fields: [
        { name: 'block', type: { type: 'array', items: 'double' } },
        { name: 't', type: 'long' },
        { name: 'ring', type: { type: 'array', items: 'float' } },
        { name: 'max', type: 'double' },
        { name: 'seen', type: 'long' },
        { name: 'last', type: 'long' },
        // Added later: defaults let state written before them restore (it starts their measures afresh).
        { name: 'mean', type: 'double', default: 0 },
        { name: 'lo', type: 'double', default: 0 },
        { name: 'hi', type: 'double', default: 0 },
        { name: 'values', type: 'long', default: 0 },
        { name: 'extreme', type: 'long', default: -1_000_000 },
      ],
    },
    init: () => ({ block: [], t: 0, ring: new Float32Array(RING), max: 0, seen: 0, last: -1_000_000, mean: 0, lo: 0, hi: 0, values: 0, extreme: -1_000_000 }),
    toAvro: (s) => ({ ...s, ring: Array.from(s.ring) }),
    fromAvro: (v) => {
      const s = v as Omit<NoveltyState, 'ring'> & { ring: number[] };
      return { ...s, ring: Float32Array.from(s.ring) };
    },
    step(s, x): Assessment {
      const extreme = extremeScore(s, x);
      s.block.push(x);
      if (s.block.length < BLOCK) return { score: extreme, expected: null, lower: null, upper: null };
      const t = s.t++;
      // Kept as a 32-bit float, as the changelog stores it: a restored series computes the same.
      s.ring[t % RING] = blockValue(s.block);
      s.block = [];
      if (t < 2 * M) return { score: extreme, expected: null, lower: null, upper: null };
      const ring = s.ring;
      // The nearest earlier stretch: squared distances, summed in a fixed order (no running sums to drift).
      let best = Number.POSITIVE_INFINITY;
      let bestLag = M;
      const maxLag = Math.min(H, t - M + 1);
      for (let lag = M; lag <= maxLag; lag++) {
        let d2 = 0;
        for (let i = 0; i < M && d2 < best; i++) {
          const e = ring[(t - i) % RING]! - ring[(t - lag - i) % RING]!;
          d2 += e * e;
        }
        if (d2 < best) {
          best = d2;
          bestLag = lag;
        }
      }
      const r = Math.sqrt(best);
      s.seen++;
      let score = 0;
      if (s.seen > WARM) {
        const max = Math.max(s.max, s.mean);
        const u = max > 0 ? r / max : r > 0 ? 10 : 0;
        if (t - s.last > REST) score = u / (1 + u);
        if (u >= 1) s.last = t;
      }
      const halfLifeBlocks = Math.max(MIN_HALF_LIFE, AGE_HALF_LIFE * t * BLOCK) / BLOCK;
      // The maximum follows a rise of novelty at a bounded rate, so that one anomaly does not hide the next ones.
      s.max = Math.max(s.max * 0.5 ** (1 / halfLifeBlocks), s.seen > WARM && s.max > 0 ? Math.min(r, MAX_RISE * s.max) : r);
      s.mean = s.seen === 1 ? r : s.mean + (r - s.mean) * meanRate;
      return { score: Math.max(score, extreme), expected: ring[(t - bestLag) % RING]!, lower: null, upper: null };
    },
  };
}

export const noveltyDetector: DetectorKind = {
  name: 'novelty',
  summary:
    'Distance of the latest stretch of the series to the nearest earlier one (left matrix profile), against the largest such distance seen before; and values past the whole range the series has shown.',
  defaultThreshold: 0.5,
  defaultWarmup: 0,
  params: ['history'],
  create: novelty,
  stateBytes: '4 bytes per 4 values of history, plus 80 (0.9 kB at the default history of 800 values)',
};
