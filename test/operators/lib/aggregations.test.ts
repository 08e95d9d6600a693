import { describe, expect, it } from 'vitest';
import { addToStates, compileAggregations, initStates, mergeStates } from '../../../operators/lib/aggregations.ts';
import type { AggregationDef, CompiledAggregations } from '../../../operators/lib/aggregations.ts';

type Row = { ts: number; v: unknown };

/** Feeds rows (each slot reads `v`, count-without-field gets `true`) and returns the outputs. */
function run(c: CompiledAggregations, rows: Row[]): Record<string, unknown> {
  return results(c, feed(c, rows));
}

function feed(c: CompiledAggregations, rows: Row[]): unknown[] {
  const st = initStates(c);
  const vals = new Array<unknown>(c.slots.length);
  for (const r of rows) {
    for (let i = 0; i < c.slots.length; i++) vals[i] = c.slots[i]!.field === undefined ? true : r.v;
    addToStates(c, st, vals, r.ts);
  }
  return st;
}

function results(c: CompiledAggregations, st: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of c.outputs) out[o.name] = o.result(st[o.slot]);
  return out;
}

const ALL: Record<string, AggregationDef> = {
  n: { fn: 'count' },
  nv: { fn: 'count', field: 'v' },
  sum: { fn: 'sum', field: 'v' },
  min: { fn: 'min', field: 'v' },
  max: { fn: 'max', field: 'v' },
  mean: { fn: 'mean', field: 'v' },
  sd: { fn: 'stddev', field: 'v' },
  first: { fn: 'first', field: 'v' },
  last: { fn: 'last', field: 'v' },
  p50: { fn: 'percentile', field: 'v', p: 0.5 },
  p0: { fn: 'percentile', field: 'v', p: 0 },
  p100: { fn: 'percentile', field: 'v', p: 1 },
};

const rowsOf = (values: unknown[]): Row[] => values.map((v, i) => ({ ts: 1000 + i, v }));

