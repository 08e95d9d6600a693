// The NAB scorer (bench/lib/nab): the rules of ../shared/nab/README.md on small hand-made files,
// the null and perfect detectors on the real corpus, located errors for bad results, and agreement
// with NAB's own sweeper (vendored in test/bench/nab, run with python3) on random and real data.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../connectors/kafka-jars.ts';
import { prng } from '../../connectors/telemetry-generator.ts';
import { NabFormatError, loadNabCorpus, readResults, resultsPath, writeResults } from '../../bench/lib/nab/corpus.ts';
import type { NabCorpus } from '../../bench/lib/nab/corpus.ts';
import { runNab } from '../../bench/lib/nab/run.ts';
import { runForecast } from '../../bench/lib/nab/forecast.ts';
import { DETECTORS } from '../../operators/lib/detectors/index.ts';
import {
  NAB_PROFILES,
  NO_DETECTION,
  nullScore,
  optimizeThreshold,
  probationLength,
  scaledSigmoid,
  scoreAtThreshold,
  scoreDetector,
  scoresByThreshold,
  sweepCorpus,
} from '../../bench/lib/nab/scorer.ts';

const SHARED_NAB = join(REPO_ROOT, '..', 'shared', 'nab');
const [STANDARD, LOW_FP, LOW_FN] = NAB_PROFILES as [(typeof NAB_PROFILES)[0], (typeof NAB_PROFILES)[0], (typeof NAB_PROFILES)[0]];
const T0 = Date.UTC(2014, 0, 1);
const STEP = 5 * 60_000;

function nabTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

interface FileSpec {
  path: string;
  rows: number;
  /** Inclusive row ranges. */
  windows: Array<[number, number]>;
  /** Rows whose timestamp repeats the row before (as around clock changes in the real corpus). */
  repeats?: number[];
}

/** Writes a corpus in NAB's layout (data/, labels/combined_windows.json) and reads it back. */
function corpusOf(specs: FileSpec[]): NabCorpus {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-nab-'));
  const labels: Record<string, string[][]> = {};
  for (const f of specs) {
    const times: number[] = [];
    for (let i = 0; i < f.rows; i++) times.push(f.repeats?.includes(i) ? times[i - 1]! : T0 + i * STEP);
    mkdirSync(join(dir, 'data', f.path.split('/')[0]!), { recursive: true });
    writeFileSync(join(dir, 'data', f.path), `timestamp,value\n${times.map((t, i) => `${nabTime(t)},${i % 7}`).join('\n')}\n`);
    labels[f.path] = f.windows.map(([a, b]) => [`${nabTime(times[a]!)}.000000`, `${nabTime(times[b]!)}.000000`]);
  }
  mkdirSync(join(dir, 'labels'));
  writeFileSync(join(dir, 'labels', 'combined_windows.json'), JSON.stringify(labels));
  return loadNabCorpus(dir);
}

/** Scores that are 0 except `value` at the given rows. */
function spikes(rows: number, at: Record<number, number>): Float64Array {
  const s = new Float64Array(rows);
  for (const [i, v] of Object.entries(at)) s[Number(i)] = v;
  return s;
}

const one = (corpus: NabCorpus, s: Float64Array) => new Map([[corpus.files[0]!.path, s]]);
const rawAt = (corpus: NabCorpus, s: Float64Array, threshold = 1, p = STANDARD) => scoreAtThreshold(sweepCorpus(corpus, one(corpus, s)), p, threshold).total.score;

