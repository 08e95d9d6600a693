import { describe, expect, it } from 'vitest';
import sketches from '@datadog/sketches-js';
import { QuantileSketch } from '../../../operators/lib/quantile-sketch.ts';
import type { SketchState } from '../../../operators/lib/quantile-sketch.ts';
import { prng } from '../../../connectors/telemetry-generator.ts';

const { DDSketch } = sketches;

/** Value of rank floor(q * (n - 1)) of the sorted values. */
function exact(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(q * (sorted.length - 1))]!;
}


const QS = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

function expectWithin(s: QuantileSketch, st: SketchState, values: number[], accuracy: number): void {
  for (const q of QS) {
    const want = exact(values, q);
    const got = s.quantile(st, q)!;
    expect(Math.abs(got - want), `q=${q}: got ${got}, want ${want}`).toBeLessThanOrEqual(accuracy * Math.abs(want) + 1e-12);
  }
}

describe('QuantileSketch', () => {
  it('is empty until a value is added', () => {
    const s = new QuantileSketch();
    expect(s.quantile(s.init(), 0.5)).toBeNull();
  });

  it('estimates quantiles of positive, negative and zero values within the relative accuracy', () => {
    const rnd = prng(7);
    for (const accuracy of [0.01, 0.02, 0.001]) {
      const s = new QuantileSketch(accuracy);
      const st = s.init();
      const values: number[] = [];
      for (let i = 0; i < 5000; i++) {
        const r = rnd();
        const v = r < 0.05 ? 0 : r < 0.3 ? -Math.exp(rnd() * 10) : Math.exp(rnd() * 12 - 3);
        values.push(v);
        s.add(st, v);
      }
      expect(st.n).toBe(5000);
      expectWithin(s, st, values, accuracy);
      expect(s.quantile(st, 0)).toBe(Math.min(...values));
      expect(s.quantile(st, 1)).toBe(Math.max(...values));
    }
  });

  it('gives the quantiles of the library DDSketch (clamped to min and max) on positive values', () => {
    const rnd = prng(3);
    const s = new QuantileSketch(0.01);
    const st = s.init();
    const lib = new DDSketch({ relativeAccuracy: 0.01 });
    for (let i = 0; i < 2000; i++) {
      const v = 1 + rnd() * 1000;
      s.add(st, v);
      lib.accept(v);
    }
    expect(s.quantile(st, 0)).toBe(st.lo);
    expect(s.quantile(st, 1)).toBe(st.hi);
    for (const q of QS.slice(1, -1)) {
      const l = Math.min(Math.max(lib.getValueAtQuantile(q), st.lo!), st.hi!);
      expect(s.quantile(st, q)).toBeCloseTo(l, 9);
    }
  });

  it('merges exactly: a merged sketch equals one built from all values, negatives included', () => {
    const rnd = prng(11);
    const s = new QuantileSketch(0.01);
    const all = s.init();
    const parts = [s.init(), s.init(), s.init()];
    const values: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const v = (rnd() - 0.4) * 200;
      values.push(v);
      s.add(all, v);
      s.add(parts[i % 3]!, v);
    }
    const merged = s.init();
    for (const p of parts) s.merge(merged, p);
    expect(JSON.parse(JSON.stringify(merged))).toEqual(JSON.parse(JSON.stringify(all)));
    expectWithin(s, merged, values, 0.01);
  });

  it('does not share the merged-in sketch', () => {
    const s = new QuantileSketch();
    const a = s.init();
    const b = s.add(s.init(), 5);
    s.merge(a, b);
    s.add(a, 5);
    s.add(a, 500);
    expect(b.n).toBe(1);
    expect(b.pb).toBe(1);
    expect(Object.values(b.p)).toEqual([1]);
  });

  it('survives a JSON round trip', () => {
    const s = new QuantileSketch();
    const st = s.init();
    for (const v of [3, -2, 0, 7.5, 1e6, -1e-3]) s.add(st, v);
    const back = JSON.parse(JSON.stringify(st)) as SketchState;
    for (const q of QS) expect(s.quantile(back, q)).toBe(s.quantile(st, q));
    s.add(back, 42);
    s.add(st, 42);
    expect(back).toEqual(st);
  });

  it('keeps few values in a small state, whatever their spread', () => {
    const s = new QuantileSketch();
    const st = s.init();
    for (const v of [0.001, 0.5, 3, 70, 1e6, -2e-4, -9e5]) s.add(st, v);
    expect(JSON.stringify(st).length).toBeLessThan(150);
  });

  it('bounds its bins by collapsing the lowest ones, keeping upper quantiles accurate', () => {
    const rnd = prng(5);
    const s = new QuantileSketch(0.01, 256);
    const st = s.init();
    const values: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const v = Math.exp(rnd() * Math.log(1e6)); // 1 .. 1e6, ~700 buckets at 1%
      values.push(v);
      s.add(st, v);
    }
    expect(st.pb).toBe(256);
    expect(Object.keys(st.p)).toHaveLength(256);
    expect(Object.values(st.p).reduce((a, b) => a + b, 0)).toBe(values.length);
    // 256 buckets cover a ratio of ~170 below the max: quantiles above ~0.63 stay accurate.
    for (const q of [0.7, 0.9, 0.99, 1]) {
      const want = exact(values, q);
      expect(Math.abs(s.quantile(st, q)! - want)).toBeLessThanOrEqual(0.01 * want);
    }
    // Below, values were folded into the lowest kept bucket: estimates err upwards.
    expect(s.quantile(st, 0.3)!).toBeGreaterThan(exact(values, 0.3));
  });

  it('keeps 18 decades per sign by default', () => {
    expect(new QuantileSketch(0.01).maxBins).toBe(2073);
    expect(new QuantileSketch(0.001).maxBins).toBeGreaterThan(20_000);
  });

  it('refuses an accuracy outside (0, 1)', () => {
    expect(() => new QuantileSketch(0)).toThrow(RangeError);
    expect(() => new QuantileSketch(1)).toThrow(RangeError);
  });
});
