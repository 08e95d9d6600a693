// predict: the linear fit gives Prometheus' predict_linear numbers (its own test vectors, and a
// from-scratch port of its linearRegression on random series), the other fits follow their curves,
// crossings and breaches, and a restart resumes with the same numbers.
import { describe, expect, it } from 'vitest';
import { prng } from '../../connectors/telemetry-generator.ts';
import { linearRegression } from '../../operators/lib/regression.ts';
import { formatEta } from '../../operators/predict.ts';
import { operatorRegistry } from '../../operators/registry.ts';
import { TestDriver } from '../../runtime/test-driver.ts';
import { parseTopology } from '../../topology/loader.ts';
import { planTopology } from '../../topology/plan.ts';

function driver(predict: string): TestDriver {
  const yaml = `version: 1
name: predict-test
sources:
  - { name: metrics, topic: m, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp }
operators:
  - name: trend
    type: predict
    value: value
${predict
  .trim()
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
sinks:
  - { name: out, from: trend, topic: out }
  - { name: breaches, from: trend.breaches, topic: breaches }
`;
  return new TestDriver(planTopology(parseTopology(yaml, 'predict.yaml', { operators: operatorRegistry })));
}

const sample = (t: number, value: number, host = 'h') => ({ timestamp: t, name: 'disk', host, value, unit: null, tags: {} });

function feed(d: TestDriver, points: Array<[number, number]>, host = 'h') {
  for (const [t, v] of points) d.pipe('metrics', sample(t, v, host), { key: host, timestamp: t });
  return d.output('out').map((r) => r.value as Record<string, any>);
}

/** Relative difference, for numbers that may be large. */
const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

describe('predict, linear: Prometheus predict_linear', () => {
  // promql/promqltest/testdata/functions.test: testcounter_reset_middle_total, one sample per 5 minutes.
  const Y = [0, 10, 20, 30, 40, 0, 10, 20, 30, 40, 50];
  const points = Y.map((y, i): [number, number] => [i * 300_000, y]);

  it('predict_linear(testcounter_reset_middle_total[50m], 3600) at 50m is 70 (the range leaves out its left end)', () => {
    const out = feed(driver('window: 50m\nhorizon: 1h'), points);
    expect(out[10]!.predicted).toBeCloseTo(70, 12);
    expect(out[10]!.points).toBe(10);
  });

  it('predict_linear(testcounter_reset_middle_total[55m] @ 3000, 3600) is 76.81818181818181', () => {
    const out = feed(driver('window: 55m\nhorizon: 1h'), points);
    expect(close(out[10]!.predicted, 76.81818181818181)).toBe(true);
    expect(close(out[10]!.slope, 0.010606060606060607)).toBe(true);
  });

  it('its linearRegression at other evaluation times: 51.36363636363637 at 10m, 89.54545454545455 at 70m', () => {
    const times = points.map((p) => p[0]);
    for (const [at, want] of [
      [600_000, 51.36363636363637],
      [4_200_000, 89.54545454545455],
    ] as const) {
      const l = linearRegression(times, Y, at);
      expect(close(l.intercept + l.slope * 3600, want)).toBe(true);
    }
  });

  it('a window of equal values has slope 0 and predicts the value exactly (sums alone would leave rounding)', () => {
    const out = feed(driver('points: 5\nhorizon: 1h'), [0, 1, 2, 3, 4, 5].map((i) => [i * 1000, 7.5]));
    expect(out[5]).toMatchObject({ predicted: 7.5, slope: 0, fit_error: 0, points: 5 });
    const times = [1_700_000_001_300, 1_700_000_007_900, 1_700_000_011_100, 1_700_000_023_700, 1_700_000_024_100, 1_700_000_031_900, 1_700_000_040_300];
    const odd = feed(driver('points: 6\nhorizon: 1h'), times.map((t, i): [number, number] => [t, i === 0 ? 5 : 0.1]));
    expect(odd[6]).toMatchObject({ predicted: 0.1, slope: 0 });
  });

  for (const [label, config, windowMs, count] of [
    ['a count window of 50 points', 'points: 50', undefined, 50],
    ['a 10-minute time window', 'window: 10m\nmax_points: 10000', 600_000, undefined],
  ] as const) {
    it(`equals linearRegression from scratch within 1e-9 on a long random series, ${label}`, () => {
      const rnd = prng(31);
      const pts: Array<[number, number]> = [];
      let t = 1_700_000_000_000;
      for (let i = 0; i < 3000; i++) {
        t += 1000 + Math.floor(rnd() * 20_000);
        // A drifting level with noise, large values (bytes), and runs of equal values.
        const v = i % 400 < 30 ? 5e9 : 5e9 + i * 1e5 + rnd() * 1e7;
        pts.push([t, v]);
      }
      const out = feed(driver(`${config}\nhorizon: 30m`), pts);
      let compared = 0;
      for (let i = 0; i < pts.length; i++) {
        const now = pts[i]![0];
        const win = pts.slice(0, i + 1).filter(([pt], k) => (windowMs !== undefined ? pt > now - windowMs : k > i - count!));
        if (win.length < 3) {
          expect(out[i]!.predicted).toBeNull();
          continue;
        }
        const l = linearRegression(
          win.map((p) => p[0]),
          win.map((p) => p[1]),
          now,
        );
        expect(close(out[i]!.predicted, l.intercept + l.slope * 1800), `record ${i}: ${out[i]!.predicted} vs ${l.intercept + l.slope * 1800}`).toBe(true);
        compared++;
      }
      expect(compared).toBeGreaterThan(2900);
    });
  }
});

