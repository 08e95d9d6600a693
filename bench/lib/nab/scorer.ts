// A scorer for the Numenta Anomaly Benchmark, written from the rules in ../shared/nab/README.md and
// checked against NAB's own sweeper (nab/sweeper.py, optimizer.py, scorer.py, runner.normalize):
// - the first 15 % of each file (at most 750 rows) is probation and not scored;
// - inside a window of w rows, row i (window rows a..b) sits at y = -(b - i + 1) / w and a detection
//   there earns sigma(y) / sigma(-1) x TP weight, sigma(y) = 2 / (1 + e^(5y)) - 1; only the best
//   (earliest) detection of a window counts; a window without one costs the FN weight;
// - a detection outside every window costs FP weight x sigma(d), d = rows since the preceding
//   window's last row / (w - 1) of that window, or the full FP weight when d > 3 or no window precedes;
// - one threshold per profile for the whole corpus, swept over "nothing" (1.1) and every distinct
//   score after probation, a detection being a score at or above it; on a tie the highest wins;
// - normalised = 100 x (raw - null) / (perfect - null): null is the null detector scored the same
//   way, perfect is the label file's window count x TP weight.
import type { NabCorpus, NabFile } from './corpus.ts';

export interface NabProfile {
  name: 'standard' | 'reward_low_FP_rate' | 'reward_low_FN_rate';
  tp: number;
  fp: number;
  fn: number;
}

/** NAB's config/profiles.json. */
export const NAB_PROFILES: readonly NabProfile[] = [
  { name: 'standard', tp: 1, fp: 0.11, fn: 1 },
  { name: 'reward_low_FP_rate', tp: 1, fp: 0.22, fn: 1 },
  { name: 'reward_low_FN_rate', tp: 1, fp: 0.11, fn: 2 },
];

export const PROBATION_FRACTION = 0.15;
/** The threshold that detects nothing (every score is at most 1). */
export const NO_DETECTION = 1.1;

/** Rows of a file that are not scored (NAB: min(floor(0.15 n), 0.15 x 5000)). */
export function probationLength(rows: number): number {
  return Math.min(Math.floor(PROBATION_FRACTION * rows), PROBATION_FRACTION * 5000);
}

/** NAB's scaledSigmoid: 2 sigmoid(-5x) - 1, and -1 past 3. */
export function scaledSigmoid(x: number): number {
  return x > 3 ? -1 : 2 * (1 / (1 + Math.exp(5 * x))) - 1;
}

const MAX_TP = scaledSigmoid(-1);
const NO_WINDOW = -1;
const PROBATION = -2;

/**
 * Each row's unweighted score (the TP share of a row in a window, the negative FP share of a row
 * outside) and its window: the window's number in the corpus, NO_WINDOW, or PROBATION.
 */
interface FileSweep {
  unweighted: Float64Array;
  window: Int32Array;
}

function sweepFile(file: NabFile, windowBase: number): FileSweep {
  // NAB's calcSweepScore, row by row in file order: a window opens at the row whose timestamp is its
  // start and closes after the row whose timestamp is its end; its width is counted between the
  // first rows with those timestamps.
  const n = file.times.length;
  const unweighted = new Float64Array(n);
  const window = new Int32Array(n);
  const probation = probationLength(n);
  let next = 0;
  let cur = -1;
  let prevRight = -1;
  let prevWidth = 0;
  for (let i = 0; i < n; i++) {
    const t = file.times[i]!;
    if (next < file.windows.length && t === file.windows[next]!.start) cur = next++;
    if (cur >= 0) {
      const w = file.windows[cur]!;
      unweighted[i] = scaledSigmoid(-(w.last - i + 1) / (w.last - w.first + 1)) / MAX_TP;
    } else if (prevRight < 0) {
      unweighted[i] = -1;
    } else {
      // A one-row window has no width to measure distance by: what follows counts as far away.
      unweighted[i] = prevWidth > 1 ? scaledSigmoid(Math.abs(prevRight - i) / (prevWidth - 1)) : -1;
    }
    window[i] = i < probation ? PROBATION : cur >= 0 ? windowBase + cur : NO_WINDOW;
    if (cur >= 0 && t === file.windows[cur]!.end) {
      prevRight = i;
      prevWidth = file.windows[cur]!.last - file.windows[cur]!.first + 1;
      cur = -1;
    }
  }
  return { unweighted, window };
}

