// Property-style test of `aggregate`: random telemetry (seeded; random groups, out of order within
// the source's bound, some records later than that) through tumbling, hopping, sliding and session
// windows on the TestDriver, checked window by window against a reference computed here, from the
// raw records, by a direct reading of the documented semantics:
//
// - wm(i), the watermark record i is handled with, is max(event time of records 0..i-1) - max_out_of_order.
// - A record contributes to a window that contains it iff wm(i) < window end + grace at its arrival.
// - Fixed windows: [k * advance, k * advance + size) containing the record; late iff it contributes to none.
// - Sliding: the window of time t exists iff some record at t arrives while it is open; it holds the
//   group's records in (t - size, t] that arrived while it was open; a record is late iff
//   wm(i) >= t + size + grace.
// - Sessions: simulated on raw record lists in arrival order (touching open sessions merge; late when
//   touching none and [t, t + gap) is closed); a session closes when the watermark reaches end + grace.
// - Emitted: exactly the windows closed by the final watermark.
import { describe, expect, it } from 'vitest';
import type { StreamRecord } from '../../kernel/operator.ts';
import { TestDriver } from '../../runtime/test-driver.ts';
import { aggregatePlan } from './aggregate-fixtures.ts';
import type { Sample } from './aggregate-fixtures.ts';
import { prng as mulberry32 } from '../../connectors/telemetry-generator.ts';

const MAX_OOO = 2000;
const GRACE = 1000;
const ACCURACY = 0.01;
const RECORDS = 2500;
const SEEDS = [1, 42, 20240611];

type WindowSpec =
  | { type: 'tumbling'; size: number }
  | { type: 'hopping'; size: number; advance: number }
  | { type: 'sliding'; size: number }
  | { type: 'session'; gap: number };

const WINDOWS: WindowSpec[] = [
  { type: 'tumbling', size: 5000 },
  { type: 'hopping', size: 6000, advance: 2000 },
  { type: 'sliding', size: 3000 },
  { type: 'session', gap: 3000 },
];

const AGGREGATIONS = {
  n: { fn: 'count' },
  n_lat: { fn: 'count', field: 'lat' },
  total: { fn: 'sum', field: 'value' },
  lo: { fn: 'min', field: 'value' },
  hi: { fn: 'max', field: 'value' },
  avg: { fn: 'mean', field: 'value' },
  sd: { fn: 'stddev', field: 'value' },
  sd_lat: { fn: 'stddev', field: 'lat' },
  first_status: { fn: 'first', field: 'status' },
  last_status: { fn: 'last', field: 'status' },
  last_value: { fn: 'last', field: 'value' },
  p50: { fn: 'percentile', field: 'value', p: 0.5 },
  p99: { fn: 'percentile', field: 'value', p: 0.99 },
};


