// Property test of `sequence`: random A and B records (seeded; few keys, out of order within the
// sources' bound, some later than that), on two streams and on one stream read twice, on the
// TestDriver with restarts, against a reference that follows the documented semantics on lists:
//
// - wm(i) = min over the inputs of (max event time seen on it before record i) - max_out_of_order.
// - A record is late iff t + grace < wm(i) (dead-lettered).
// - An A matches the earliest held B of its key with A.t <= B.t <= A.t + within, if any (done);
//   else it is held. A B matches every held A of its key with B.t - within <= A.t <= B.t (oldest
//   first; each is done), and is held.
// - After each record, held A's with t + within + grace < wm expire; held B's with t + grace < wm go.
import { describe, expect, it } from 'vitest';
import { TestDriver } from '../../runtime/test-driver.ts';
import { prng } from '../../connectors/telemetry-generator.ts';
import { planYamlBuiltin } from '../helpers/topology.ts';

const MAX_OOO = 1500;
const RECORDS = 1500;

interface Rec {
  kind: 'A' | 'B';
  id: string;
  key: string;
  t: number;
}

function records(seed: number): Rec[] {
  const rnd = prng(seed);
  const out: Rec[] = [];
  let clock = 5_000_000;
  for (let i = 0; i < RECORDS; i++) {
    clock += Math.floor(rnd() * 150);
    const raw = rnd() < 0.05 ? clock - MAX_OOO - 2500 - Math.floor(rnd() * 6000) : clock - Math.floor(rnd() * MAX_OOO);
    const t = Math.round(raw / 100) * 100;
    const key = rnd() < 0.1 ? `once-${i}` : `k${Math.floor(rnd() * 6)}`;
    out.push({ kind: rnd() < 0.5 ? 'A' : 'B', id: `${i}`, key, t });
  }
  return out;
}

interface Spec {
  within: number;
  grace: number;
  /** One stream read twice (both kinds feed the same watermark), or two streams. */
  shared: boolean;
}

function reference(recs: Rec[], s: Spec): { matched: string[]; expired: string[]; late: number } {
  const maxTs = { A: -Infinity, B: -Infinity };
  const wmNow = () => (s.shared ? Math.max(maxTs.A, maxTs.B) - MAX_OOO : Math.min(maxTs.A, maxTs.B) - MAX_OOO);
  let as: Array<Rec & { seq: number }> = [];
  let bs: Array<Rec & { seq: number }> = [];
  const matched: string[] = [];
  const expired: string[] = [];
  let late = 0;
  recs.forEach((r, seq) => {
    const wm = wmNow();
    if (r.t + s.grace < wm) late++;
    else if (r.kind === 'A') {
      const b = bs.filter((x) => x.key === r.key && x.t >= r.t && x.t <= r.t + s.within).sort((x, y) => x.t - y.t || x.seq - y.seq)[0];
      if (b !== undefined) matched.push(`${r.id}>${b.id}@${Math.max(r.t, b.t)}`);
      else as.push({ ...r, seq });
    } else {
      const hit = as.filter((x) => x.key === r.key && x.t >= r.t - s.within && x.t <= r.t);
      for (const a of hit) matched.push(`${a.id}>${r.id}@${Math.max(a.t, r.t)}`);
      as = as.filter((x) => !hit.includes(x));
      bs.push({ ...r, seq });
    }
    maxTs[r.kind] = Math.max(maxTs[r.kind], r.t);
    const after = wmNow();
    for (const a of as) if (a.t + s.within + s.grace < after) expired.push(`${a.id}@${a.t + s.within}`);
    as = as.filter((a) => a.t + s.within + s.grace >= after);
    bs = bs.filter((b) => b.t + s.grace >= after);
  });
  return { matched: matched.sort(), expired: expired.sort(), late };
}

const topology = (s: Spec) => `
version: 1
name: seq-prop
sources:
${s.shared ? '  - { name: events, topic: events, schema: vigil.telemetry.Event, key: [entity], timestamp: timestamp, max_out_of_order: 1500ms }' : '  - { name: as, topic: as, schema: vigil.telemetry.Event, key: [entity], timestamp: timestamp, max_out_of_order: 1500ms }\n  - { name: bs, topic: bs, schema: vigil.telemetry.Event, key: [entity], timestamp: timestamp, max_out_of_order: 1500ms }'}
operators:
  - name: seq
    type: sequence
    from: ${s.shared ? '[events, events]' : '{ first: as, then: bs }'}
    first_key: [entity]
    then_key: [entity]
    first_where: type == "A"
    then_where: type == "B"
    within: ${s.within}ms
    grace: ${s.grace}ms
sinks:
  - { name: matched, from: seq, topic: matched }
  - { name: expired, from: seq.expired, topic: expired }
`;

function run(recs: Rec[], s: Spec, seed: number) {
  const d = new TestDriver(planYamlBuiltin(topology(s)));
  const rnd = prng(seed * 13 + 5);
  for (const r of recs) {
    const source = s.shared ? 'events' : r.kind === 'A' ? 'as' : 'bs';
    d.pipe(source, { timestamp: r.t, type: r.kind, source: 'test', entity: r.key, severity: 'INFO', attributes: { id: r.id } }, { key: r.key });
    if (rnd() < 0.004) d.restart();
  }
  const id = (v: unknown) => (v as { attributes: { id: string } }).attributes.id;
  const matched = d.output('matched').map((r) => `${id(r.value.first)}>${id(r.value.then)}@${r.timestamp}`).sort();
  const expired = d.output('expired').map((r) => `${id(r.value.first)}@${r.timestamp}`).sort();
  // Read twice, a late record is dead-lettered by each input's side that takes it.
  const late = d.deadLetters().filter((x) => x.reason === 'late').length;
  expect(d.deadLetters().length).toBe(late);
  return { matched, expired, late };
}

const SPECS: Spec[] = [
  { within: 2000, grace: 0, shared: false },
  { within: 5000, grace: 1000, shared: false },
  { within: 1000, grace: 500, shared: true },
  { within: 4000, grace: 0, shared: true },
];

describe('sequence against a reference on random streams', () => {
  for (const s of SPECS)
    for (const seed of [5, 29])
      it(`within ${s.within} ms, grace ${s.grace} ms, ${s.shared ? 'one stream read twice' : 'two streams'}, seed ${seed}`, () => {
        const recs = records(seed);
        const want = reference(recs, s);
        expect(want.matched.length).toBeGreaterThan(50);
        expect(want.expired.length).toBeGreaterThan(20);
        expect(want.late).toBeGreaterThan(0);
        const got = run(recs, s, seed);
        expect(got.late).toBe(want.late);
        expect(got.matched).toEqual(want.matched);
        expect(got.expired).toEqual(want.expired);
      });
});
