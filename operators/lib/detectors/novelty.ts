// novelty: how unlike anything the series did recently its latest stretch is. The series is
// downsampled in blocks of 4 values (each block kept as its value farthest from the block's mean, so
// a one-value spike survives), and each new stretch of 8 blocks is compared with every earlier
// stretch of the last 500 blocks (2,000 values): the distance to the nearest one is its novelty (the
// left matrix profile, without normalisation, so a shift of level is as novel as a new shape). The
// score compares that novelty with the largest one seen recently (a maximum that halves every ~1,400
// values): a stretch as novel as the most novel recent one scores 0.5; one far beyond it, near 1.
// After a stretch that sets a new maximum, the next 20 blocks (80 values) score 0: an anomaly is
// reported where it starts, not for as long as it lasts. A series is assessed once per block (every
// 4th value; the others score 0).
import type { Assessment, Detector, DetectorKind } from './index.ts';

const BLOCK = 4;
const M = 8; // blocks per stretch
const H = 500; // blocks of history
const RING = H + M + 1;
const WARM = 30; // assessed stretches before scores
const DECAY = 0.9995 ** BLOCK; // per block: the maximum halves every ~1,400 values
const REST = 20; // blocks
const RESYNC = 128; // blocks between exact recomputations of the running dot products

interface NoveltyState {
  /** Values of the block being filled. */
  block: number[];
  /** Blocks so far. */
  t: number;
  /** Block values, a ring of RING (block i at i mod RING). */
  ring: number[];
  /** Sum of squares of the stretch ending at block i, a ring of H + 1. */
  ss: number[];
  /** Dot product of the latest stretch with the one `lag` blocks earlier, by lag (0..H). */
  qt: number[];
  /** The decayed maximum novelty, stretches assessed, and the block of the latest new maximum. */
  max: number;
  seen: number;
  last: number;
}

function blockValue(b: readonly number[]): number {
  let mean = 0;
  for (const x of b) mean += x;
  mean /= b.length;
  let far = b[0]!;
  for (const x of b) if (Math.abs(x - mean) > Math.abs(far - mean)) far = x;
  return far;
}

export function novelty(): Detector<NoveltyState> {
  const at = (s: NoveltyState, i: number) => s.ring[i % RING]!;
  const dot = (s: NoveltyState, t: number, lag: number) => {
    let q = 0;
    for (let i = 0; i < M && t - lag - i >= 0; i++) q += at(s, t - i) * at(s, t - lag - i);
    return q;
  };
  return {
    state: {
      type: 'record',
      name: 'NoveltyState',
      namespace: 'vigil.state',
      fields: [
        { name: 'block', type: { type: 'array', items: 'double' } },
        { name: 't', type: 'long' },
        { name: 'ring', type: { type: 'array', items: 'double' } },
        { name: 'ss', type: { type: 'array', items: 'double' } },
        { name: 'qt', type: { type: 'array', items: 'double' } },
        { name: 'max', type: 'double' },
        { name: 'seen', type: 'long' },
        { name: 'last', type: 'long' },
      ],
    },
    init: () => ({ block: [], t: 0, ring: new Array<number>(RING).fill(0), ss: new Array<number>(H + 1).fill(0), qt: new Array<number>(H + 1).fill(0), max: 0, seen: 0, last: -1_000_000 }),
    step(s, x): Assessment {
      s.block.push(x);
      if (s.block.length < BLOCK) return { score: 0, expected: null, lower: null, upper: null };
      const y = blockValue(s.block);
      s.block = [];
      const t = s.t++;
      s.ring[t % RING] = y;
      const maxLag = Math.min(H, t);
      if (t % RESYNC === 0) for (let lag = 1; lag <= maxLag; lag++) s.qt[lag] = dot(s, t, lag);
      else {
        const old = t - M >= 0 ? at(s, t - M) : 0;
        for (let lag = 1; lag <= maxLag; lag++) {
          let q = s.qt[lag]! + y * at(s, t - lag);
          if (t - lag - M >= 0) q -= old * at(s, t - lag - M);
          s.qt[lag] = q;
        }
      }
      let ss = 0;
      for (let i = 0; i < M && t - i >= 0; i++) ss += at(s, t - i) ** 2;
      s.ss[t % (H + 1)] = ss;
      if (t < 2 * M) return { score: 0, expected: null, lower: null, upper: null };
      let best = Number.POSITIVE_INFINITY;
      let bestLag = M;
      for (let lag = M; lag <= maxLag && t - lag >= M - 1; lag++) {
        const d2 = ss + s.ss[(t - lag) % (H + 1)]! - 2 * s.qt[lag]!;
        if (d2 < best) {
          best = d2;
          bestLag = lag;
        }
      }
      const r = Math.sqrt(Math.max(0, best));
      s.seen++;
      let score = 0;
      if (s.seen > WARM) {
        const u = s.max > 0 ? r / s.max : r > 0 ? 10 : 0;
        if (t - s.last > REST) score = u / (1 + u);
        if (u >= 1) s.last = t;
      }
      s.max = Math.max(s.max * DECAY, r);
      return { score, expected: at(s, t - bestLag), lower: null, upper: null };
    },
  };
}

export const noveltyDetector: DetectorKind = {
  name: 'novelty',
  summary: 'Distance of the latest stretch of the series to the nearest earlier one (left matrix profile), against the largest such distance seen recently.',
  defaultThreshold: 0.5,
  defaultWarmup: 0,
  params: [],
  create: novelty,
  stateBytes: 'about 12 kB (the last 2,000 values as 500 blocks, and the running products)',
};