function telemetry(seed: number, n: number): Sample[] {
  const rnd = mulberry32(seed);
  const hosts = ['web-1', 'web-2', 'db-1', 'db-2', 'cache', 'edge'];
  const names = ['cpu', 'mem'];
  const statuses = ['ok', 'warn', 'err'];
  const out: Sample[] = [];
  let now = 1_700_000_000_000;
  let max = now;
  for (let i = 0; i < n; i++) {
    now += Math.floor(rnd() * 5) * 100; // coarse steps: many equal event times
    if (rnd() < 0.01) now += 8000; // quiet spells end sessions
    let ts = now - Math.floor(rnd() * (MAX_OOO + 1) / 50) * 50; // out of order within the bound
    const r = rnd();
    if (r < 0.04) {
      ts = now - MAX_OOO - Math.floor(rnd() * 12_000); // beyond the bound: late for some windows
    } else if (r < 0.07) {
      // Probes 1 ms around the closing boundaries of sliding windows and sessions (size = gap = 3s):
      // the watermark this record sees is max - MAX_OOO.
      const d = rnd() < 0.5 ? GRACE + 1 : 3000 + GRACE;
      ts = max - MAX_OOO - d + Math.floor(rnd() * 3) - 1;
    } else if (r < 0.1) {
      ts = Math.round(ts / 1000) * 1000 - Math.floor(rnd() * 2); // on and just before window edges
    }
    if (ts > max) max = ts;
    const value = rnd() < 0.1 ? -rnd() * 40 : rnd() < 0.05 ? 0 : Math.round(rnd() * 100_000) / 1000 + (rnd() < 0.02 ? 5000 : 0);
    out.push({
      timestamp: ts,
      host: hosts[Math.floor(rnd() * hosts.length)]!,
      name: names[Math.floor(rnd() * names.length)]!,
      value,
      lat: rnd() < 0.3 ? null : rnd() * 10,
      status: rnd() < 0.2 ? null : statuses[Math.floor(rnd() * statuses.length)]!,
      code: 0,
      tags: {},
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reference

interface Ref {
  host: string;
  name: string;
  start: number;
  end: number;
  /** Indexes of the contributing records, in arrival order. */
  recs: number[];
  /** Index of the record that created the window (from then on, each contribution is an update). */
  created: number;
}

interface Reference {
  windows: Ref[];
  late: Set<number>;
}

const groupOf = (r: Sample) => `${r.host}|${r.name}`;

function watermarks(input: Sample[]): { before: number[]; final: number } {
  const before: number[] = [];
  let max = Number.NEGATIVE_INFINITY;
  for (const r of input) {
    before.push(max - MAX_OOO);
    max = Math.max(max, r.timestamp);
  }
  return { before, final: max - MAX_OOO };
}

function reference(input: Sample[], w: WindowSpec): Reference {
  const { before, final } = watermarks(input);
  const late = new Set<number>();
  const windows = new Map<string, Ref>();
  const windowOf = (r: Sample, start: number, end: number): Ref => {
    const k = `${groupOf(r)}|${start}|${end}`;
    let ref = windows.get(k);
    if (!ref) windows.set(k, (ref = { host: r.host, name: r.name, start, end, recs: [], created: -1 }));
    return ref;
  };

  if (w.type === 'tumbling' || w.type === 'hopping') {
    const size = w.size;
    const advance = w.type === 'hopping' ? w.advance : w.size;
    input.forEach((r, i) => {
      let any = false;
      for (let k = Math.floor((r.timestamp - size) / advance); k <= Math.floor(r.timestamp / advance); k++) {
        const start = k * advance;
        if (!(start <= r.timestamp && r.timestamp < start + size)) continue;
        if (before[i]! >= start + size + GRACE) continue;
        const ref = windowOf(r, start, start + size);
        if (ref.created < 0) ref.created = i;
        ref.recs.push(i);
        any = true;
      }
      if (!any) late.add(i);
    });
  } else if (w.type === 'sliding') {
    const size = w.size;
    input.forEach((r, i) => {
      if (before[i]! >= r.timestamp + size + GRACE) late.add(i);
    });
    // Windows: one per (group, t) with a record at t arriving while the window was open.
    input.forEach((r, i) => {
      if (before[i]! < r.timestamp + 1 + GRACE) {
        const ref = windowOf(r, r.timestamp - size + 1, r.timestamp + 1);
        if (ref.created < 0) ref.created = i;
      }
    });
    for (const ref of windows.values()) {
      const t = ref.end - 1;
      input.forEach((r, j) => {
        if (r.host !== ref.host || r.name !== ref.name || late.has(j)) return;
        if (r.timestamp > t - size && r.timestamp <= t && before[j]! < t + 1 + GRACE) ref.recs.push(j);
      });
    }
  } else {
    const gap = w.gap;
    const open = new Map<string, Ref[]>();
    const closeUpTo = (wm: number) => {
      for (const [g, list] of open) {
        const keep: Ref[] = [];
        for (const s of list) {
          if (s.end + GRACE <= wm) windows.set(`${g}|${s.start}|${s.end}`, s);
          else keep.push(s);
        }
        open.set(g, keep);
      }
    };
    input.forEach((r, i) => {
      closeUpTo(before[i]!);
      const g = groupOf(r);
      const list = open.get(g) ?? [];
      const touching = list.filter((s) => s.start < r.timestamp + gap && r.timestamp < s.end);
      if (touching.length === 0 && r.timestamp + gap + GRACE <= before[i]!) {
        late.add(i);
        return;
      }
      const merged: Ref = {
        host: r.host,
        name: r.name,
        start: Math.min(r.timestamp, ...touching.map((s) => s.start)),
        end: Math.max(r.timestamp + gap, ...touching.map((s) => s.end)),
        recs: [...touching.flatMap((s) => s.recs), i].sort((a, b) => a - b),
        created: -1,
      };
      open.set(g, [...list.filter((s) => !touching.includes(s)), merged]);
    });
    closeUpTo(final); // sessions still open at the end are not emitted
  }
  const closed = [...windows.values()].filter((ref) => ref.end + GRACE <= final && ref.recs.length > 0);
  closed.sort((a, b) => a.host.localeCompare(b.host) || a.name.localeCompare(b.name) || a.start - b.start || a.end - b.end);
  return { windows: closed, late };
}

/** Exact values of the aggregations over the records (by index) of one window. */
function expected(input: Sample[], recs: number[]) {
  const rows = recs.map((i) => ({ i, r: input[i]! }));
  const vs = rows.map((x) => x.r.value);
  const lats = rows.map((x) => x.r.lat).filter((x): x is number => x !== null);
  const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
  const sd = (xs: number[]) => {
    const m = mean(xs);
    return m === null ? null : Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / xs.length);
  };
  const pick = (field: 'status' | 'value', dir: 1 | -1) => {
    let best: { ts: number; i: number; v: unknown } | undefined;
    for (const { i, r } of rows) {
      const v = r[field];
      if (v === null) continue;
      const ts = r.timestamp;
      // first: earliest time, ties: earliest arrival; last: latest time, ties: latest arrival.
      if (best === undefined || (dir === 1 ? ts < best.ts || (ts === best.ts && i < best.i) : ts > best.ts || (ts === best.ts && i > best.i))) best = { ts, i, v };
    }
    return best === undefined ? null : best.v;
  };
  const sortedVs = [...vs].sort((a, b) => a - b);
  const pct = (p: number) => sortedVs[Math.floor(p * (sortedVs.length - 1))]!;
  return {
    n: rows.length,
    n_lat: lats.length,
    total: vs.reduce((a, b) => a + b, 0),
    lo: Math.min(...vs),
    hi: Math.max(...vs),
    avg: mean(vs),
    sd: sd(vs),
    sd_lat: sd(lats),
    first_status: pick('status', 1),
    last_status: pick('status', -1),
    last_value: pick('value', -1),
    p50: pct(0.5),
    p99: pct(0.99),
  };
}

// ---------------------------------------------------------------------------------------------
// Running the operator

interface Run {
  out: StreamRecord[];
  late: string[];
}

function run(input: Sample[], w: WindowSpec, opts: { emit?: 'final' | 'update'; restartEvery?: number; seed?: number } = {}): Run {
  const d = new TestDriver(
    aggregatePlan(
      { group_by: ['host', 'name'], window: w, grace: GRACE, emit: opts.emit ?? 'final', aggregations: AGGREGATIONS },
      { maxOutOfOrderMs: MAX_OOO },
    ),
  );
  const rnd = mulberry32((opts.seed ?? 0) + 7);
  input.forEach((r, i) => {
    if (opts.restartEvery !== undefined && i > 0 && rnd() < 1 / opts.restartEvery) d.restart();
    d.pipe('in', r);
  });
  const late = d.deadLetters().map((x) => {
    expect(x.reason).toBe('late');
    return x.input!.offset;
  });
  return { out: d.output('out'), late };
}

const outOrder = (a: StreamRecord, b: StreamRecord) => {
  const x = a.value;
  const y = b.value;
  return (
    String(x.host).localeCompare(String(y.host)) ||
    String(x.name).localeCompare(String(y.name)) ||
    (x.window_start as number) - (y.window_start as number) ||
    (x.window_end as number) - (y.window_end as number)
  );
};

/** Collects mismatches rather than calling expect per value (thousands of windows). */
class Mismatches {
  readonly list: string[] = [];
  near(got: unknown, want: number | null, what: string): void {
    if (want === null ? got === null : typeof got === 'number' && Math.abs(got - want) <= 1e-9 * Math.max(1, Math.abs(want))) return;
    this.list.push(`${what}: got ${String(got)}, want ${String(want)}`);
  }
  sketch(got: unknown, want: number, what: string): void {
    if (typeof got === 'number' && Math.abs(got - want) <= ACCURACY * Math.abs(want) + 1e-12) return;
    this.list.push(`${what}: got ${String(got)}, want ${want} within ${ACCURACY * 100}%`);
  }
  same(got: unknown, want: unknown, what: string): void {
    if (got !== want) this.list.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

function compare(input: Sample[], w: WindowSpec, actual: Run, ref: Reference): void {
  expect(actual.late, 'dead-lettered as late').toEqual([...ref.late].sort((a, b) => a - b).map(String));
  const out = [...actual.out].sort(outOrder);
  expect(out.map((r) => `${r.value.host}|${r.value.name}|${r.value.window_start}|${r.value.window_end}`)).toEqual(
    ref.windows.map((x) => `${x.host}|${x.name}|${x.start}|${x.end}`),
  );
  const m = new Mismatches();
  out.forEach((rec, k) => {
    const ref_ = ref.windows[k]!;
    const at = `${w.type} ${ref_.host}/${ref_.name} [${ref_.start}, ${ref_.end})`;
    const e = expected(input, ref_.recs);
    const v = rec.value;
    m.same(rec.key, JSON.stringify([ref_.host, ref_.name]), `${at} key`);
    m.same(rec.timestamp, ref_.end - 1, `${at} timestamp`);
    m.same(v.n, e.n, `${at} count`);
    m.same(v.n_lat, e.n_lat, `${at} count of lat`);
    m.same(v.first_status, e.first_status, `${at} first status`);
    m.same(v.last_status, e.last_status, `${at} last status`);
    m.same(v.last_value, e.last_value, `${at} last value`);
    m.near(v.total, e.total, `${at} sum`);
    m.near(v.lo, e.lo, `${at} min`);
    m.near(v.hi, e.hi, `${at} max`);
    m.near(v.avg, e.avg, `${at} mean`);
    m.near(v.sd, e.sd, `${at} stddev`);
    m.near(v.sd_lat, e.sd_lat, `${at} stddev of lat`);
    m.sketch(v.p50, e.p50, `${at} p50`);
    m.sketch(v.p99, e.p99, `${at} p99`);
  });
  expect(m.list.slice(0, 20)).toEqual([]);
}

const key = (r: StreamRecord) => `${r.value.host}|${r.value.name}|${r.value.window_start}|${r.value.window_end}`;

describe('aggregate: property test against a reference', () => {
  for (const seed of SEEDS) {
    const input = telemetry(seed, RECORDS);
    for (const w of WINDOWS) {
      it(`${w.type} windows, seed ${seed}: equal to the reference, unchanged by restarts, updates end in the final result`, () => {
        const ref = reference(input, w);
        // The data exercises what it should: late records, and many windows with several records.
        expect(ref.late.size).toBeGreaterThan(10);
        expect(ref.late.size).toBeLessThan(RECORDS * 0.1);
        expect(ref.windows.filter((x) => x.recs.length >= 3).length).toBeGreaterThan(50);

        const final = run(input, w);
        compare(input, w, final, ref);

        // A crash and restart from the changelogs, several times mid-stream, changes nothing
        // (emission order among windows closing at the same instant may differ: compare sorted).
        const restarted = run(input, w, { restartEvery: 600, seed });
        expect(restarted.late).toEqual(final.late);
        expect([...restarted.out].sort(outOrder)).toEqual([...final.out].sort(outOrder));

        // emit: update: the last result of every window is its final one; same late records.
        const updates = run(input, w, { emit: 'update', restartEvery: 1000, seed });
        expect(updates.late).toEqual(final.late);
        const last = new Map<string, StreamRecord>();
        for (const r of updates.out) last.set(key(r), r);
        for (const r of final.out) expect(last.get(key(r)), key(r)).toEqual(r);
        expect(updates.out.length).toBeGreaterThan(final.out.length);
        if (w.type !== 'session') {
          // One update per contribution once the window exists, plus the final one.
          const emitted = new Map<string, number>();
          for (const r of updates.out) emitted.set(key(r), (emitted.get(key(r)) ?? 0) + 1);
          const wrong = ref.windows
            .map((x) => [`${x.host}|${x.name}|${x.start}|${x.end}`, emitted.get(`${x.host}|${x.name}|${x.start}|${x.end}`), x.recs.filter((j) => j >= x.created).length + 1])
            .filter(([, got, want]) => got !== want);
          expect(wrong.slice(0, 10)).toEqual([]);
        }
      });
    }
  }
});