describe('predict, other fits', () => {
  it('polynomial: a quadratic series is predicted exactly, with its slope', () => {
    const out = feed(driver('fit: polynomial\ndegree: 2\npoints: 20\nhorizon: 10s'), Array.from({ length: 20 }, (_, i): [number, number] => [i * 1000, 3 + 2 * i + 0.5 * i * i]));
    const x = 19 + 10;
    expect(out[19]!.predicted).toBeCloseTo(3 + 2 * x + 0.5 * x * x, 6);
    expect(out[19]!.slope).toBeCloseTo(2 + 19, 6);
    expect(out[19]!.fit_error).toBeCloseTo(0, 6);
  });

  it('exponential: a doubling series is followed; non-positive values give no fit', () => {
    const out = feed(driver('fit: exponential\npoints: 10\nhorizon: 2s'), Array.from({ length: 10 }, (_, i): [number, number] => [i * 1000, 2 ** i]));
    expect(out[9]!.predicted).toBeCloseTo(2 ** 11, 6);
    const zero = feed(driver('fit: exponential\npoints: 10\nhorizon: 2s'), [[0, 1], [1000, 0], [2000, 2]]);
    expect(zero[2]!.predicted).toBeNull();
  });

  it('robust: one wild value does not bend the line, where least squares bends', () => {
    const pts = Array.from({ length: 21 }, (_, i): [number, number] => [i * 1000, i === 10 ? 1000 : 2 * i]);
    const robust = feed(driver('fit: robust\npoints: 21\nhorizon: 0s'), pts);
    const linear = feed(driver('fit: linear\npoints: 21\nhorizon: 0s'), pts);
    expect(robust[20]!.predicted).toBeCloseTo(40, 9);
    expect(Math.abs(linear[20]!.predicted - 40)).toBeGreaterThan(1);
  });
});

describe('predict, thresholds', () => {
  it('says when a filling disk reaches 100, in time and in words, and sends it to breaches within 6 h', () => {
    // 1 % per 10 minutes from 40 %: 100 % is 600 minutes after 0, i.e. 510 min after the record at 90 min.
    const d = driver('window: 1h\nhorizon: 1h\nthreshold: 100\nwithin: 6h');
    const out = feed(d, Array.from({ length: 10 }, (_, i): [number, number] => [i * 600_000, 40 + i]));
    const last = out[9]!;
    expect(last.crosses_at).toBe(600 * 60_000);
    expect(last.eta_ms).toBe(510 * 60_000);
    expect(last.eta).toBe('8 h 30 min');
    expect(d.output('breaches')).toEqual([]);
    // Faster: 5 % per 10 minutes from here on.
    const more = feed(d, Array.from({ length: 6 }, (_, i): [number, number] => [(10 + i) * 600_000, 50 + 5 * (i + 1)]));
    const breach = d.output('breaches').map((r) => r.value as Record<string, any>);
    expect(breach.length).toBeGreaterThan(0);
    expect(breach[breach.length - 1]!.eta_ms).toBeLessThanOrEqual(6 * 3_600_000);
    expect(more[more.length - 1]!.eta).toMatch(/^\d+ h( \d+ min)?$|^\d+ min$/);
  });

  it('a falling free-space series crosses 0 going down; a flat one never crosses', () => {
    const falling = feed(driver('points: 5\nthreshold: 0'), Array.from({ length: 5 }, (_, i): [number, number] => [i * 60_000, 100 - 10 * i]));
    expect(falling[4]!.eta_ms).toBe(6 * 60_000);
    const flat = feed(driver('points: 5\nthreshold: 0'), Array.from({ length: 5 }, (_, i): [number, number] => [i * 60_000, 100]));
    expect(flat[4]).toMatchObject({ crosses_at: null, eta_ms: null, eta: null });
  });

  it('formats times to the two largest units', () => {
    expect([500, 30_000, 45 * 60_000, 3 * 3_600_000 + 10 * 60_000 + 5000, 2 * 86_400_000 + 4 * 3_600_000 + 59 * 60_000].map(formatEta)).toEqual(['500 ms', '30 s', '45 min', '3 h 10 min', '2 d 4 h']);
  });
});

describe('predict, state', () => {
  it('after a restart resumes with the same numbers as an uninterrupted run', () => {
    const rnd = prng(7);
    const pts = Array.from({ length: 400 }, (_, i): [number, number] => [i * 10_000, 1e6 + i * 37 + rnd() * 500]);
    for (const config of ['points: 64', 'window: 15m', 'fit: polynomial\npoints: 30', 'fit: robust\npoints: 30']) {
      const straight = feed(driver(`${config}\nthreshold: 1000000000`), pts);
      const d = driver(`${config}\nthreshold: 1000000000`);
      feed(d, pts.slice(0, 150));
      d.restart();
      feed(d, pts.slice(150, 333));
      d.restart();
      const resumed = feed(d, pts.slice(333));
      expect(resumed, config).toEqual(straight);
    }
  });
});
