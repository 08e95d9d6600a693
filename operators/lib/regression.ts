// Least-squares lines over a sliding window, as Prometheus' predict_linear computes them: x is a
// sample's time in seconds relative to the evaluation time, sums are compensated (Kahan-Neumaier,
// as Prometheus' kahansum.Inc), and a window whose values are all equal has slope 0. The window's
// sums are kept running (a sample added, an old one taken away: O(1) per sample) against an origin
// that is moved to the oldest sample, with the sums computed afresh, once per window length of
// updates, so rounding cannot build up.

/** Neumaier's compensated addition, as Prometheus' kahansum.Inc: returns [sum, compensation]. */
export function kahanInc(inc: number, sum: number, c: number): [number, number] {
  const t = sum + inc;
  if (!Number.isFinite(t)) return [t, 0];
  if (Math.abs(sum) >= Math.abs(inc)) c += sum - t + inc;
  else c += inc - t + sum;
  return [t, c];
}

export interface Line {
  slope: number;
  /** The value at the evaluation time. */
  intercept: number;
}

/** Prometheus' linearRegression(samples, interceptTime) over (time ms, value) points, computed from scratch. */
export function linearRegression(times: ArrayLike<number>, values: ArrayLike<number>, interceptTime: number): Line {
  const n = times.length;
  const initY = values[0]!;
  let constY = true;
  let sx = 0;
  let cx = 0;
  let sy = 0;
  let cy = 0;
  let sxy = 0;
  let cxy = 0;
  let sx2 = 0;
  let cx2 = 0;
  for (let i = 0; i < n; i++) {
    const y = values[i]!;
    if (constY && i > 0 && y !== initY) constY = false;
    const x = (times[i]! - interceptTime) / 1e3;
    [sx, cx] = kahanInc(x, sx, cx);
    [sy, cy] = kahanInc(y, sy, cy);
    [sxy, cxy] = kahanInc(x * y, sxy, cxy);
    [sx2, cx2] = kahanInc(x * x, sx2, cx2);
  }
  if (constY) return Number.isFinite(initY) ? { slope: 0, intercept: initY } : { slope: Number.NaN, intercept: Number.NaN };
  sx += cx;
  sy += cy;
  sxy += cxy;
  sx2 += cx2;
  const cov = sxy - (sx * sy) / n;
  const varX = sx2 - (sx * sx) / n;
  const slope = cov / varX;
  return { slope, intercept: sy / n - (slope * sx) / n };
}

/**
 * The running sums of a window of (time, value) points, x in seconds from `origin` (ms). Each sum
 * has its compensation term. `equal` counts the points whose value equals `first` (the window is
 * constant when it counts them all).
 */
export interface WindowSums {
  origin: number;
  n: number;
  sx: number;
  cx: number;
  sy: number;
  cy: number;
  sxy: number;
  cxy: number;
  sx2: number;
  cx2: number;
  sy2: number;
  cy2: number;
  /** Updates since the sums were last computed afresh. */
  updates: number;
}

export function emptySums(): WindowSums {
  return { origin: 0, n: 0, sx: 0, cx: 0, sy: 0, cy: 0, sxy: 0, cxy: 0, sx2: 0, cx2: 0, sy2: 0, cy2: 0, updates: 0 };
}

function apply(s: WindowSums, t: number, y: number, sign: 1 | -1): void {
  const x = (t - s.origin) / 1e3;
  [s.sx, s.cx] = kahanInc(sign * x, s.sx, s.cx);
  [s.sy, s.cy] = kahanInc(sign * y, s.sy, s.cy);
  [s.sxy, s.cxy] = kahanInc(sign * x * y, s.sxy, s.cxy);
  [s.sx2, s.cx2] = kahanInc(sign * x * x, s.sx2, s.cx2);
  [s.sy2, s.cy2] = kahanInc(sign * y * y, s.sy2, s.cy2);
  s.n += sign;
}

/** Adds a point to the sums. */
export function addPoint(s: WindowSums, t: number, y: number): void {
  if (s.n === 0) s.origin = t;
  apply(s, t, y, 1);
  s.updates++;
}

/** Takes a point (one that was added) away from the sums. */
export function removePoint(s: WindowSums, t: number, y: number): void {
  apply(s, t, y, -1);
  s.updates++;
}

/** Computes the sums afresh from the window's points, with the origin at the oldest point. */
export function resetSums(s: WindowSums, times: ArrayLike<number>, values: ArrayLike<number>, from: number, count: number, capacity: number): void {
  Object.assign(s, emptySums());
  for (let k = 0; k < count; k++) {
    const i = (from + k) % capacity;
    if (k === 0) s.origin = times[i]!;
    apply(s, times[i]!, values[i]!, 1);
  }
}

export interface LineFit extends Line {
  /** Root mean square of the residuals. */
  rmse: number;
}

/**
 * The line of the window's sums, evaluated at `at` (ms): Prometheus' slope and intercept. `constant`:
 * whether every value of the window is the same (then slope 0, as Prometheus). Undefined with fewer
 * than two points or no spread of times.
 */
export function lineOf(s: WindowSums, at: number, constant: number | undefined): LineFit | undefined {
  if (s.n < 2) return undefined;
  if (constant !== undefined) return { slope: 0, intercept: constant, rmse: 0 };
  const n = s.n;
  const sx = s.sx + s.cx;
  const sy = s.sy + s.cy;
  const sxy = s.sxy + s.cxy;
  const sx2 = s.sx2 + s.cx2;
  const sy2 = s.sy2 + s.cy2;
  const cov = sxy - (sx * sy) / n;
  const varX = sx2 - (sx * sx) / n;
  if (!(varX > 0)) return undefined;
  const slope = cov / varX;
  const d = (at - s.origin) / 1e3;
  const intercept = sy / n - slope * (sx / n - d);
  const varY = sy2 - (sy * sy) / n;
  return { slope, intercept, rmse: Math.sqrt(Math.max(0, varY - slope * cov) / n) };
}
