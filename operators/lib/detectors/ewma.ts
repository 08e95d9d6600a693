// ewma: an exponentially weighted mean and variance (half-life in records). A value's deviation
// from the mean in standard deviations is read as a normal deviation. The update is clipped at 4
// standard deviations (Huber), so one spike does not blow the variance up and hide the next.
import type { Assessment, Detector, DetectorKind, DetectorParams } from './index.ts';
import { zScore } from './stats.ts';

interface EwmaState {
  n: number;
  mean: number;
  variance: number;
}

const CLIP = 4;

export function ewma(p: DetectorParams): Detector<EwmaState> {
  const alpha = 1 - 2 ** (-1 / p.halfLife);
  return {
    state: {
      type: 'record',
      name: 'EwmaState',
      namespace: 'vigil.state',
      fields: [
        { name: 'n', type: 'long' },
        { name: 'mean', type: 'double' },
        { name: 'variance', type: 'double' },
      ],
    },
    init: () => ({ n: 0, mean: 0, variance: 0 }),
    step(s, x, bandZ): Assessment {
      let out: Assessment = { score: 0, expected: null, lower: null, upper: null };
      const sd = Math.sqrt(s.variance);
      if (s.n >= 2) {
        const z = sd > 0 ? (x - s.mean) / sd : x === s.mean ? 0 : Number.POSITIVE_INFINITY;
        out = { score: zScore(z), expected: s.mean, lower: s.mean - bandZ * sd, upper: s.mean + bandZ * sd };
      }
      s.n++;
      if (s.n === 1) {
        s.mean = x;
        return out;
      }
      // The first values get running-mean weights, then the half-life's.
      const a = Math.max(alpha, 1 / s.n);
      const clipped = s.n > 10 && sd > 0 ? Math.min(s.mean + CLIP * sd, Math.max(s.mean - CLIP * sd, x)) : x;
      const d = clipped - s.mean;
      s.mean += a * d;
      s.variance = (1 - a) * (s.variance + a * d * d);
      return out;
    },
  };
}

export const ewmaDetector: DetectorKind = {
  name: 'ewma',
  summary: 'Exponentially weighted mean and variance with a half-life of `half_life` records; updates clipped at 4 standard deviations.',
  defaultThreshold: 0.5,
  defaultWarmup: 30,
  params: ['half_life'],
  create: ewma,
  stateBytes: 'about 30 B',
};
