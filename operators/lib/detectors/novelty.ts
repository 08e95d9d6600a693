// novelty: how unlike anything the series did recently its latest stretch is. The series is
// downsampled in blocks of 4 values (each block kept as its value farthest from the block's mean, so
// a one-value spike survives), and each new stretch of 8 blocks is compared with every earlier
// stretch of the history (`history` values, 800 by default: 200 blocks): the distance to the nearest one is its novelty (the
// left matrix profile, without normalisation, so a shift of level is as novel as a new shape). The
// score compares that novelty with the largest one seen recently (a maximum that halves every ~1,400
// values): a stretch as novel as the most novel recent one scores 0.5; one far beyond it, near 1.
// After a stretch that sets a new maximum, the next 20 blocks (80 values) score 0: an anomaly is
// reported where it starts, not for as long as it lasts. A series is assessed once per block (every
// 4th value; the others score 0).
import type { Assessment, Detector, DetectorKind, DetectorParams } from './index.ts';

const BLOCK = 4;
const M = 8; // blocks per stretch
const WARM = 30; // assessed stretches before scores
const DECAY = 0.9995 ** BLOCK; // per block: the maximum halves every ~1,400 values
const REST = 20; // blocks

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
}

function blockValue(b: readonly number[]): number {
  let mean = 0;
  for (const x of b) mean += x;
  mean /= b.length;
  let far = b[0]!;
  for (const x of b) if (Math.abs(x - mean) > Math.abs(far - mean)) far = x;
  return far;
}

export function novelty(p: DetectorParams): Detector<NoveltyState> {
  const H = Math.max(M, Math.floor(p.history / BLOCK)); // blocks of history
  const RING = H + M;
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
      ],
    },
    init: () => ({ block: [], t: 0, ring: new Float32Array(RING), max: 0, seen: 0, last: -1_000_000 }),
    toAvro: (s) => ({ ...s, ring: Array.from(s.ring) }),
    fromAvro: (v) => {
      const s = v as Omit<NoveltyState, 'ring'> & { ring: number[] };
      return { ...s, ring: Float32Array.from(s.ring) };
    },
    step(s, x): Assessment {
      s.block.push(x);
      if (s.block.length < BLOCK) return { score: 0, expected: null, lower: null, upper: null };
      const t = s.t++;
      // Kept as a 32-bit float, as the changelog stores it: a restored series computes the same.
      s.ring[t % RING] = blockValue(s.block);
      s.block = [];
      if (t < 2 * M) return { score: 0, expected: null, lower: null, upper: null };
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
        const u = s.max > 0 ? r / s.max : r > 0 ? 10 : 0;
        if (t - s.last > REST) score = u / (1 + u);
        if (u >= 1) s.last = t;
      }
      s.max = Math.max(s.max * DECAY, r);
      return { score, expected: ring[(t - bestLag) % RING]!, lower: null, upper: null };
    },
  };
}

export const noveltyDetector: DetectorKind = {
  name: 'novelty',
  summary: 'Distance of the latest stretch of the series to the nearest earlier one (left matrix profile), against the largest such distance seen recently.',
  defaultThreshold: 0.5,
  defaultWarmup: 0,
  params: ['history'],
  create: novelty,
  stateBytes: '4 bytes per 4 values of history (0.9 kB at the default history of 800 values)',
};
