// The detectors of the detect operator, one by one: their statistics, what they flag, and that their
// state goes through Avro (as the changelog stores it) without changing what comes after.
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { prng } from '../../connectors/telemetry-generator.ts';
import { DETECTORS } from '../../operators/lib/detectors/index.ts';
import type { Detector, DetectorParams } from '../../operators/lib/detectors/index.ts';
import { findPeriod } from '../../operators/lib/detectors/seasonal.ts';
import { normalQuantile, pOfScore, twoSidedP, zOfScore, zScore } from '../../operators/lib/detectors/stats.ts';

const PARAMS: DetectorParams = { window: 64, halfLife: 30, history: 800, warmup: 30 };

function gaussian(rnd: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

function run(d: Detector, values: number[], bandZ = 4.4) {
  const s = d.init();
  return values.map((x) => d.step(s, x, bandZ));
}

describe('the score scale', () => {
  it('is -log10(p) / 10 up to 0.9: 0.3 at p = 1e-3, 0.5 at p = 1e-5', () => {
    expect(zScore(normalQuantile(1 - 1e-3 / 2))).toBeCloseTo(0.3, 6);
    expect(zScore(normalQuantile(1 - 1e-5 / 2))).toBeCloseTo(0.5, 6);
    expect(zScore(0)).toBe(0);
    expect(pOfScore(0.5)).toBeCloseTo(1e-5, 12);
  });

  it('bends above 0.9 so that scores stay below 1 and keep their order, for any finite deviation', () => {
    const zs = [5, 6, 7, 8, 9, 12, 20, 40, 100, 1000, 1e6];
    const scores = zs.map(zScore);
    for (let i = 1; i < scores.length; i++) expect(scores[i]!).toBeGreaterThan(scores[i - 1]!);
    expect(scores[scores.length - 1]!).toBeLessThan(1);
    expect(zScore(Number.POSITIVE_INFINITY)).toBe(1);
  });

  it('maps a threshold back to the deviation it stands for (the band), also on the bent part', () => {
    for (const s of [0.1, 0.3, 0.5, 0.8, 0.95, 0.99]) expect(zScore(zOfScore(s))).toBeCloseTo(s, 6);
    expect(zOfScore(0.5)).toBeCloseTo(4.4172, 3);
  });

  it('has an accurate normal quantile and tail', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 6);
    expect(normalQuantile(1e-10)).toBeCloseTo(-6.361341, 5);
    expect(twoSidedP(1.959964)).toBeCloseTo(0.05, 6);
  });
});

describe('robust_z', () => {
  const d = DETECTORS.get('robust_z')!.create({ ...PARAMS, window: 5 });

  it('scores against the median and 1.4826 MAD of the window, with the band at the threshold', () => {
    const out = run(d, [10, 12, 11, 9, 13, 11 + 1.4826 * 2 * 3], 2);
    // window 10, 12, 11, 9, 13: median 11, MAD 1 (robust sd 1.4826); the last value is 6 robust sd away.
    const last = out[5]!;
    expect(last.expected).toBe(11);
    expect(last.lower).toBeCloseTo(11 - 2 * 1.4826, 9);
    expect(last.upper).toBeCloseTo(11 + 2 * 1.4826, 9);
    expect(last.score).toBeCloseTo(zScore(6), 9);
  });

  it('a value inside a mostly constant window is not anomalous; a change of a constant series is', () => {
    const out = run(d, [5, 5, 5, 5, 6, 5, 5]);
    expect(out[5]!.score).toBeLessThan(0.1);
    const flat = run(d, [5, 5, 5, 5, 5, 7]);
    expect(flat[5]!.score).toBe(1);
  });
});

describe('ewma', () => {
  it('learns the mean and spread of a stationary series and scores a 10-sigma spike far above its noise', () => {
    const rnd = prng(3);
    const values = Array.from({ length: 2000 }, () => 100 + 5 * gaussian(rnd));
    const out = run(DETECTORS.get('ewma')!.create({ ...PARAMS, halfLife: 200 }), [...values, 150]);
    const last = out[out.length - 1]!;
    expect(last.expected!).toBeCloseTo(100, 0);
    expect((last.upper! - last.expected!) / 4.4).toBeCloseTo(5, 0);
    expect(last.score).toBeGreaterThan(0.9);
    const noise = out.slice(100, 2000).map((a) => a.score);
    // About 1 in 1000 normal values scores above 0.3.
    expect(noise.filter((s) => s >= 0.3).length).toBeLessThan(10);
  });

  it('clips its update, so one huge spike does not hide the next', () => {
    const rnd = prng(5);
    const base = Array.from({ length: 500 }, () => 10 + gaussian(rnd));
    const out = run(DETECTORS.get('ewma')!.create(PARAMS), [...base, 10_000, 10, 10, 10, 20]);
    expect(out[out.length - 1]!.score).toBeGreaterThan(0.5);
  });
});