describe('NAB scoring rules', () => {
  it('probation is the first 15 % of a file, at most 750 rows', () => {
    expect(probationLength(1000)).toBe(150);
    expect(probationLength(5000)).toBe(750);
    expect(probationLength(22_695)).toBe(750);
    expect(probationLength(7)).toBe(1);
  });

  it('the scaled sigmoid is about 0.987 at -1, 0 at 0, and -1 past 3', () => {
    expect(scaledSigmoid(-1)).toBeCloseTo(0.98661, 5);
    expect(scaledSigmoid(-0.5)).toBeCloseTo(0.84828, 5);
    expect(scaledSigmoid(0)).toBe(0);
    expect(scaledSigmoid(3)).toBeCloseTo(-0.99999939, 8);
    expect(scaledSigmoid(3.0001)).toBe(-1);
  });

  // 1000 rows: probation 0..149; one window at rows 400..499 (width 100).
  const c = corpusOf([{ path: 'cat/a.csv', rows: 1000, windows: [[400, 499]] }]);
  const fpAfter = (rows: number) => STANDARD.fp * scaledSigmoid(rows / 99);

  it('a detection at the left edge of a window earns the full TP weight; the window missed costs the FN weight', () => {
    expect(rawAt(c, spikes(1000, { 400: 1 }))).toBeCloseTo(1, 12);
    expect(rawAt(c, spikes(1000, {}))).toBe(-1);
    expect(rawAt(c, spikes(1000, {}), 1, LOW_FN)).toBe(-2);
  });

  it('inside a window the position runs from -1 to -1/w, so a detection at the right edge earns sigma(-1/w) / sigma(-1)', () => {
    expect(rawAt(c, spikes(1000, { 499: 1 }))).toBeCloseTo(scaledSigmoid(-1 / 100) / scaledSigmoid(-1), 12);
    expect(rawAt(c, spikes(1000, { 450: 1 }))).toBeCloseTo(scaledSigmoid(-50 / 100) / scaledSigmoid(-1), 12);
  });

  it('only the earliest detection in a window counts', () => {
    expect(rawAt(c, spikes(1000, { 420: 1, 430: 1, 499: 1 }))).toBeCloseTo(rawAt(c, spikes(1000, { 420: 1 })), 12);
  });

  it('a detection after a window costs FP x sigma(rows past its right edge / (w - 1)), the full FP weight past 3 widths', () => {
    expect(rawAt(c, spikes(1000, { 520: 1 })) - -1).toBeCloseTo(fpAfter(21), 12);
    expect(rawAt(c, spikes(1000, { 796: 1 })) - -1).toBeCloseTo(fpAfter(297), 12);
    expect(rawAt(c, spikes(1000, { 797: 1 })) - -1).toBeCloseTo(-STANDARD.fp, 12);
    expect(rawAt(c, spikes(1000, { 520: 1 }), 1, LOW_FP) - -1).toBeCloseTo(LOW_FP.fp * scaledSigmoid(21 / 99), 12);
  });

  it('a detection with no window before it costs the full FP weight; one in probation costs nothing', () => {
    expect(rawAt(c, spikes(1000, { 200: 1 })) - -1).toBeCloseTo(-STANDARD.fp, 12);
    expect(rawAt(c, spikes(1000, { 100: 1 }))).toBe(-1);
    // Every false positive counts, not only the first.
    expect(rawAt(c, spikes(1000, { 200: 1, 201: 1, 202: 1 })) - -1).toBeCloseTo(-3 * STANDARD.fp, 12);
  });

  it('a row is a detection when its score is at or above the threshold', () => {
    const s = spikes(1000, { 400: 0.7 });
    expect(rawAt(c, s, 0.7)).toBeCloseTo(1, 12);
    expect(rawAt(c, s, 0.7000001)).toBe(-1);
  });

  it('sweeps "nothing" and every distinct score after probation; of equal totals the highest threshold wins', () => {
    // 0.9 at the left edge; 0.8 later in the same window adds nothing; 0.3 is a false positive; 0.95 is in probation.
    const sw = sweepCorpus(c, one(c, spikes(1000, { 100: 0.95, 400: 0.9, 450: 0.8, 800: 0.3 })));
    const rows = scoresByThreshold(sw, STANDARD);
    expect(rows.map((r) => r.threshold)).toEqual([NO_DETECTION, 0.9, 0.8, 0.3, 0]);
    expect(rows[0]!.score).toBe(-1);
    expect(rows[1]!.score).toBeCloseTo(1, 12);
    expect(rows[2]!.score).toBe(rows[1]!.score);
    expect(optimizeThreshold(sw, STANDARD).threshold).toBe(0.9);
    // Only false positives: detecting nothing is best.
    const fps = sweepCorpus(c, one(c, spikes(1000, { 200: 0.5, 900: 0.4 })));
    expect(optimizeThreshold(fps, STANDARD)).toMatchObject({ threshold: NO_DETECTION, score: -1, tp: 0, fp: 0 });
  });

  it('a window opens at the first row with its start timestamp when timestamps repeat', () => {
    // Rows 401 and 402 repeat row 400's timestamp: the window (400's time .. 499's) is 100 rows wide.
    const r = corpusOf([{ path: 'cat/r.csv', rows: 1000, windows: [[400, 499]], repeats: [401, 402] }]);
    expect(r.files[0]!.windows[0]).toMatchObject({ first: 400, last: 499 });
    expect(rawAt(r, spikes(1000, { 402: 1 }))).toBeCloseTo(scaledSigmoid(-98 / 100) / scaledSigmoid(-1), 12);
  });
});

