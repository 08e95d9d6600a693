// Property test of `join`: random interleaved left and right streams (seeded; few keys, records out
// of order within the sources' bound and some later than that), through inner, left and outer joins
// on the TestDriver, with restarts at random points, against a reference computed here by a direct
// reading of the documented semantics, on plain lists:
//
// - wm(i), the watermark record i is handled with, is min over the two inputs of (max event time
//   seen on it before record i) - max_out_of_order (-infinity until both inputs have a record).
// - A record is late iff t + grace < wm(i): it joins nothing and is dead-lettered.
// - Otherwise it pairs with every held record of the other side with the same key and a time in
//   its window (a left at t: rights in [t - before, t + after]; a right at t: lefts in
//   [t - after, t + before]); then it is held.
// - After each record, held lefts with t + after + grace < wm and held rights with
//   t + before + grace < wm are dropped; those that never paired are unmatched (emitted to `out`
//   for left joins (lefts) and outer joins (both), and always to `unmatched`).
import { describe, expect, it } from 'vitest';
import { TestDriver } from '../../runtime/test-driver.ts';
import { prng } from '../../connectors/telemetry-generator.ts';
import { planYamlBuiltin } from '../helpers/topology.ts';

const MAX_OOO = 2000;
const RECORDS = 1500;
const KEYS = ['k0', 'k1', 'k2', 'k3'];

type Side = 'left' | 'right';
interface Rec {
  side: Side;
  id: string;
  key: string;
  t: number;
}

function streams(seed: number): Rec[] {
  const rnd = prng(seed);
  const out: Rec[] = [];
  let clock = 1_000_000;
  for (let i = 0; i < RECORDS; i++) {
    clock += Math.floor(rnd() * 120);
    const r = rnd();
    // Mostly within the out-of-order bound, sometimes far behind (late).
    const raw = r < 0.05 ? clock - MAX_OOO - 2500 - Math.floor(rnd() * 8000) : clock - Math.floor(rnd() * MAX_OOO);
    // On a 100 ms grid, so that records often fall exactly on a window's bounds.
    const t = Math.round(raw / 100) * 100;
    // A few keys shared by both sides, and keys seen once (never matched).
    const key = rnd() < 0.15 ? `once-${i}` : KEYS[Math.floor(rnd() * KEYS.length)]!;
    out.push({ side: rnd() < 0.5 ? 'left' : 'right', id: `${i}`, key, t });
  }
  return out;
}

interface JoinSpec {
  kind: 'inner' | 'left' | 'outer';
  before: number;
  after: number;
  grace: number;
}

function reference(recs: Rec[], j: JoinSpec): { out: string[]; unmatched: string[]; late: number } {
  const maxTs = { left: -Infinity, right: -Infinity };
  const held: Record<Side, Array<Rec & { matched: boolean }>> = { left: [], right: [] };
  const out: string[] = [];
  const unmatched: string[] = [];
  let late = 0;
  const wmNow = () => Math.min(maxTs.left - MAX_OOO, maxTs.right - MAX_OOO);
  for (const r of recs) {
    const wm = wmNow();
    if (r.t + j.grace < wm) late++;
    else {
      const other: Side = r.side === 'left' ? 'right' : 'left';
      const [from, to] = r.side === 'left' ? [r.t - j.before, r.t + j.after] : [r.t - j.after, r.t + j.before];
      const mine = { ...r, matched: false };
      for (const p of held[other])
        if (p.key === r.key && p.t >= from && p.t <= to) {
          mine.matched = p.matched = true;
          const [l, rr] = r.side === 'left' ? [r, p] : [p, r];
          out.push(`${l.id}+${rr.id}@${Math.max(l.t, rr.t)}`);
        }
      held[r.side].push(mine);
    }
    maxTs[r.side] = Math.max(maxTs[r.side], r.t);
    const after = wmNow();
    for (const side of ['left', 'right'] as const) {
      const reach = side === 'left' ? j.after : j.before;
      held[side] = held[side].filter((h) => {
        if (h.t + reach + j.grace >= after) return true;
        if (!h.matched) {
          unmatched.push(`${side}:${h.id}@${h.t}`);
          if ((side === 'left' && j.kind !== 'inner') || (side === 'right' && j.kind === 'outer')) out.push(side === 'left' ? `${h.id}+-@${h.t}` : `-+${h.id}@${h.t}`);
        }
        return false;
      });
    }
  }
  return { out: out.sort(), unmatched: unmatched.sort(), late };
}

const topology = (j: JoinSpec) => `
version: 1
name: join-prop
sources:
  - { name: lefts, topic: lefts, schema: vigil.telemetry.Event, key: [entity], timestamp: timestamp, max_out_of_order: ${MAX_OOO}ms }
  - { name: rights, topic: rights, schema: vigil.telemetry.Event, key: [entity], timestamp: timestamp, max_out_of_order: ${MAX_OOO}ms }
operators:
  - name: j
    type: join
    kind: ${j.kind}
    from: { left: lefts, right: rights }
    left_key: [entity]
    right_key: [entity]
    before: ${j.before}ms
    after: ${j.after}ms
    grace: ${j.grace}ms
sinks:
  - { name: out, from: j, topic: out }
  - { name: unmatched, from: j.unmatched, topic: unmatched }
`;

function run(recs: Rec[], j: JoinSpec, seed: number): { out: string[]; unmatched: string[]; late: number } {
  const d = new TestDriver(planYamlBuiltin(topology(j)));
  const rnd = prng(seed * 7 + 1);
  for (const r of recs) {
    d.pipe(r.side === 'left' ? 'lefts' : 'rights', { timestamp: r.t, type: r.side, source: 'test', entity: r.key, severity: 'INFO', attributes: { id: r.id } }, { key: r.key });
    if (rnd() < 0.004) d.restart();
  }
  const id = (v: unknown) => (v === null ? '-' : ((v as { attributes: { id: string } }).attributes.id));
  const out = d.output('out').map((r) => `${id(r.value.left)}+${id(r.value.right)}@${r.timestamp}`).sort();
  const unmatched = d.output('unmatched').map((r) => `${r.value.side as string}:${id(r.value[r.value.side as string])}@${r.timestamp}`).sort();
  const late = d.deadLetters().filter((x) => x.reason === 'late').length;
  expect(d.deadLetters().length, 'only late records are dead-lettered').toBe(late);
  return { out, unmatched, late };
}

const SPECS: JoinSpec[] = [
  { kind: 'inner', before: 1000, after: 3000, grace: 500 },
  { kind: 'left', before: 0, after: 5000, grace: 1000 },
  { kind: 'outer', before: 2000, after: 2000, grace: 0 },
  { kind: 'left', before: 3000, after: 500, grace: 0 },
  { kind: 'outer', before: 500, after: 4000, grace: 2000 },
];

describe('join against a reference on random streams', () => {
  for (const j of SPECS)
    for (const seed of [3, 17])
      it(`${j.kind} join, before ${j.before} ms, after ${j.after} ms, grace ${j.grace} ms, seed ${seed}`, () => {
        const recs = streams(seed);
        const want = reference(recs, j);
        expect(want.out.length).toBeGreaterThan(100);
        expect(want.late).toBeGreaterThan(0);
        if (j.kind !== 'inner') expect(want.unmatched.length).toBeGreaterThan(0);
        const got = run(recs, j, seed);
        expect(got.late).toBe(want.late);
        expect(got.out).toEqual(want.out);
        expect(got.unmatched).toEqual(want.unmatched);
      });
});