describe('seasonal', () => {
  const rnd = prng(11);
  const day = (i: number) => 50 + 20 * Math.sin((2 * Math.PI * i) / 48) + 8 * Math.sin((4 * Math.PI * i) / 48);
  const values = Array.from({ length: 48 * 20 }, (_, i) => day(i) + gaussian(rnd));

  it('finds the season of the warm-up values by autocorrelation, and none in noise', () => {
    expect(findPeriod(values.slice(0, 48 * 6), 144)).toBe(48);
    const noise = Array.from({ length: 300 }, () => gaussian(rnd));
    expect(findPeriod(noise, 150)).toBe(1);
  });

  it('forecasts the season and flags a value that is normal for the series but not for its phase', () => {
    const det = DETECTORS.get('seasonal')!.create({ ...PARAMS, warmup: 48 * 6 });
    const s = det.init();
    const out = values.map((x) => det.step(s, x, 4.4));
    expect((s as { period: number }).period).toBe(48);
    const late = out.slice(48 * 10);
    expect(Math.max(...late.map((a) => Math.abs(a.expected! - (values[out.indexOf(a)] ?? 0))))).toBeLessThan(6);
    expect(late.filter((a) => a.score >= 0.5)).toHaveLength(0);
    // 70 is within the daily range, but at the phase where the series is near its low (about 34).
    const i = values.length;
    const low = day(i + 36);
    expect(low).toBeLessThan(40);
    for (let k = 0; k < 36; k++) det.step(s, day(i + k), 4.4);
    expect(det.step(s, 70, 4.4).score).toBeGreaterThan(0.9);
  });

  it('with a given season, starts after two seasons of warm-up', () => {
    const det = DETECTORS.get('seasonal')!.create({ ...PARAMS, warmup: 10, season: 48 });
    const out = run(det, values.slice(0, 100));
    expect(out.slice(0, 96).every((a) => a.expected === null)).toBe(true);
    expect(out[97]!.expected).not.toBeNull();
  });
});