describe('NAB scoring of the corpus in ../shared/nab', () => {
  const corpus = loadNabCorpus(SHARED_NAB);

  it('reads 58 files, 365,558 rows and 116 windows', () => {
    expect(corpus.files.length).toBe(58);
    expect(corpus.files.reduce((n, f) => n + f.times.length, 0)).toBe(365_558);
    expect(corpus.windowCount).toBe(116);
  });

  it('the null detector scores -116 / -116 / -232 raw and 0 normalised', () => {
    expect(NAB_PROFILES.map((p) => nullScore(corpus, p))).toEqual([-116, -116, -232]);
    const zeros = new Map(corpus.files.map((f) => [f.path, new Float64Array(f.times.length)]));
    for (const r of scoreDetector(corpus, zeros)) expect(r.swept.normalized).toBe(0);
  });

  it('a perfect detector (1 at the first row of each window) scores 100 under every profile', () => {
    const perfect = new Map(corpus.files.map((f) => [f.path, spikes(f.times.length, Object.fromEntries(f.windows.map((w) => [w.first, 1])))]));
    for (const r of scoreDetector(corpus, perfect, 1)) {
      expect(r.swept.normalized).toBeCloseTo(100, 9);
      expect(r.atThreshold!.normalized).toBeCloseTo(100, 9);
      expect(r.swept.fp).toBe(0);
    }
  });
});

describe('NAB results files', () => {
  const c = corpusOf([
    { path: 'x/a.csv', rows: 200, windows: [[100, 119]] },
    { path: 'y/b.csv', rows: 300, windows: [] },
  ]);

  it("are written in NAB's layout and read back", () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-nab-results-'));
    const a = spikes(200, { 100: 0.25 });
    writeResults(dir, 'det', c.files[0]!, a);
    writeResults(dir, 'det', c.files[1]!, new Float64Array(300));
    expect(resultsPath(dir, 'det', c.files[0]!)).toBe(join(dir, 'det', 'x', 'det_a.csv'));
    const back = readResults(dir, 'det', c);
    expect([...back.get('x/a.csv')!]).toEqual([...a]);
  });

  it('a missing file, a wrong row count or a bad score is an error naming the file (and line)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-nab-results-'));
    writeResults(dir, 'det', c.files[0]!, new Float64Array(200));
    expect(() => readResults(dir, 'det', c)).toThrow(new NabFormatError(`${join(dir, 'det', 'y', 'det_b.csv')}: missing: detector 'det' has no results for y/b.csv`));
    mkdirSync(join(dir, 'det', 'y'), { recursive: true });
    const b = join(dir, 'det', 'y', 'det_b.csv');
    writeFileSync(b, 'timestamp,value,anomaly_score,label\n2014-01-01 00:00:00,0,0,0\n');
    expect(() => readResults(dir, 'det', c)).toThrow(`${b}: 1 rows, but y/b.csv has 300`);
    const rows = Array.from({ length: 300 }, (_, i) => `${nabTime(T0 + i * STEP)},0,${i === 7 ? 'high' : '0'},0`);
    writeFileSync(b, `timestamp,value,anomaly_score,label\n${rows.join('\n')}\n`);
    expect(() => readResults(dir, 'det', c)).toThrow(`${b}:9: anomaly_score 'high' is not a number`);
    writeFileSync(b, `timestamp,value,label\n${rows.map((r) => r.replace(/,[^,]*,0$/, ',0')).join('\n')}\n`);
    expect(() => readResults(dir, 'det', c)).toThrow(`${b}:1: no column 'anomaly_score' (columns: timestamp, value, label)`);
  });
});

// NAB's own sweeper, vendored unchanged, is the reference: python3 is on every machine this project
// targets (it is part of the base image), but where it is not, these comparisons cannot run.
const python = spawnSync('python3', ['--version']).status === 0;
const REFERENCE = join(REPO_ROOT, 'test', 'bench', 'nab', 'nab_reference.py');

interface Reference {
  threshold: number;
  raw: number;
  normalized: number;
  tp: number;
  fp: number;
  fn: number;
  rawAt?: number;
}

