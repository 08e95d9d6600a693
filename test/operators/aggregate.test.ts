import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { RecordSchema, StreamRecord } from '../../kernel/operator.ts';
import { aggregateOperator } from '../../operators/aggregate.ts';
import { parseTopology } from '../../topology/loader.ts';
import { planTopology } from '../../topology/plan.ts';
import { operatorRegistry } from '../../operators/registry.ts';
import { TestDriver } from '../../runtime/test-driver.ts';
import { aggregatePlan, parseAggregate, sample, sampleSchema } from './aggregate-fixtures.ts';
import { compileOperator, tryCompile } from '../helpers/operators.ts';

const values = (recs: StreamRecord[]) => recs.map((r) => r.value);
const byKeyThenStart = (a: StreamRecord, b: StreamRecord) =>
  String(a.key).localeCompare(String(b.key)) || (a.value.window_start as number) - (b.value.window_start as number);
const sorted = (recs: StreamRecord[]) => [...recs].sort(byKeyThenStart);

function lateCount(d: TestDriver): number {
  let n = 0;
  for (const t of d.allTasks()) n += t.counters().get('agg')?.custom.get('late') ?? 0;
  return n;
}

function issuesOf(raw: Record<string, unknown>, schema: RecordSchema = sampleSchema): string[] {
  const r = tryCompile(aggregateOperator, raw, [{ schema }], 'agg');
  return r.ok ? [] : r.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

const tumbling = (extra: Record<string, unknown> = {}) => ({
  group_by: ['host'],
  window: { type: 'tumbling', size: '1m' },
  aggregations: { samples: { fn: 'count' }, avg: { fn: 'mean', field: 'value' }, top: { fn: 'max', field: 'value' } },
  ...extra,
});

describe('aggregate: config, schema and declarations', () => {
  it('parses the spec with defaults and durations in ms', () => {
    const c = parseAggregate({
      group_by: ['host', 'name'],
      window: { type: 'hopping', size: '5m', advance: '1m' },
      aggregations: { p99: { fn: 'percentile', field: 'value', p: 0.99 } },
    });
    expect(c).toEqual({
      group_by: ['host', 'name'],
      window: { type: 'hopping', size: 300_000, advance: 60_000 },
      grace: 0,
      emit: 'final',
      wall_clock_close: false,
      aggregations: { p99: { fn: 'percentile', field: 'value', p: 0.99 } },
    });
    expect(parseAggregate({ ...tumbling(), group_by: 'host', grace: '30s' }).group_by).toEqual(['host']);
  });

  it('derives the output schema', () => {
    const compiled = compileOperator(aggregateOperator, {
      group_by: ['host', 'tags.region'],
      window: { type: 'tumbling', size: '1m' },
      aggregations: {
        samples: { fn: 'count' },
        total: { fn: 'sum', field: 'value' },
        avg: { fn: 'mean', field: 'value' },
        sd: { fn: 'stddev', field: 'lat' },
        p99: { fn: 'percentile', field: 'value', p: 0.99 },
        first_status: { fn: 'first', field: 'status' },
        last_code: { fn: 'last', field: 'code' },
      },
    }, [{ schema: sampleSchema }], 'cpu-per-minute');
    const schema = compiled.outputs[0]!.schema;
    expect(schema.name).toBe('CpuPerMinuteAggregate');
    expect(schema.namespace).toBe('vigil.generated');
    expect(schema.fields.map((f) => [f.name, f.type])).toEqual([
      ['host', 'string'],
      ['region', ['null', 'string']],
      ['window_start', { type: 'long', logicalType: 'timestamp-millis' }],
      ['window_end', { type: 'long', logicalType: 'timestamp-millis' }],
      ['samples', 'long'],
      ['total', 'double'],
      ['avg', ['null', 'double']],
      ['sd', ['null', 'double']],
      ['p99', ['null', 'double']],
      ['first_status', ['null', 'string']],
      ['last_code', ['null', 'int']],
    ]);
  });

  it('declares partitioning, key fields and stores', () => {
    const compile = (raw: Record<string, unknown>) => compileOperator(aggregateOperator, raw, [{ schema: sampleSchema }], 'agg');
    const c = compile({ ...tumbling(), group_by: ['host', 'tags.region'], grace: '10s' });
    expect(c.partitionBy).toEqual({ in: ['host', 'tags.region'] });
    expect(c.outputs[0]!.keyFields).toEqual(['host', 'region']);
    expect(c.stores).toMatchObject([{ name: 'windows', kind: 'window', retentionMs: 130_000 }]);
    expect(compile({ ...tumbling(), window: { type: 'session', gap: '5m' } }).stores).toMatchObject([{ name: 'sessions', kind: 'kv' }]);
    expect(compile({ ...tumbling(), window: { type: 'sliding', size: '1m' } }).stores![0]).toMatchObject({ name: 'panes', kind: 'window' });
  });

  it('refuses bad configs with precise messages', () => {
    expect(issuesOf({ ...tumbling(), group_by: ['hots'] })).toEqual([expect.stringMatching(/^group_by.0: unknown field 'hots'.*did you mean 'host'/)]);
    expect(issuesOf({ ...tumbling(), group_by: ['value'] })).toEqual([expect.stringMatching(/^group_by.0: cannot group by 'value': it is double/)]);
    expect(issuesOf({ ...tumbling(), group_by: [] })).toEqual([expect.stringMatching(/needs at least 1 item/)]);
    expect(issuesOf({ ...tumbling(), window: { type: 'tumbling' } })).toEqual(["window: a tumbling window needs 'size'"]);
    expect(issuesOf({ ...tumbling(), window: { type: 'session', gap: '1m', size: '1m' } })).toEqual([
      "window.size: 'size' does not apply to a session window (it takes gap)",
    ]);
    expect(issuesOf({ ...tumbling(), window: { type: 'hopping', size: '1m', advance: '2m' } })).toEqual([
      "window.advance: 'advance' (120000ms) must not exceed 'size' (60000ms): records between windows would be dropped",
    ]);
    // A day advancing by a millisecond: 86 million windows per record.
    expect(issuesOf({ ...tumbling(), window: { type: 'hopping', size: '1d', advance: '1ms' } })).toEqual([
      "window.advance: 'advance' (1ms) puts every record in 86400000 windows of 86400000ms; at most 1000: advance by 86400ms or more",
    ]);
    expect(issuesOf({ ...tumbling(), window: { type: 'tumbling', size: '999999999d' } })).toEqual([expect.stringMatching(/^window.size: .*beyond any date: at most 36500d/)]);
    expect(issuesOf({ ...tumbling(), window: { type: 'rolling', size: '1m' } })).toEqual([expect.stringMatching(/must be one of tumbling, hopping, sliding, session/)]);
    expect(issuesOf({ ...tumbling(), aggregations: { m: { fn: 'mean', field: 'host' } } })).toEqual([
      "aggregations.m.field: 'mean' needs a numeric field, but 'host' is string",
    ]);
    expect(issuesOf({ ...tumbling(), aggregations: { m: { fn: 'mean' } } })).toEqual(["aggregations.m: 'mean' needs a 'field'"]);
    expect(issuesOf({ ...tumbling(), aggregations: { q: { fn: 'percentile', field: 'value' } } })).toEqual([
      "aggregations.q: 'percentile' needs 'p' (the quantile, e.g. 0.99)",
    ]);
    expect(issuesOf({ ...tumbling(), aggregations: { q: { fn: 'max', field: 'value', p: 0.5 } } })).toEqual(["aggregations.q.p: 'p' only applies to 'percentile'"]);
    expect(issuesOf({ ...tumbling(), aggregations: { q: { fn: 'percentile', field: 'value', p: 1.5 } } })).toEqual([expect.stringMatching(/at most 1/)]);
    expect(issuesOf({ ...tumbling(), aggregations: { host: { fn: 'count' } } })).toEqual(["aggregations.host: output field 'host' is already the group field 'host'"]);
    expect(issuesOf({ ...tumbling(), aggregations: { window_end: { fn: 'count' } } })).toEqual(["aggregations.window_end: output field 'window_end' is already the window end"]);
    expect(issuesOf({ ...tumbling(), aggregations: { 'p-99': { fn: 'count' } } })).toEqual([expect.stringMatching(/'p-99' is not a valid Avro name/)]);
    expect(issuesOf({ ...tumbling(), aggregations: { t: { fn: 'first', field: 'tags' } } })).toEqual([expect.stringMatching(/'first' takes a string, enum, number or boolean field/)]);
    expect(issuesOf({ ...tumbling(), aggregations: { n: { fn: 'count', fild: 'value' } } })).toEqual([expect.stringMatching(/unknown field 'fild'.*did you mean 'field'/)]);
  });

  it('its documentation examples parse and check against the telemetry schemas', () => {
    const schemas = new Map<string, RecordSchema>();
    for (const f of ['metric-sample', 'log-line']) {
      const s = JSON.parse(readFileSync(new URL(`../../schemas/${f}.avsc`, import.meta.url), 'utf8')) as RecordSchema;
      schemas.set(`${s.namespace}.${s.name}`, s);
    }
    expect(aggregateOperator.examples!.length).toBeGreaterThanOrEqual(4);
    for (const ex of aggregateOperator.examples!) {
      const doc = parseYaml(ex.yaml) as { sources: { schema: string }[]; operators: Record<string, unknown>[] };
      const schema = schemas.get(doc.sources[0]!.schema)!;
      const { name, type, ...raw } = doc.operators[0]!;
      expect(type).toBe('aggregate');
      const r = tryCompile(aggregateOperator, raw, [{ schema }], String(name));
      expect(r.ok ? [] : r.issues, ex.title).toEqual([]);
    }
  });
});

describe('aggregate: tumbling windows', () => {
  it('emits one final result per group when the watermark passes the window end', () => {
    const d = new TestDriver(aggregatePlan(tumbling()));
    d.pipe('in', sample(1000, 'a', 1));
    d.pipe('in', sample(30_000, 'a', 3));
    d.pipe('in', sample(59_999, 'b', 5));
    expect(d.output('out')).toEqual([]);
    d.pipe('in', sample(60_000, 'a', 10));
    const out = sorted(d.output('out'));
    expect(out).toEqual([
      { key: 'a', timestamp: 59_999, value: { host: 'a', window_start: 0, window_end: 60_000, samples: 2, avg: 2, top: 3 } },
      { key: 'b', timestamp: 59_999, value: { host: 'b', window_start: 0, window_end: 60_000, samples: 1, avg: 5, top: 5 } },
    ]);
    expect(d.deadLetters()).toEqual([]);
  });

  it('takes records within grace and dead-letters later ones as late', () => {
    const d = new TestDriver(aggregatePlan(tumbling({ grace: '10s' })));
    d.pipe('in', sample(1000, 'a', 1));
    d.pipe('in', sample(65_000, 'a', 2));
    d.pipe('in', sample(59_000, 'a', 4)); // watermark 65s < 60s + 10s grace: still open
    expect(d.output('out')).toEqual([]);
    d.pipe('in', sample(70_000, 'a', 8)); // closes [0, 60s)
    expect(values(d.output('out'))).toEqual([{ host: 'a', window_start: 0, window_end: 60_000, samples: 2, avg: 2.5, top: 4 }]);
    d.pipe('in', sample(5_000, 'a', 100)); // late
    expect(d.output('out')).toHaveLength(1);
    const dl = d.deadLetters();
    expect(dl).toHaveLength(1);
    expect(dl[0]).toMatchObject({ stage: 'operator', reason: 'late', node: 'agg' });
    expect(dl[0]!.input?.offset).toBe('4');
    expect(dl[0]!.detail).toBe(
      'record at 5000 (1970-01-01T00:00:05.000Z) of group ["a"] is late: its window [0, 60000) = [1970-01-01T00:00:00.000Z, 1970-01-01T00:01:00.000Z) ' +
        'closed at 70000 (end + grace 10000ms) <= 70000 (watermark 70000)',
    );
    expect(lateCount(d)).toBe(1);
    // The late record changed nothing: the next window is unaffected.
    d.pipe('in', sample(200_000, 'a', 0));
    expect(values(d.output('out'))[1]).toEqual({ host: 'a', window_start: 60_000, window_end: 120_000, samples: 2, avg: 5, top: 8 });
  });

  it("uses the source's max_out_of_order in the watermark", () => {
    const d = new TestDriver(aggregatePlan(tumbling(), { maxOutOfOrderMs: 20_000 }));
    d.pipe('in', sample(50_000, 'a', 1));
    d.pipe('in', sample(75_000, 'a', 1)); // watermark 55s
    d.pipe('in', sample(10_000, 'a', 1)); // still in [0, 60s)
    expect(d.output('out')).toEqual([]);
    d.pipe('in', sample(80_000, 'a', 1)); // watermark 60s: closes
    expect(values(d.output('out'))).toEqual([{ host: 'a', window_start: 0, window_end: 60_000, samples: 2, avg: 1, top: 1 }]);
  });

  it('keys by the group value, or by the JSON array of values with several group fields', () => {
    const d = new TestDriver(
      aggregatePlan({ group_by: ['host', 'name', 'tags.region'], window: { type: 'tumbling', size: '1s' }, aggregations: { n: { fn: 'count' } } }),
    );
    d.pipe('in', sample(10, 'a', 1, { name: 'cpu', tags: { region: 'eu' } }));
    d.pipe('in', sample(20, 'a', 1, { name: 'cpu' }));
    d.pipe('in', sample(5000, 'z', 1));
    expect(sorted(d.output('out')).map((r) => [r.key, r.value])).toEqual([
      ['["a","cpu","eu"]', { host: 'a', name: 'cpu', region: 'eu', window_start: 0, window_end: 1000, n: 1 }],
      ['["a","cpu",null]', { host: 'a', name: 'cpu', region: null, window_start: 0, window_end: 1000, n: 1 }],
    ]);
    const n = new TestDriver(aggregatePlan({ group_by: ['status'], window: { type: 'tumbling', size: '1s' }, aggregations: { n: { fn: 'count' } } }));
    n.pipe('in', sample(10, 'a', 1, { status: 'ok' }));
    n.pipe('in', sample(20, 'a', 1));
    n.pipe('in', sample(5000, 'a', 1));
    expect(sorted(n.output('out')).map((r) => [r.key, r.value.status])).toEqual([
      [null, null],
      ['ok', 'ok'],
    ]);
  });

  it('aggregates nullable and string fields, ignoring nulls', () => {
    const d = new TestDriver(
      aggregatePlan({
        group_by: ['host'],
        window: { type: 'tumbling', size: '1s' },
        aggregations: {
          n: { fn: 'count' },
          with_lat: { fn: 'count', field: 'lat' },
          lat: { fn: 'mean', field: 'lat' },
          first_status: { fn: 'first', field: 'status' },
          last_status: { fn: 'last', field: 'status' },
          sd: { fn: 'stddev', field: 'value' },
        },
      }),
    );
    d.pipe('in', sample(300, 'a', 2, { lat: 10, status: 'b' }));
    d.pipe('in', sample(100, 'a', 4, { status: 'a' }));
    d.pipe('in', sample(900, 'a', 4, { lat: 20 }));
    d.pipe('in', sample(300, 'a', 6, { status: 'c' }));
    d.pipe('in', sample(2000, 'x', 0));
    expect(values(d.output('out'))).toEqual([{ host: 'a', window_start: 0, window_end: 1000, n: 4, with_lat: 2, lat: 15, first_status: 'a', last_status: 'c', sd: Math.sqrt(2) }]);
  });

  it('keeps the tasks of different partitions apart', () => {
    const d = new TestDriver(aggregatePlan(tumbling(), { partitions: 2 }));
    d.pipe('in', sample(1000, 'a', 1), { partition: 0 });
    d.pipe('in', sample(1000, 'a', 3), { partition: 1 });
    d.pipe('in', sample(70_000, 'x', 0), { partition: 0 });
    expect(values(d.output('out'))).toEqual([{ host: 'a', window_start: 0, window_end: 60_000, samples: 1, avg: 1, top: 1 }]);
  });
});

describe('aggregate: hopping windows', () => {
  it('updates the still-open windows of a record and is late only when all are closed', () => {
    const d = new TestDriver(
      aggregatePlan({ group_by: ['host'], window: { type: 'hopping', size: '10s', advance: '5s' }, aggregations: { n: { fn: 'count' }, s: { fn: 'sum', field: 'value' } } }),
    );
    d.pipe('in', sample(12_000, 'a', 1)); // [5s, 15s) and [10s, 20s)
    d.pipe('in', sample(16_000, 'a', 2)); // [10s, 20s) and [15s, 25s); watermark 16s closes [5s, 15s)
    d.pipe('in', sample(14_000, 'a', 4)); // [5s, 15s) closed, [10s, 20s) open: counts there only
    d.pipe('in', sample(9_000, 'a', 8)); // [0, 10s) and [5s, 15s): both closed: late
    d.pipe('in', sample(100_000, 'a', 0));
    expect(values(d.output('out'))).toEqual([
      { host: 'a', window_start: 5000, window_end: 15_000, n: 1, s: 1 },
      { host: 'a', window_start: 10_000, window_end: 20_000, n: 3, s: 7 },
      { host: 'a', window_start: 15_000, window_end: 25_000, n: 1, s: 2 },
    ]);
    expect(d.deadLetters().map((x) => x.input?.offset)).toEqual(['3']);
    expect(d.deadLetters()[0]!.detail).toContain('its last window [5000, 15000)');
  });
});

describe('aggregate: sliding windows', () => {
  const sliding = (extra: Record<string, unknown> = {}) => ({
    group_by: ['host'],
    window: { type: 'sliding', size: '10s' },
    aggregations: { n: { fn: 'count' }, s: { fn: 'sum', field: 'value' }, first: { fn: 'first', field: 'value' } },
    ...extra,
  });

  it('emits one window per distinct event time covering (t - size, t]', () => {
    const d = new TestDriver(aggregatePlan(sliding()));
    d.pipe('in', sample(1000, 'a', 1));
    d.pipe('in', sample(5000, 'a', 2)); // closes W(1000)
    d.pipe('in', sample(12_000, 'a', 4)); // closes W(5000)
    d.pipe('in', sample(12_000, 'a', 8)); // same window as the previous record
    d.pipe('in', sample(30_000, 'b', 0)); // closes W(12000)
    expect(d.output('out')).toEqual([
      { key: 'a', timestamp: 1000, value: { host: 'a', window_start: -8999, window_end: 1001, n: 1, s: 1, first: 1 } },
      { key: 'a', timestamp: 5000, value: { host: 'a', window_start: -4999, window_end: 5001, n: 2, s: 3, first: 1 } },
      { key: 'a', timestamp: 12_000, value: { host: 'a', window_start: 2001, window_end: 12_001, n: 3, s: 14, first: 2 } },
    ]);
  });

  it('an out-of-order record counts in the open windows of later records even when its own is closed', () => {
    const d = new TestDriver(aggregatePlan(sliding(), { maxOutOfOrderMs: 5000 }));
    d.pipe('in', sample(10_000, 'a', 1));
    d.pipe('in', sample(7000, 'a', 2)); // watermark 5s: W(7000) is open
    d.pipe('in', sample(3000, 'a', 4)); // W(3000) closed (3001 <= 5000), but W(7000) and W(10000) take it
    d.pipe('in', sample(-6000, 'a', 8)); // could only reach windows ending by 4000 <= 5000: late
    d.pipe('in', sample(100_000, 'b', 0));
    expect(values(d.output('out'))).toEqual([
      { host: 'a', window_start: -2999, window_end: 7001, n: 2, s: 6, first: 4 },
      { host: 'a', window_start: 1, window_end: 10_001, n: 3, s: 7, first: 4 },
    ]);
    expect(d.deadLetters().map((x) => [x.input?.offset, x.reason])).toEqual([['3', 'late']]);
    expect(d.deadLetters()[0]!.detail).toContain('the last window that could hold it [-6000, 4000)');
  });

  it('drops its panes once no window can need them', () => {
    const d = new TestDriver(aggregatePlan(sliding()));
    for (let t = 0; t < 100_000; t += 1000) d.pipe('in', sample(t, 'a', 1));
    const panes = d.allTasks()[0]!.stores.find((s) => s.name === 'panes')!;
    expect(panes.size).toBeLessThanOrEqual(11);
  });
});

describe('aggregate: session windows', () => {
  const session = (extra: Record<string, unknown> = {}) => ({
    group_by: ['host'],
    window: { type: 'session', gap: '10s' },
    aggregations: { n: { fn: 'count' }, s: { fn: 'sum', field: 'value' }, last: { fn: 'last', field: 'value' } },
    ...extra,
  });

  it('groups records less than gap apart into [first, last + gap)', () => {
    const d = new TestDriver(aggregatePlan(session()));
    d.pipe('in', sample(0, 'a', 1));
    d.pipe('in', sample(5000, 'a', 2));
    d.pipe('in', sample(15_000, 'a', 4)); // exactly gap after the last: a new session; closes [0, 15s)
    d.pipe('in', sample(40_000, 'b', 0));
    expect(d.output('out')).toEqual([
      { key: 'a', timestamp: 14_999, value: { host: 'a', window_start: 0, window_end: 15_000, n: 2, s: 3, last: 2 } },
      { key: 'a', timestamp: 24_999, value: { host: 'a', window_start: 15_000, window_end: 25_000, n: 1, s: 4, last: 4 } },
    ]);
  });

  it('merges the sessions a record bridges and extends a session backwards', () => {
    const d = new TestDriver(aggregatePlan(session(), { maxOutOfOrderMs: 20_000 }));
    d.pipe('in', sample(100_000, 'b', 1)); // [100s, 110s)
    d.pipe('in', sample(115_000, 'b', 2)); // [115s, 125s)
    d.pipe('in', sample(108_000, 'b', 4)); // bridges both: [100s, 125s)
    d.pipe('in', sample(95_000, 'b', 8)); // watermark 95s: extends the start to 95s
    d.pipe('in', sample(200_000, 'c', 0)); // watermark 180s: closes
    d.pipe('in', sample(150_000, 'b', 16)); // touches no open session and [150s, 160s) is closed: late
    expect(values(d.output('out'))).toEqual([{ host: 'b', window_start: 95_000, window_end: 125_000, n: 4, s: 15, last: 2 }]);
    expect(d.deadLetters().map((x) => x.input?.offset)).toEqual(['5']);
    expect(d.deadLetters()[0]!.detail).toContain('its session window [150000, 160000)');
  });

  it('emits updates, merged sessions included', () => {
    const d = new TestDriver(aggregatePlan(session({ emit: 'update' }), { maxOutOfOrderMs: 20_000 }));
    d.pipe('in', sample(100_000, 'b', 1));
    d.pipe('in', sample(115_000, 'b', 2));
    d.pipe('in', sample(108_000, 'b', 4));
    d.pipe('in', sample(200_000, 'c', 0));
    expect(values(d.output('out')).map((v) => [v.host, v.window_start, v.window_end, v.n])).toEqual([
      ['b', 100_000, 110_000, 1],
      ['b', 115_000, 125_000, 1],
      ['b', 100_000, 125_000, 3],
      ['c', 200_000, 210_000, 1],
      ['b', 100_000, 125_000, 3], // final
    ]);
  });
});

describe('aggregate: emit update', () => {
  it('emits after every change and once more at close', () => {
    const d = new TestDriver(aggregatePlan(tumbling({ emit: 'update' })));
    d.pipe('in', sample(1000, 'a', 1));
    d.pipe('in', sample(2000, 'a', 3));
    d.pipe('in', sample(60_000, 'a', 10));
    expect(values(d.output('out')).map((v) => [v.window_start, v.samples, v.avg])).toEqual([
      [0, 1, 1],
      [0, 2, 2],
      [60_000, 1, 10],
      [0, 2, 2], // the final result, at close
    ]);
  });

  it('emits every open sliding window a record changes', () => {
    const d = new TestDriver(
      aggregatePlan({ group_by: ['host'], window: { type: 'sliding', size: '10s' }, emit: 'update', aggregations: { n: { fn: 'count' } } }, { maxOutOfOrderMs: 10_000 }),
    );
    d.pipe('in', sample(5000, 'a', 1));
    d.pipe('in', sample(8000, 'a', 1));
    d.pipe('in', sample(4000, 'a', 1)); // in W(4000) (new), W(5000) and W(8000)
    expect(values(d.output('out')).map((v) => [v.window_end, v.n])).toEqual([
      [5001, 1],
      [8001, 2],
      [4001, 1],
      [5001, 2],
      [8001, 3],
    ]);
  });
});

describe('aggregate: wall_clock_close', () => {
  const T = 1_699_999_980_000; // on a minute boundary

  it('closes windows when the wall clock passes end + grace with no newer record', () => {
    const d = new TestDriver(aggregatePlan(tumbling({ grace: '10s', wall_clock_close: true })), { wallClock: T + 5000 });
    d.pipe('in', sample(T + 1000, 'a', 1));
    d.pipe('in', sample(T + 2000, 'a', 3));
    d.advanceWallClock(60_000); // T + 65s < end + grace
    expect(d.output('out')).toEqual([]);
    d.advanceWallClock(5_000); // T + 70s: closes
    expect(values(d.output('out'))).toEqual([{ host: 'a', window_start: T, window_end: T + 60_000, samples: 2, avg: 2, top: 3 }]);
    // The window is closed: a record for it is late although the watermark has not passed end + grace.
    d.pipe('in', sample(T + 3000, 'a', 100));
    expect(d.deadLetters()).toHaveLength(1);
    expect(d.deadLetters()[0]!.detail).toContain(`(watermark ${T + 2000}, wall clock ${T + 70_000})`);
    // The next window takes records; the event-time timer of the closed window was cancelled.
    d.pipe('in', sample(T + 61_000, 'a', 5));
    d.pipe('in', sample(T + 90_000, 'a', 7));
    expect(d.output('out')).toHaveLength(1);
    d.advanceWallClock(60_000); // T + 130s
    expect(values(d.output('out'))[1]).toEqual({ host: 'a', window_start: T + 60_000, window_end: T + 120_000, samples: 2, avg: 6, top: 7 });
    d.pipe('in', sample(T + 500_000, 'a', 0)); // watermark far ahead: nothing closes twice
    expect(d.output('out')).toHaveLength(2);
  });

  it('closes sessions and sliding windows on the wall clock too', () => {
    const s = new TestDriver(
      aggregatePlan({ group_by: ['host'], window: { type: 'session', gap: '30s' }, wall_clock_close: true, aggregations: { n: { fn: 'count' } } }),
      { wallClock: T },
    );
    s.pipe('in', sample(T, 'a', 1));
    s.advanceWallClock(10_000);
    s.pipe('in', sample(T + 10_000, 'a', 1)); // session [T, T + 40s)
    s.advanceWallClock(29_000); // T + 39s
    expect(s.output('out')).toEqual([]);
    s.advanceWallClock(1000);
    expect(values(s.output('out'))).toEqual([{ host: 'a', window_start: T, window_end: T + 40_000, n: 2 }]);

    // A sliding window ends at its record: it needs a grace covering the record's delay.
    const w = new TestDriver(
      aggregatePlan({ group_by: ['host'], window: { type: 'sliding', size: '30s' }, grace: '10s', wall_clock_close: true, aggregations: { n: { fn: 'count' } } }),
      { wallClock: T },
    );
    w.pipe('in', sample(T - 5000, 'a', 1)); // W closes at T + 5001
    w.pipe('in', sample(T - 1000, 'a', 1)); // W closes at T + 9001
    w.pipe('in', sample(T - 20_000, 'a', 1)); // its own window closed at T - 9999; it still counts in the two above
    w.advanceWallClock(5001);
    expect(values(w.output('out')).map((v) => [v.window_end, v.n])).toEqual([[T - 4999, 2]]);
    w.advanceWallClock(4000);
    expect(values(w.output('out')).map((v) => [v.window_end, v.n])).toEqual([
      [T - 4999, 2],
      [T - 999, 3],
    ]);
    expect(w.deadLetters()).toEqual([]);
  });
});

describe('aggregate: restart', () => {
  it('resumes exactly from the changelogs, mid-window', () => {
    const run = (restartAt: number | undefined) => {
      const d = new TestDriver(aggregatePlan(tumbling({ grace: '5s', aggregations: { n: { fn: 'count' }, p50: { fn: 'percentile', field: 'value', p: 0.5 } } })));
      const ts = [1000, 20_000, 59_000, 61_000, 3000, 64_000, 66_000, 119_000, 200_000];
      ts.forEach((t, i) => {
        if (i === restartAt) d.restart();
        d.pipe('in', sample(t, i % 2 === 0 ? 'a' : 'b', i * 1.5));
      });
      return { out: sorted(d.output('out')), dl: d.deadLetters().map((x) => x.input?.offset) };
    };
    const base = run(undefined);
    expect(base.out.length).toBeGreaterThan(0);
    for (let k = 1; k < 9; k++) expect(run(k), `restart before record ${k}`).toEqual(base);
  });
});

describe('aggregate: through the topology loader and planner', () => {
  it('loads from YAML, repartitions by the group fields and aggregates', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-aggregate-'));
    try {
      writeFileSync(
        join(dir, 'cpu-window.avsc'),
        JSON.stringify({
          type: 'record',
          name: 'CpuWindow',
          namespace: 'test',
          fields: [
            { name: 'host', type: 'string' },
            { name: 'name', type: 'string' },
            { name: 'window_start', type: { type: 'long', logicalType: 'timestamp-millis' } },
            { name: 'window_end', type: { type: 'long', logicalType: 'timestamp-millis' } },
            { name: 'samples', type: 'long' },
            { name: 'avg', type: ['null', 'double'] },
            { name: 'p99', type: ['null', 'double'] },
          ],
        }),
      );
      const yaml = `
version: 1
name: agg-test
schemas: [cpu-window.avsc]
sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
    max_out_of_order: 5s
    partitions: 2
operators:
  - name: cpu-per-minute
    type: aggregate
    group_by: [host, name]
    window: { type: tumbling, size: 1m }
    grace: 30s
    aggregations:
      samples: { fn: count }
      avg: { fn: mean, field: value }
      p99: { fn: percentile, field: value, p: 0.99 }
sinks:
  - name: out
    topic: cpu.windows
    schema: test.CpuWindow
`;
      const operators = new Map(operatorRegistry);
      operators.set('aggregate', aggregateOperator);
      const topology = parseTopology(yaml, join(dir, 'topology.yaml'), { operators });
      const plan = planTopology(topology);
      expect(plan.subtopologies).toHaveLength(2); // [host] -> repartition -> [host, name]
      const node = plan.subtopologies[1]!.nodes[0]!;
      expect(node.outputs[0]!.schema.name).toBe('CpuPerMinuteAggregate');
      expect(node.stores.map((s) => [s.name, s.kind, s.changelogTopic])).toEqual([['windows', 'window', 'agg-test-cpu-per-minute-windows-changelog']]);

      const d = new TestDriver(plan);
      const metric = (timestamp: number, host: string, name: string, value: number) => ({ timestamp, name, host, value, unit: null, tags: {} });
      d.pipe('metrics', metric(10_000, 'web-1', 'cpu', 10));
      d.pipe('metrics', metric(20_000, 'web-1', 'cpu', 30));
      d.pipe('metrics', metric(25_000, 'web-1', 'mem', 70));
      d.pipe('metrics', metric(65_000, 'web-2', 'cpu', 1));
      d.pipe('metrics', metric(50_000, 'web-1', 'cpu', 20)); // out of order, within the bound
      expect(d.output('out')).toEqual([]);
      // Repartitioned by [host, name]: each group's partition needs its own watermark at 90s = 60s + 30s grace.
      d.pipe('metrics', metric(95_000, 'web-1', 'cpu', 1));
      d.pipe('metrics', metric(95_000, 'web-1', 'mem', 1));
      const out = d.output('out').map((r) => ({ ...r.value })).sort((a, b) => String(a.name).localeCompare(String(b.name)));
      // p99 of [10, 20, 30] is the value of rank floor(0.99 * 2) = 1: 20, within the sketch's 1%.
      expect(Math.abs((out[0]!.p99 as number) - 20)).toBeLessThanOrEqual(0.2);
      expect(out).toEqual([
        { host: 'web-1', name: 'cpu', window_start: 0, window_end: 60_000, samples: 3, avg: 20, p99: out[0]!.p99 },
        { host: 'web-1', name: 'mem', window_start: 0, window_end: 60_000, samples: 1, avg: 70, p99: 70 },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
