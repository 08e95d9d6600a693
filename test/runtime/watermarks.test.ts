// Operator-controlled watermarks: an operator passes on a watermark it may hold back, so what it
// emits on time is never late downstream, in the same task or past a repartition topic.
import { describe, expect, it } from 'vitest';
import { TestDriver, partitionOf } from '../../runtime/test-driver.ts';
import { planYamlBuiltin } from '../helpers/topology.ts';
import { T0, burst, chainedAggregatesYaml, expectedPeaks, metric } from '../helpers/chained-aggregates.ts';

const peaks = (d: TestDriver) =>
  d
    .output('out')
    .map((r) => ({ upstream_start: r.value.upstream_start as number, top: r.value.top as number, hosts: r.value.hosts as number }))
    .sort((a, b) => a.upstream_start - b.upstream_start);

describe('chained windowed aggregates through a repartition topic', () => {
  it('give every window, complete, when event time jumps past several windows at once', () => {
    const d = new TestDriver(planYamlBuiltin(chainedAggregatesYaml('jump', 'in', 'out')));
    for (const r of burst()) d.pipe('metrics', metric(r.timestamp, r.host), { key: r.host });
    d.pipe('metrics', metric(T0 + 60_000, 'a'), { key: 'a' });
    expect(d.deadLetters()).toEqual([]);
    expect(peaks(d).filter((p) => p.upstream_start <= T0)).toEqual(expectedPeaks());
  });

  it('give the same windows when event time advances in 1 s steps instead', () => {
    const d = new TestDriver(planYamlBuiltin(chainedAggregatesYaml('steps', 'in', 'out')));
    for (const r of burst()) d.pipe('metrics', metric(r.timestamp, r.host), { key: r.host });
    // Records of another host, starting after the windows holding the burst.
    for (let s = 10; s <= 70; s++) d.pipe('metrics', metric(T0 + s * 1000, 'z'), { key: 'z' });
    expect(d.deadLetters()).toEqual([]);
    expect(peaks(d).filter((p) => p.upstream_start <= T0)).toEqual(expectedPeaks());
  });

  it('with several upstream tasks, wait for all of them', () => {
    const d = new TestDriver(planYamlBuiltin(chainedAggregatesYaml('wide', 'in', 'out', 3)));
    for (const r of burst()) d.pipe('metrics', metric(r.timestamp, r.host), { key: r.host });
    // The jump reaches every upstream task (a host per partition).
    const hosts = new Map<number, string>();
    for (let i = 0; hosts.size < 3; i++) hosts.set(partitionOf(`j${i}`, 3, 0), `j${i}`);
    for (const h of hosts.values()) d.pipe('metrics', metric(T0 + 60_000, h), { key: h });
    expect(d.deadLetters()).toEqual([]);
    expect(peaks(d).filter((p) => p.upstream_start <= T0)).toEqual(expectedPeaks());
  });
});

describe('an aggregate feeding another in the same sub-topology', () => {
  it('needs no extra grace downstream: its results are on time', () => {
    const yaml = `
version: 1
name: same-task
sources:
  - name: metrics
    topic: in
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
operators:
  - name: per-second
    type: aggregate
    group_by: [host]
    window: { type: tumbling, size: 1s }
    grace: 500ms
    aggregations:
      n: { fn: count }
  - name: per-ten
    type: aggregate
    group_by: [host]
    window: { type: tumbling, size: 10s }
    aggregations:
      seconds: { fn: count }
      total: { fn: sum, field: n }
sinks:
  - name: out
    topic: out
`;
    const d = new TestDriver(planYamlBuiltin(yaml));
    // Up to T0 + 10.4 s: the second [T0 + 9 s, T0 + 10 s) is still open upstream (grace 500 ms), so
    // the ten seconds downstream must wait for it although event time passed their end.
    for (let i = 0; i <= 104; i++) d.pipe('metrics', metric(T0 + i * 100, 'a'), { key: 'a' });
    expect(d.output('out')).toEqual([]);
    d.pipe('metrics', metric(T0 + 30_000, 'a'), { key: 'a' });
    expect(d.deadLetters()).toEqual([]);
    const out = d.output('out').map((r) => r.value);
    expect(out).toEqual([
      { host: 'a', window_start: T0, window_end: T0 + 10_000, seconds: 10, total: 100 },
      { host: 'a', window_start: T0 + 10_000, window_end: T0 + 20_000, seconds: 1, total: 5 },
    ]);
  });
});