function nabReference(corpusDir: string, resultsDir: string, detector: string, threshold: number): Record<string, Reference> {
  const r = spawnSync('python3', [REFERENCE, corpusDir, resultsDir, detector, String(threshold)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`nab_reference.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, Reference>;
}

function expectSameAsNab(corpus: NabCorpus, scores: Map<string, Float64Array>, threshold: number): void {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-nab-results-'));
  for (const f of corpus.files) writeResults(dir, 'det', f, scores.get(f.path)!);
  const ref = nabReference(corpus.dir, dir, 'det', threshold);
  // Scored from what was written, as any other scorer would read it.
  for (const r of scoreDetector(corpus, readResults(dir, 'det', corpus), threshold)) {
    const n = ref[r.profile]!;
    expect(r.swept.threshold, r.profile).toBe(n.threshold);
    expect(r.swept.raw).toBeCloseTo(n.raw, 9);
    expect(r.swept.normalized).toBeCloseTo(n.normalized, 9);
    expect([r.swept.tp, r.swept.fp, r.swept.fn]).toEqual([n.tp, n.fp, n.fn]);
    expect(r.atThreshold!.raw).toBeCloseTo(n.rawAt!, 9);
  }
}

describe.skipIf(!python)('agreement with NAB\'s own sweeper (python3; skipped only where python3 is absent)', () => {
  it('on random scores with ties, over files with several windows, windows at the edges, none, and repeated timestamps', () => {
    const corpus = corpusOf([
      { path: 'a/one.csv', rows: 1200, windows: [[300, 399], [700, 760], [1100, 1199]] },
      { path: 'a/two.csv', rows: 6000, windows: [[749, 900], [3000, 3500]], repeats: [2000, 2001, 3001] },
      { path: 'b/none.csv', rows: 800, windows: [] },
      { path: 'b/early.csv', rows: 500, windows: [[60, 120], [130, 140]] },
    ]);
    const rnd = prng(7);
    // Scores on a coarse grid give many ties; a few high ones make detections sparse.
    const scores = new Map(corpus.files.map((f) => [f.path, Float64Array.from({ length: f.times.length }, () => (rnd() < 0.02 ? 0.9 + Math.floor(rnd() * 10) / 100 : Math.floor(rnd() * 20) / 20))]));
    expectSameAsNab(corpus, scores, 0.95);
  });

  it('on the real corpus, scored by a simple detector written to disk', () => {
    const corpus = loadNabCorpus(SHARED_NAB);
    // |value - mean of the last 50| / (4 x their standard deviation), capped at 1, on a grid of 0.001.
    const scores = new Map(
      corpus.files.map((f) => {
        const s = new Float64Array(f.values.length);
        for (let i = 50; i < f.values.length; i++) {
          let m = 0;
          for (let j = i - 50; j < i; j++) m += f.values[j]!;
          m /= 50;
          let v = 0;
          for (let j = i - 50; j < i; j++) v += (f.values[j]! - m) ** 2;
          const sd = Math.sqrt(v / 50);
          s[i] = sd === 0 ? (f.values[i] === m ? 0 : 1) : Math.min(1, Math.round((1000 * Math.abs(f.values[i]! - m)) / (4 * sd)) / 1000);
        }
        return [f.path, s];
      }),
    );
    expectSameAsNab(corpus, scores, 1);
  }, 60_000);
});

describe('vigil bench nab', () => {
  const vigil = (args: string[]) => spawnSync(process.execPath, ['bin/vigil.mjs', 'bench', 'nab', ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  const corpus = corpusOf([
    { path: 'x/a.csv', rows: 400, windows: [[100, 119], [300, 320]] },
    { path: 'y/b.csv', rows: 300, windows: [[200, 210]] },
  ]);

  it('runs a detector into the directory given by --out (an option of the subcommand, not of vigil bench)', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'vigil-nab-out-')), 'run');
    const r = vigil(['--corpus', corpus.dir, '--detector', 'ewma', '--out', out]);
    expect(r.stderr).toContain(`[bench] results in ${out}`);
    expect(r.status).toBe(0);
    expect(readResults(out, 'ewma', corpus).size).toBe(2);
    expect(r.stdout).toMatch(/\| ewma \| \*\*/);
  });

  it('scores every detector of a results directory and prints them beside the scoreboard', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-nab-results-'));
    for (const f of corpus.files) {
      writeResults(dir, 'perfect', f, spikes(f.times.length, Object.fromEntries(f.windows.map((w) => [w.first, 1]))));
      writeResults(dir, 'null', f, new Float64Array(f.times.length).fill(0.5));
    }
    const r = vigil(['--corpus', corpus.dir, '--results', dir]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('NAB corpus: 2 files, 700 rows, 3 anomaly windows.');
    expect(r.stdout).toContain('| null | **0.0** | 0.0 | 0.0 | 1.1 / 1.1 / 1.1 | – |');
    expect(r.stdout).toContain('| perfect | **100.0** | 100.0 | 100.0 | 1 / 1 / 1 | – |');
    expect(r.stdout).toContain('| ARTime | 74.9 | 65.1 | 80.4 |');
  });

  it('refuses a results directory that lacks a file, naming it, and exits 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-nab-results-'));
    writeResults(dir, 'half', corpus.files[0]!, new Float64Array(400));
    const r = vigil(['--corpus', corpus.dir, '--results', dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`vigil bench nab: ${join(dir, 'half', 'y', 'half_b.csv')}: missing: detector 'half' has no results for y/b.csv\n`);
  });
});

describe('detectors over a corpus (vigil bench nab)', () => {
  it('runs each detector through the detect operator, one score per row, in NAB\'s layout, equal to the detector run directly', async () => {
    const corpus = corpusOf([
      { path: 'x/a.csv', rows: 900, windows: [[600, 650]] },
      { path: 'y/b.csv', rows: 700, windows: [] },
    ]);
    const out = mkdtempSync(join(tmpdir(), 'vigil-nab-run-'));
    const { runs, scores } = await runNab(corpus, [...DETECTORS.keys()], out);
    expect(runs.map((r) => r.detector)).toEqual([...DETECTORS.keys()]);
    for (const [name, kind] of DETECTORS) {
      const written = readResults(out, name, corpus);
      for (const f of corpus.files) {
        const d = kind.create({ window: 64, halfLife: 30, history: 800, warmup: kind.defaultWarmup });
        const s = d.init();
        const direct = f.values.map((x, i) => {
          const a = d.step(s, x, 0);
          return i < kind.defaultWarmup ? 0 : a.score;
        });
        expect([...written.get(f.path)!], `${name} ${f.path}`).toEqual(direct);
        // As alerts: the score where the flag turns on (the first record at the threshold after a calm one), else 0.
        const onsets = [...readResults(out, `${name}-onsets`, corpus).get(f.path)!];
        expect(onsets).toHaveLength(direct.length);
        onsets.forEach((o, i) => {
          if (o !== 0) expect([o >= kind.defaultThreshold, o === direct[i], i === 0 || onsets[i - 1] === 0], `${name} ${f.path}:${i}`).toEqual([true, true, true]);
        });
        const firstHigh = direct.findIndex((x) => x >= kind.defaultThreshold);
        if (firstHigh >= 0) expect(onsets[firstHigh], `${name} ${f.path}: the first flagged record is an onset`).toBe(direct[firstHigh]);
      }
    }
    expect(scores.map((s) => [s.detector, s.defaultThreshold, s.profiles.length])).toEqual([...DETECTORS.values()].flatMap((k) => [[k.name, k.defaultThreshold, 3], [`${k.name}-onsets`, k.defaultThreshold, 3]]));
  }, 60_000);
});

describe('forecast error (vigil bench nab --forecast)', () => {
  it('a linear ramp is forecast exactly by the line and polynomial, and the naive forecast misses by the ramp', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-nab-forecast-'));
    mkdirSync(join(dir, 'data', 'ramp'), { recursive: true });
    const rows = Array.from({ length: 200 }, (_, i) => `${nabTime(T0 + i * STEP)},${100 + i}`);
    writeFileSync(join(dir, 'data', 'ramp', 'r.csv'), `timestamp,value\n${rows.join('\n')}\n`);
    mkdirSync(join(dir, 'labels'));
    writeFileSync(join(dir, 'labels', 'combined_windows.json'), JSON.stringify({ 'ramp/r.csv': [] }));
    const out = await runForecast(loadNabCorpus(dir), 'ramp');
    const by = Object.fromEntries(out.map((r) => [r.fit, r]));
    for (const fit of ['linear', 'polynomial', 'robust'] as const) for (const m of by[fit]!.mape) expect(m).toBeCloseTo(0, 6);
    // 30 minutes ahead is 6 samples: the naive forecast is 6 below, at values of 100 to 300.
    expect(by['naive (last value)']!.mape[1]).toBeGreaterThan(1);
    expect(by.linear!.samples[0]).toBe(200 - 23 - 1);
  }, 60_000);
});
