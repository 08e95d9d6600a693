// Numerical pieces the detectors share: the normal tail and its inverse, and the anomaly score scale.
//
// Scores of the statistical detectors are surprise on a log scale, as Numenta's HTM log-likelihood
// is: score = -log10(p) / 10, where p is the two-sided probability of a deviation at least this
// large under the detector's model: 0.3 is p = 1e-3, 0.5 is p = 1e-5, 0.9 is p = 1e-9. Above 0.9 the
// scale bends so that scores stay below 1 and keep their order (p = 1e-10 scores 0.95, 1e-20 0.99,
// 1e-100 0.999): unlike 1 - p, nothing saturates, so the largest deviations still rank above the
// large ones.

/** erfc(x), relative error below 1.2e-7 (Numerical Recipes' erfcc, Chebyshev fit). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Two-sided tail probability of a standard normal deviation of |z|. */
export function twoSidedP(z: number): number {
  return erfc(Math.abs(z) / Math.SQRT2);
}

/** log10 of twoSidedP(z), also where the probability underflows (an asymptotic series past |z| = 8). */
export function log10TwoSidedP(z: number): number {
  const a = Math.abs(z);
  if (a < 8) return Math.log10(twoSidedP(a));
  if (a === Number.POSITIVE_INFINITY) return Number.NEGATIVE_INFINITY;
  const x = a / Math.SQRT2;
  const x2 = x * x;
  return (-x2 - Math.log(x * Math.sqrt(Math.PI)) + Math.log(1 - 1 / (2 * x2) + 3 / (4 * x2 * x2))) / Math.LN10;
}

const BEND = 0.9;

/** The score of a deviation of |z| normal standard deviations (see the top of this file). */
export function zScore(z: number): number {
  return scoreOfLog10P(log10TwoSidedP(z));
}

/** The score of a probability given as log10(p). */
export function scoreOfLog10P(log10p: number): number {
  const s = -log10p / 10;
  if (!(s > 0)) return 0;
  if (s <= BEND) return s;
  return s === Number.POSITIVE_INFINITY ? 1 : 1 - (1 - BEND) / (1 + (s - BEND) / (1 - BEND));
}

/** The two-sided probability a score stands for (the inverse of the score). */
export function pOfScore(score: number): number {
  if (score <= BEND) return 10 ** (-10 * score);
  if (score >= 1) return 0;
  const s = BEND + (1 - BEND) * ((1 - BEND) / (1 - score) - 1);
  return 10 ** (-10 * s);
}

/** The standard normal quantile (Acklam's rational approximation, relative error 1.15e-9). */
export function normalQuantile(p: number): number {
  if (p <= 0) return Number.NEGATIVE_INFINITY;
  if (p >= 1) return Number.POSITIVE_INFINITY;
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** The |z| whose two-sided probability is the one a score threshold stands for (the band's half-width in scales). */
export function zOfScore(score: number): number {
  const p = pOfScore(score);
  // Below ~1e-16, 1 - p/2 rounds to 1: use the lower tail instead.
  return -normalQuantile(p / 2);
}

/** Median of the first `n` values of `a` (copied; `a` is left alone). */
export function median(a: ArrayLike<number>, n = a.length): number {
  if (n === 0) return Number.NaN;
  const s = Float64Array.from({ length: n }, (_, i) => a[i]!).sort();
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}
