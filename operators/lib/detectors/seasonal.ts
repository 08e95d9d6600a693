// seasonal: additive Holt-Winters (level, trend and one value per phase of the season). The season
// length is given in records, or found from the warm-up data: the lag of the highest local maximum
// of the autocorrelation of the detrended warm-up values, up to half their number, if it reaches
// 0.3 (else the series is taken as not seasonal: level and trend only). A value's deviation from the
// forecast, in the scale of recent forecast errors, is read as a normal deviation; values beyond 4
// scales update the model clipped, so an anomaly does not become the new normal at once.
import type { Assessment, Detector, DetectorKind, DetectorParams } from './index.ts';
import { zScore } from './stats.ts';

interface SeasonalState {
  /** Warm-up values, until the model starts (then empty). */
  buffer: number[];
  /** Season length; 0 until the model starts, 1 when not seasonal. */
  period: number;
  level: number;
  trend: number;
  season: number[];
  /** Phase of the next value. */
  phase: number;
  /** Exponentially weighted mean absolute forecast error. */
  error: number;
}

const ALPHA = 0.1; // level
const BETA = 0.01; // trend
const GAMMA = 0.1; // season
const ERROR_RATE = 0.02; // the error scale's weight per value (half-life ~35 values)
const CLIP = 4;
const MIN_ACF = 0.3;

/** The season length of `x` by autocorrelation (1 = none found), searching lags 2..maxLag. */
export function findPeriod(x: readonly number[], maxLag: number): number {
  const n = x.length;
  if (n < 8) return 1;
  // Remove the least-squares line, then the autocorrelation at each lag.
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sx += i;
    sy += x[i]!;
    sxx += i * i;
    sxy += i * x[i]!;
  }
  const slope = (n * sxy - sx * sy) / (n * sxx - sx * sx || 1);
  const icpt = (sy - slope * sx) / n;
  const r = new Float64Array(n);
  let v = 0;
  for (let i = 0; i < n; i++) {
    r[i] = x[i]! - (icpt + slope * i);
    v += r[i]! * r[i]!;
  }
  if (v === 0) return 1;
  const top = Math.min(maxLag, Math.floor(n / 2));
  const acf = new Float64Array(top + 2);
  for (let lag = 1; lag <= top + 1 && lag < n; lag++) {
    let s = 0;
    for (let i = lag; i < n; i++) s += r[i]! * r[i - lag]!;
    acf[lag] = s / v;
  }
  let best = 1;
  let bestAcf = MIN_ACF;
  for (let lag = 2; lag <= top; lag++) if (acf[lag]! >= acf[lag - 1]! && acf[lag]! >= acf[lag + 1]! && acf[lag]! > bestAcf) {
    best = lag;
    bestAcf = acf[lag]!;
  }
  return best;
}

function mean(x: readonly number[], from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i]!;
  return s / (to - from);
}

/** One Holt-Winters step with value `x` (already clipped if need be), after forecasting `f`. */
function learn(s: SeasonalState, x: number): void {
  const seasonal = s.period > 1 ? s.season[s.phase]! : 0;
  const level = ALPHA * (x - seasonal) + (1 - ALPHA) * (s.level + s.trend);
  s.trend = BETA * (level - s.level) + (1 - BETA) * s.trend;
  s.level = level;
  if (s.period > 1) s.season[s.phase] = GAMMA * (x - level) + (1 - GAMMA) * seasonal;
  s.phase = (s.phase + 1) % s.period;
}

function forecast(s: SeasonalState): number {
  return s.level + s.trend + (s.period > 1 ? s.season[s.phase]! : 0);
}

/** Starts the model from the warm-up values and runs it over them. */
function start(s: SeasonalState, period: number): void {
  const x = s.buffer;
  const L = Math.max(1, Math.min(period, Math.floor(x.length / 2)));
  const cycles = Math.floor(x.length / L);
  s.period = L;
  s.level = mean(x, 0, L);
  s.trend = cycles >= 2 && L > 1 ? (mean(x, L, 2 * L) - s.level) / L : 0;
  s.season = new Array<number>(L).fill(0);
  if (L > 1) {
    for (let c = 0; c < cycles; c++) {
      const m = mean(x, c * L, (c + 1) * L);
      for (let i = 0; i < L; i++) s.season[i]! += (x[c * L + i]! - m) / cycles;
    }
  }
  s.phase = 0;
  let err = 0;
  for (let i = 0; i < x.length; i++) {
    err += (Math.abs(x[i]! - forecast(s)) - err) / Math.min(i + 1, 1 / ERROR_RATE);
    learn(s, x[i]!);
  }
  s.error = err;
  s.buffer = [];
}

export function seasonal(p: DetectorParams): Detector<SeasonalState> {
  const need = p.season === undefined ? p.warmup : Math.max(p.warmup, 2 * p.season);
  return {
    state: {
      type: 'record',
      name: 'SeasonalState',
      namespace: 'vigil.state',
      fields: [
        { name: 'buffer', type: { type: 'array', items: 'double' } },
        { name: 'period', type: 'int' },
        { name: 'level', type: 'double' },
        { name: 'trend', type: 'double' },
        { name: 'season', type: { type: 'array', items: 'double' } },
        { name: 'phase', type: 'int' },
        { name: 'error', type: 'double' },
      ],
    },
    init: () => ({ buffer: [], period: 0, level: 0, trend: 0, season: [], phase: 0, error: 0 }),
    step(s, x, bandZ): Assessment {
      if (s.period === 0) {
        s.buffer.push(x);
        if (s.buffer.length >= need) start(s, p.season ?? findPeriod(s.buffer, Math.floor(s.buffer.length / 2)));
        return { score: 0, expected: null, lower: null, upper: null };
      }
      const f = forecast(s);
      const scale = 1.2533 * s.error;
      const z = scale > 0 ? (x - f) / scale : x === f ? 0 : Number.POSITIVE_INFINITY;
      const out: Assessment = { score: zScore(z), expected: f, lower: f - bandZ * scale, upper: f + bandZ * scale };
      const clipped = scale > 0 ? Math.min(f + CLIP * scale, Math.max(f - CLIP * scale, x)) : x;
      s.error += ERROR_RATE * (Math.min(Math.abs(x - f), CLIP * scale || Math.abs(x - f)) - s.error);
      learn(s, clipped);
      return out;
    },
  };
}

export const seasonalDetector: DetectorKind = {
  name: 'seasonal',
  summary: 'Additive Holt-Winters with a season of `season` records, or one found from the warm-up data.',
  defaultThreshold: 0.5,
  defaultWarmup: 600,
  params: ['season'],
  check: (p) => (p.season !== undefined && p.season < 2 ? ['season must be at least 2 records'] : []),
  create: seasonal,
  stateBytes: '8 bytes per phase of the season (2.3 kB for 288, a day of 5-minute samples), and the warm-up values until the model starts',
};
