// robust_z: the median and the median absolute deviation of a sliding window of recent values.
// A value's deviation from the median in robust standard deviations (1.4826 MAD) is read as a
// normal deviation; the median ignores the outliers that would drag a mean along.
import type { Assessment, Detector, DetectorKind, DetectorParams } from './index.ts';
import { zScore } from './stats.ts';

interface RobustZState {
  /** The last `window` values, oldest first once full (a ring: `next` is where the next one goes). */
  values: number[];
  next: number;
}

const scratch = { buf: new Float64Array(0) };

function sortedCopy(values: number[]): Float64Array {
  if (scratch.buf.length < values.length) scratch.buf = new Float64Array(values.length * 2);
  const s = scratch.buf.subarray(0, values.length);
  for (let i = 0; i < values.length; i++) s[i] = values[i]!;
  return s.sort();
}

function mid(s: Float64Array): number {
  const n = s.length;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export function robustZ(p: DetectorParams): Detector<RobustZState> {
  const window = p.window;
  return {
    state: {
      type: 'record',
      name: 'RobustZState',
      namespace: 'vigil.state',
      fields: [
        { name: 'values', type: { type: 'array', items: 'double' } },
        { name: 'next', type: 'int' },
      ],
    },
    init: () => ({ values: [], next: 0 }),
    step(s, x, bandZ): Assessment {
      let out: Assessment = { score: 0, expected: null, lower: null, upper: null };
      const n = s.values.length;
      if (n >= 3) {
        const sorted = sortedCopy(s.values);
        const med = mid(sorted);
        for (let i = 0; i < n; i++) sorted[i] = Math.abs(sorted[i]! - med);
        sorted.sort();
        let scale = 1.4826 * mid(sorted);
        if (scale === 0) {
          // More than half the window is one value: fall back to the mean absolute deviation.
          let sum = 0;
          for (let i = 0; i < n; i++) sum += sorted[i]!;
          scale = 1.2533 * (sum / n);
        }
        const z = scale > 0 ? (x - med) / scale : x === med ? 0 : Number.POSITIVE_INFINITY;
        out = { score: zScore(z), expected: med, lower: med - bandZ * scale, upper: med + bandZ * scale };
      }
      if (n < window) s.values.push(x);
      else s.values[s.next] = x;
      s.next = (s.next + 1) % window;
      return out;
    },
  };
}

export const robustZDetector: DetectorKind = {
  name: 'robust_z',
  summary: 'Median and median absolute deviation of a sliding window of the last `window` values.',
  defaultThreshold: 0.5,
  defaultWarmup: 30,
  params: ['window'],
  create: robustZ,
  stateBytes: '8 bytes per value of the window (about 520 B at the default window of 64)',
};