describe('aggregate functions', () => {
  it('computes every function on known inputs', () => {
    const c = compileAggregations(ALL);
    const out = run(c, rowsOf([2, 4, 4, 4, 5, 5, 7, 9]));
    expect(out).toMatchObject({ n: 8, nv: 8, sum: 40, min: 2, max: 9, mean: 5, sd: 2, first: 2, last: 9, p0: 2, p100: 9 });
    expect(Math.abs((out.p50 as number) - 4)).toBeLessThanOrEqual(0.04); // rank floor(0.5 * 7) = 3 -> 4
  });

  it('gives empty results for an empty window', () => {
    const c = compileAggregations(ALL);
    expect(results(c, initStates(c))).toEqual({ n: 0, nv: 0, sum: 0, min: null, max: null, mean: null, sd: null, first: null, last: null, p50: null, p0: null, p100: null });
  });

  it('ignores null, NaN and infinite values; count without a field counts records', () => {
    const c = compileAggregations(ALL);
    const out = run(c, rowsOf([null, 3, Number.NaN, 1, Number.POSITIVE_INFINITY, undefined, Number.NEGATIVE_INFINITY]));
    expect(out).toMatchObject({ n: 7, nv: 2, sum: 4, min: 1, max: 3, mean: 2, sd: 1, first: 3, last: 1, p0: 1, p100: 3 });
    expect(run(c, rowsOf([null, null]))).toMatchObject({ n: 2, nv: 0, sum: 0, min: null, mean: null, sd: null, first: null, p50: null });
  });

  it('stddev is the population standard deviation and stays accurate with a large offset', () => {
    const c = compileAggregations({ sd: { fn: 'stddev', field: 'v' }, mean: { fn: 'mean', field: 'v' } });
    expect(run(c, rowsOf([1, 2, 3, 4])).sd).toBeCloseTo(Math.sqrt(1.25), 15);
    expect(run(c, rowsOf([5])).sd).toBe(0);
    // The naive sum-of-squares formula loses everything here; Welford keeps it.
    const big = [1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16];
    expect(run(c, rowsOf(big)).sd).toBeCloseTo(Math.sqrt(22.5), 6);
  });

  it('first and last go by event time, ties by arrival, whatever the arrival order', () => {
    const c = compileAggregations({ first: { fn: 'first', field: 'v' }, last: { fn: 'last', field: 'v' } });
    const rows: Row[] = [
      { ts: 50, v: 'c' },
      { ts: 10, v: 'a' },
      { ts: 90, v: 'x' },
      { ts: 10, v: 'b' }, // same time as 'a', later: not first
      { ts: 90, v: 'y' }, // same time as 'x', later: last
      { ts: 20, v: null }, // ignored
      { ts: 95, v: null }, // ignored
    ];
    expect(run(c, rows)).toEqual({ first: 'a', last: 'y' });
  });

  it('first and last keep the field type (strings, booleans, ints)', () => {
    const c = compileAggregations({ first: { fn: 'first', field: 'v' }, last: { fn: 'last', field: 'v' } });
    expect(run(c, rowsOf([true, false]))).toEqual({ first: true, last: false });
    expect(run(c, rowsOf([7, 8, 9]))).toEqual({ first: 7, last: 9 });
  });

  it('shares one state between functions reading the same thing', () => {
    const c = compileAggregations({
      p50: { fn: 'percentile', field: 'v', p: 0.5 },
      p99: { fn: 'percentile', field: 'v', p: 0.99 },
      p99fine: { fn: 'percentile', field: 'v', p: 0.99, accuracy: 0.001 },
      n: { fn: 'count' },
      n2: { fn: 'count' },
      w: { fn: 'percentile', field: 'w', p: 0.5 },
    });
    expect(c.slots.map((s) => s.id)).toEqual(['sketch:0.01:v', 'sketch:0.001:v', 'count', 'sketch:0.01:w']);
    expect(c.outputs.map((o) => o.slot)).toEqual([0, 0, 1, 2, 2, 3]);
  });

  it('merging split inputs gives the same results as one pass (every split point)', () => {
    const c = compileAggregations(ALL);
    const values = [3.5, -2, null, 8, 8, 0, 11.25, -7, 4, Number.NaN, 6];
    // Distinct, increasing times: no first/last ties across the parts (as in sessions and panes).
    const rows = rowsOf(values);
    const whole = run(c, rows);
    for (let k = 0; k <= rows.length; k++) {
      const a = feed(c, rows.slice(0, k));
      const b = feed(c, rows.slice(k));
      const merged = initStates(c);
      mergeStates(c, merged, a);
      mergeStates(c, merged, b);
      const out = results(c, merged);
      for (const [name, want] of Object.entries(whole)) {
        if (typeof want === 'number') expect(out[name] as number, `${name} split at ${k}`).toBeCloseTo(want, 12);
        else expect(out[name], `${name} split at ${k}`).toEqual(want);
      }
      // Merging in the other order too (later part first).
      const rev = initStates(c);
      mergeStates(c, rev, b);
      mergeStates(c, rev, a);
      expect(results(c, rev).first).toEqual(whole.first);
      expect(results(c, rev).last).toEqual(whole.last);
    }
  });

  it('merge leaves the merged-in states untouched', () => {
    const c = compileAggregations(ALL);
    const b = feed(c, rowsOf([1, 2, 3]));
    const before = JSON.stringify(b);
    const a = initStates(c);
    mergeStates(c, a, b);
    const vals = new Array<unknown>(c.slots.length).fill(-100);
    addToStates(c, a, vals, 0); // earlier than all of b: changes first, min...
    addToStates(c, a, vals.fill(100), 10_000);
    expect(JSON.stringify(b)).toBe(before);
  });

  it('states are plain JSON: a round trip mid-way changes nothing', () => {
    const c = compileAggregations(ALL);
    const rows = rowsOf([5, 1, -3, 8, 2.5, 9, 0]);
    const direct = feed(c, rows);
    const half = JSON.parse(JSON.stringify(feed(c, rows.slice(0, 3)))) as unknown[];
    const vals = new Array<unknown>(c.slots.length);
    for (const r of rows.slice(3)) {
      for (let i = 0; i < c.slots.length; i++) vals[i] = c.slots[i]!.field === undefined ? true : r.v;
      addToStates(c, half, vals, r.ts);
    }
    expect(half).toEqual(JSON.parse(JSON.stringify(direct)));
    expect(results(c, half)).toEqual(results(c, direct));
  });
});