describe('novelty', () => {
  const det = DETECTORS.get('novelty')!.create(PARAMS);
  const rnd = prng(17);
  // A repeating pattern with noise; then one period whose shape is new.
  const pattern = (i: number) => 10 * Math.sin((2 * Math.PI * i) / 64) + gaussian(rnd) * 0.3;

  it('scores a new shape at or above 0.5 where it starts, and the familiar pattern below', () => {
    const values = Array.from({ length: 4000 }, (_, i) => pattern(i));
    for (let i = 3000; i < 3064; i++) values[i] = 10 * Math.sin((2 * Math.PI * i) / 16);
    const out = run(det, values);
    const hits = out.flatMap((a, i) => (a.score >= 0.5 ? [i] : []));
    expect(hits.length).toBeGreaterThan(0);
    expect(hits[0]!).toBeGreaterThanOrEqual(3000);
    expect(hits[0]!).toBeLessThan(3064);
    // Reported where it starts: nothing more in the 80 values after it.
    expect(hits.filter((i) => i > hits[0]! && i <= hits[0]! + 80)).toEqual([]);
    // Shapes are assessed once per block of 4 values (and no value here is past the range).
    expect(out.filter((a, i) => i % 4 !== 3 && a.score > 0)).toEqual([]);
  });

  it('scores a value past the whole range seen by more than 5 % of it at once, on any value, then rests 50 values', () => {
    const values = Array.from({ length: 1000 }, (_, i) => pattern(i));
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const width = hi - lo;
    const s = det.init();
    for (const x of values) det.step(s, x, 4.4);
    // 1000 values: the next is the second of a block, so only the range can score it.
    expect(det.step(s, hi + 0.03 * width, 4.4).score).toBeLessThan(0.5);
    const past = det.step(s, lo - 0.2 * width, 4.4).score;
    expect(past).toBeGreaterThanOrEqual(0.5);
    // 0.2 past the range is 4 margins: u / (1 + u) with u = 4.
    expect(past).toBeCloseTo(0.8, 2);
    // The range now reaches that value; another extreme within 50 values is not reported again...
    const newLo = lo - 0.2 * width;
    const soon = det.step(s, newLo - 0.5 * width, 4.4).score;
    expect(soon).toBe(0);
    // ...but after 50 values inside the margin, it is.
    for (let i = 0; i < 51; i++) det.step(s, pattern(i), 4.4);
    expect(det.step(s, hi + 0.5 * (hi - (newLo - 0.5 * width)), 4.4).score).toBeGreaterThan(0.5);
  });

  it('does not let one huge anomaly hide a smaller one after it', () => {
    // Noise around 10; a spike of +100, then 400 values later one of +12 (12 sd, but far inside the range the
    // first one opened). Before the maximum's rise was bounded, the first spike raised it so far that the second
    // scored 0.1.
    const noise = prng(3);
    const values = Array.from({ length: 3000 }, () => 10 + gaussian(noise));
    values[2001] = values[2001]! + 100;
    values[2401] = values[2401]! + 12;
    const out = run(det, values);
    expect(out[2001]!.score).toBeGreaterThanOrEqual(0.5);
    expect(Math.max(...out.slice(2401, 2405).map((a) => a.score))).toBeGreaterThanOrEqual(0.5);
  });

  it('is rarely surprised by the noise of a long stationary series', () => {
    // Before the long-run floor and the ageing memory, 30 to 37 of these 10,000 values scored 0.5 or more (now 13 to 20).
    for (const seed of [1, 2, 3]) {
      const noise = prng(seed);
      const values = Array.from({ length: 20_000 }, () => 50 + 3 * gaussian(noise));
      const out = run(det, values);
      const alerts = (from: number, to: number) => out.slice(from, to).filter((a) => a.score >= 0.5).length;
      expect(alerts(10_000, 20_000)).toBeLessThan(25);
    }
  });

  it('restores state written before the range and the long-run mean were kept (Avro resolution), starting those afresh', () => {
    const fields = (det.state as { fields: Array<{ name: string }> }).fields;
    const before = { ...(det.state as object), fields: fields.filter((f) => !['mean', 'lo', 'hi', 'values', 'extreme'].includes(f.name)) };
    const oldType = avro.Type.forSchema(before as avro.Schema);
    const newType = avro.Type.forSchema(det.state as avro.Schema);
    const s = det.init();
    for (let i = 0; i < 600; i++) det.step(s, pattern(i), 4.4);
    const { mean: _m, lo: _l, hi: _h, values: _v, extreme: _e, ...old } = det.toAvro!(s) as Record<string, unknown>;
    const bytes = oldType.toBuffer(old);
    const restored = det.fromAvro!(newType.fromBuffer(bytes, newType.createResolver(oldType))) as { t: number; values: number; mean: number };
    expect(restored.values).toBe(0);
    expect(restored.mean).toBe(0);
    expect(restored.t).toBe((s as { t: number }).t);
    // It goes on scoring; extremes only after 150 new values.
    const after = Array.from({ length: 200 }, (_, i) => det.step(restored, pattern(600 + i), 4.4));
    expect(after.every((a) => Number.isFinite(a.score) && a.score >= 0 && a.score <= 1)).toBe(true);
    expect(det.step(restored, 1000, 4.4).score).toBeGreaterThan(0.9);
  });

  it('expects what followed the nearest earlier stretch', () => {
    const values = Array.from({ length: 1200 }, (_, i) => (i % 32 < 16 ? 1 : 5));
    const out = run(det, values);
    const a = out[1199]!;
    expect(a.expected).toBe(values[1199]);
  });
});

describe('every detector', () => {
  for (const [name, kind] of DETECTORS) {
    it(`${name}: its state goes through Avro mid-stream without changing any later score`, () => {
      const rnd = prng(23);
      const values = Array.from({ length: 1500 }, (_, i) => 20 + 5 * Math.sin(i / 10) + gaussian(rnd) + (i === 1300 ? 40 : 0));
      const params = { ...PARAMS, warmup: 200 };
      const d = kind.create(params);
      const type = avro.Type.forSchema(d.state as avro.Schema);
      const straight = run(d, values);
      let s = d.init();
      const resumed = values.map((x, i) => {
        if (i === 700 || i === 1299) {
          const bytes = type.toBuffer(d.toAvro ? d.toAvro(s) : s);
          const back = type.fromBuffer(bytes);
          s = d.fromAvro ? d.fromAvro(back) : back;
        }
        return d.step(s, x, 4.4);
      });
      expect(resumed).toEqual(straight);
    });
  }
});