/** A detector's scores on a corpus, swept once and scored under any profile and threshold. */
export interface SweptCorpus {
  files: NabFile[];
  windowCount: number;
  /** Scorable rows (after probation) of every file, in file then row order. */
  score: Float64Array;
  unweighted: Float64Array;
  /** The row's window number in the corpus, or NO_WINDOW. */
  window: Int32Array;
  /** Scorable rows per file (to score files one by one). */
  fileRows: number[];
  /** Scorable rows in descending score order, ties in file then row order (NAB's stable sort). */
  order: Uint32Array;
}

/** Sweeps a detector's scores (one array per corpus file, by path) over the corpus. */
export function sweepCorpus(corpus: NabCorpus, scores: ReadonlyMap<string, ArrayLike<number>>): SweptCorpus {
  const parts: Array<{ s: ArrayLike<number>; sw: FileSweep; start: number }> = [];
  let total = 0;
  let windowBase = 0;
  const fileRows: number[] = [];
  for (const f of corpus.files) {
    const s = scores.get(f.path);
    if (s === undefined) throw new Error(`no scores for ${f.path}`);
    if (s.length !== f.times.length) throw new Error(`${f.path}: ${s.length} scores for ${f.times.length} rows`);
    const sw = sweepFile(f, windowBase);
    windowBase += f.windows.length;
    const start = Math.ceil(probationLength(f.times.length));
    parts.push({ s, sw, start });
    fileRows.push(f.times.length - start);
    total += f.times.length - start;
  }
  const score = new Float64Array(total);
  const unweighted = new Float64Array(total);
  const window = new Int32Array(total);
  let k = 0;
  for (const { s, sw, start } of parts) {
    for (let i = start; i < s.length; i++, k++) {
      score[k] = s[i]!;
      unweighted[k] = sw.unweighted[i]!;
      window[k] = sw.window[i]!;
    }
  }
  const order = new Uint32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  order.sort((a, b) => score[b]! - score[a]! || a - b);
  return { files: corpus.files, windowCount: windowBase, score, unweighted, window, fileRows, order };
}

export interface ThresholdScore {
  threshold: number;
  /** Raw NAB score of the corpus at this threshold. */
  score: number;
  /** Scorable rows detected inside / outside windows, and not detected inside / outside. */
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

/** The weighted sweep score of a scorable row under a profile. */
function weighted(sw: SweptCorpus, k: number, p: NabProfile): number {
  return sw.window[k]! >= 0 ? sw.unweighted[k]! * p.tp : sw.unweighted[k]! * p.fp;
}

/**
 * The corpus score at every candidate threshold, highest threshold first (NAB's
 * calcScoreByThreshold: rows in descending score order, the score saved whenever the next row's
 * score differs).
 */
export function scoresByThreshold(sw: SweptCorpus, p: NabProfile): ThresholdScore[] {
  // NAB keeps one score part per window with a scorable row, in the order the sorted rows meet
  // them, and sums the parts for every threshold; the same order keeps the same float sums.
  const slot = new Int32Array(sw.windowCount).fill(-1);
  let slots = 0;
  for (let j = 0; j < sw.order.length; j++) {
    const w = sw.window[sw.order[j]!]!;
    if (w >= 0 && slot[w] === -1) slot[w] = slots++;
  }
  const parts = new Float64Array(slots).fill(-p.fn);
  let fpPart = 0;
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let k = 0; k < sw.window.length; k++) if (sw.window[k]! >= 0) fn++;
  let tn = sw.window.length - fn;
  const sum = () => {
    let s = fpPart;
    for (let i = 0; i < slots; i++) s += parts[i]!;
    return s;
  };
  const out: ThresholdScore[] = [];
  let threshold = NO_DETECTION;
  for (let j = 0; j < sw.order.length; j++) {
    const k = sw.order[j]!;
    const s = sw.score[k]!;
    if (s !== threshold) {
      out.push({ threshold, score: sum(), tp, fp, fn, tn });
      threshold = s;
    }
    const w = sw.window[k]!;
    if (w >= 0) {
      tp++;
      fn--;
      const i = slot[w]!;
      parts[i] = Math.max(parts[i]!, weighted(sw, k, p));
    } else {
      fp++;
      tn--;
      fpPart += weighted(sw, k, p);
    }
  }
  out.push({ threshold, score: sum(), tp, fp, fn, tn });
  return out;
}

/** The best threshold: the highest score, and of equal scores the highest threshold (NAB's stable sort). */
export function optimizeThreshold(sw: SweptCorpus, p: NabProfile): ThresholdScore {
  let best: ThresholdScore | undefined;
  for (const t of scoresByThreshold(sw, p)) if (best === undefined || t.score > best.score) best = t;
  return best!;
}

export interface FileScore {
  path: string;
  score: number;
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  /** Windows detected / windows with a scorable row. */
  windowsHit: number;
  windows: number;
}

/**
 * Scores every file at one threshold (NAB's scoreCorpus: a row is a detection when its score is at
 * or above the threshold) and totals them.
 */
export function scoreAtThreshold(sw: SweptCorpus, p: NabProfile, threshold: number): { total: ThresholdScore; files: FileScore[] } {
  const files: FileScore[] = [];
  const total: ThresholdScore = { threshold, score: 0, tp: 0, fp: 0, fn: 0, tn: 0 };
  let k = 0;
  for (let f = 0; f < sw.files.length; f++) {
    const end = k + sw.fileRows[f]!;
    const best = new Map<number, number>();
    const fs: FileScore = { path: sw.files[f]!.path, score: 0, tp: 0, fp: 0, fn: 0, tn: 0, windowsHit: 0, windows: 0 };
    let fpPart = 0;
    for (; k < end; k++) {
      const w = sw.window[k]!;
      const detected = sw.score[k]! >= threshold;
      if (w >= 0) {
        if (!best.has(w)) best.set(w, -p.fn);
        if (detected) {
          fs.tp++;
          best.set(w, Math.max(best.get(w)!, weighted(sw, k, p)));
        } else fs.fn++;
      } else if (detected) {
        fs.fp++;
        fpPart += weighted(sw, k, p);
      } else fs.tn++;
    }
    let s = fpPart;
    for (const v of best.values()) s += v;
    fs.score = s;
    fs.windows = best.size;
    for (const v of best.values()) if (v > -p.fn) fs.windowsHit++;
    files.push(fs);
    total.score += s;
    total.tp += fs.tp;
    total.fp += fs.fp;
    total.fn += fs.fn;
    total.tn += fs.tn;
  }
  return { total, files };
}

const nullScores = new WeakMap<NabCorpus, Map<string, number>>();

/** The null detector's raw score (a constant score; at its best threshold it detects nothing). */
export function nullScore(corpus: NabCorpus, p: NabProfile): number {
  let byProfile = nullScores.get(corpus);
  if (byProfile === undefined) nullScores.set(corpus, (byProfile = new Map()));
  let s = byProfile.get(p.name);
  if (s === undefined) {
    const constant = new Map(corpus.files.map((f) => [f.path, new Float64Array(f.times.length).fill(0.5)]));
    s = optimizeThreshold(sweepCorpus(corpus, constant), p).score;
    byProfile.set(p.name, s);
  }
  return s;
}

/** NAB's normalisation: 100 x (raw - null) / (perfect - null). */
export function normalizeScore(raw: number, nullRaw: number, corpus: NabCorpus, p: NabProfile): number {
  const perfect = corpus.windowCount * p.tp;
  return (100 * (raw - nullRaw)) / (perfect - nullRaw);
}

export interface ProfileResult {
  profile: NabProfile['name'];
  /** At the threshold swept for this profile over the corpus. */
  swept: { threshold: number; raw: number; normalized: number; tp: number; fp: number; fn: number };
  /** At a given threshold (a detector's shipped default), if one was given. */
  atThreshold?: { threshold: number; raw: number; normalized: number; tp: number; fp: number; fn: number; files: FileScore[] };
}

/** Scores a detector under every profile: swept, and at `threshold` when given. */
export function scoreDetector(corpus: NabCorpus, scores: ReadonlyMap<string, ArrayLike<number>>, threshold?: number): ProfileResult[] {
  const sw = sweepCorpus(corpus, scores);
  return NAB_PROFILES.map((p) => {
    const nul = nullScore(corpus, p);
    const best = optimizeThreshold(sw, p);
    const r: ProfileResult = {
      profile: p.name,
      swept: { threshold: best.threshold, raw: best.score, normalized: normalizeScore(best.score, nul, corpus, p), tp: best.tp, fp: best.fp, fn: best.fn },
    };
    if (threshold !== undefined) {
      const at = scoreAtThreshold(sw, p, threshold);
      r.atThreshold = { threshold, raw: at.total.score, normalized: normalizeScore(at.total.score, nul, corpus, p), tp: at.total.tp, fp: at.total.fp, fn: at.total.fn, files: at.files };
    }
    return r;
  });
}
