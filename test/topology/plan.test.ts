import { describe, expect, it } from 'vitest';
import type { OperatorDefinition } from '../../kernel/operator.ts';
import { compiled } from '../../kernel/operator.ts';
import { operatorRegistry } from '../../operators/registry.ts';
import { parseTopology } from '../../topology/loader.ts';
import { changelogTopicName, describePlan, planTopology, repartitionTopicName } from '../../topology/plan.ts';
import { TopologyError } from '../../kernel/diagnostics.ts';

/** A stand-in for a grouping operator: needs records partitioned by `by` on each input, keeps two stores. */
const groupOf = (type: string, inputs: string[]): OperatorDefinition<{ by: string[] }> => ({
  type,
  category: 'analysis',
  summary: 'Test operator that groups by fields.',
  config: { by: { kind: 'array', min: 1, items: { kind: 'field', description: 'f' }, description: 'group-by fields' } },
  ...(inputs.length > 1 ? { inputs: inputs.map((name) => ({ name, description: name })) } : {}),
  compile: (c, ctx) =>
    compiled({
      outputs: [{ name: 'out', schema: ctx.inputs[0]!.schema, keyFields: c.by }],
      partitionBy: Object.fromEntries(ctx.inputs.map((i) => [i.name, c.by])),
      stores: [
        { name: 'counts', kind: 'kv', value: 'long' },
        { name: 'windows', kind: 'window', value: 'long', retentionMs: 60_000 },
      ],
      create: () => ({ process() {} }),
    }),
});
const operators = new Map([...operatorRegistry, ['group', groupOf('group', ['in']) as OperatorDefinition<any>], ['group2', groupOf('group2', ['a', 'b']) as OperatorDefinition<any>]]);

const plan = (text: string) => planTopology(parseTopology(`version: 1\nname: app\n${text}`, 'plan.yaml', { env: {}, operators }));

const metrics = (extra = '') => `  - {name: metrics, topic: telemetry.metrics, schema: vigil.telemetry.MetricSample${extra}}\n`;

describe('planTopology', () => {
  it('keeps a chain on an already keyed source in one sub-topology, with changelog topics', () => {
    const p = plan(`sources:
${metrics(', key: [host], partitions: 6')}operators:
  - {name: hot, type: filter, where: "value > 90"}
  - {name: per-host, type: group, by: host}
sinks:
  - {name: out, topic: out, schema: vigil.telemetry.MetricSample}
`);
    expect(p.subtopologies).toHaveLength(1);
    const st = p.subtopologies[0];
    expect(st.partitions).toBe(6);
    expect(st.sources.map((s) => [s.name, s.topic, s.downstream])).toEqual([['metrics', 'telemetry.metrics', [{ node: 'hot', input: 'in' }]]]);
    expect(st.nodes.map((n) => [n.name, n.outputs.map((o) => o.downstream)])).toEqual([
      ['hot', [[{ node: 'per-host', input: 'in' }]]],
      ['per-host', [[{ sink: 'out' }]]],
    ]);
    expect(st.nodes[1].stores).toEqual([
      { name: 'counts', kind: 'kv', value: 'long', changelogTopic: 'app-per-host-counts-changelog' },
      { name: 'windows', kind: 'window', value: 'long', retentionMs: 60_000, changelogTopic: 'app-per-host-windows-changelog' },
    ]);
    expect(st.sinks).toEqual([{ name: 'out', topic: 'out', schemaName: 'vigil.telemetry.MetricSample', schema: st.sources[0].schema, internal: false }]);
    expect(p.internalTopics).toEqual([
      { name: 'app-per-host-counts-changelog', kind: 'changelog', partitions: 6, configs: { 'cleanup.policy': 'compact' } },
      { name: 'app-per-host-windows-changelog', kind: 'changelog', partitions: 6, configs: { 'cleanup.policy': 'compact' } },
    ]);
    expect(changelogTopicName('a', 'b', 'c')).toBe('a-b-c-changelog');
  });

  it('inserts a repartition topic when the input is keyed differently and splits there', () => {
    const p = plan(`sources:
${metrics(', key: [host], partitions: 4, timestamp: timestamp, max_out_of_order: 5s')}operators:
  - {name: hot, type: filter, where: "value > 90"}
  - {name: per-metric, type: group, by: name}
  - {name: after, type: filter, where: "true"}
sinks:
  - {name: out, topic: out, schema: vigil.telemetry.MetricSample}
`);
    const topic = repartitionTopicName('app', 'per-metric');
    expect(topic).toBe('app-per-metric-repartition');
    expect(p.subtopologies).toHaveLength(2);
    const [a, b] = p.subtopologies;
    expect(a.nodes.map((n) => n.name)).toEqual(['hot']);
    expect(a.nodes[0].outputs[0].downstream).toEqual([{ sink: topic }]);
    expect(a.sinks).toMatchObject([{ name: topic, topic, internal: true, keyField: 'name', keyFields: ['name'], schemaName: 'vigil.telemetry.MetricSample' }]);
    expect(b.sources).toMatchObject([{ name: 'hot', topic, downstream: [{ node: 'per-metric', input: 'in' }], maxOutOfOrderMs: 5000, idleTimeoutMs: 30_000 }]);
    expect(b.sources[0].timestampField).toBeUndefined();
    expect(b.nodes.map((n) => n.name)).toEqual(['per-metric', 'after']);
    expect(b.partitions).toBe(4);
    expect(p.internalTopics.map((t) => [t.name, t.kind, t.partitions])).toEqual([
      [topic, 'repartition', 4],
      ['app-per-metric-counts-changelog', 'changelog', 4],
      ['app-per-metric-windows-changelog', 'changelog', 4],
    ]);
    expect(describePlan(p)).toContain(`repartition ${topic} [vigil.telemetry.MetricSample] key: name`);
  });

  it('repartitions a source without a declared key, directly from the source', () => {
    const p = plan(`sources:
${metrics(', partitions: 3')}operators:
  - {name: g, type: group, by: [host, name]}
`);
    expect(p.subtopologies.map((s) => [s.sources.map((x) => x.topic), s.sinks.map((x) => x.name), s.partitions])).toEqual([
      [['telemetry.metrics'], ['app-g-repartition'], 3],
      [['app-g-repartition'], [], 3],
    ]);
    expect(p.subtopologies[0].sources[0].downstream).toEqual([{ sink: 'app-g-repartition' }]);
    expect(p.subtopologies[0].sinks[0].keyField).toBeUndefined();
    expect(p.subtopologies[0].sinks[0].keyFields).toEqual(['host', 'name']);
  });

  it('gathers an input into one partition (incident without scope) unless every source upstream has one partition', () => {
    const incident = `  - {name: i, type: incident, entity: host, wall_clock: false, depends_on: {a: [b]}}\n`;
    const p = plan(`sources:\n${metrics(', key: [host], partitions: 4')}operators:\n  - {name: f, type: filter, where: value > 1}\n${incident}`);
    expect(p.subtopologies.map((s) => [s.sources.map((x) => x.topic), s.nodes.map((n) => n.name), s.sinks.map((x) => x.name), s.partitions])).toEqual([
      [['telemetry.metrics'], ['f'], ['app-i-repartition'], 4],
      [['app-i-repartition'], ['i'], [], 1],
    ]);
    // Records keep their keys (no key fields): the topic's one partition takes them all.
    expect(p.subtopologies[0]!.sinks[0]!.keyFields).toEqual([]);
    expect(p.internalTopics.filter((x) => x.kind === 'repartition').map((x) => [x.name, x.partitions])).toEqual([['app-i-repartition', 1]]);
    expect(describePlan(p)).toContain('repartition app-i-repartition [vigil.telemetry.MetricSample] (gathered into one partition)');
    const one = plan(`sources:\n${metrics(', key: [host], partitions: 1')}operators:\n  - {name: f, type: filter, where: value > 1}\n${incident}`);
    expect(one.subtopologies.map((s) => s.partitions)).toEqual([1]);
    expect(one.internalTopics.filter((x) => x.kind === 'repartition')).toEqual([]);
  });

  it('follows keys through map: renamed pass-through keeps the partitioning, a changed field does not', () => {
    const renamed = plan(`sources:
${metrics(', key: [host]')}operators:
  - {name: shape, type: map, fields: {entity: host, v: value}}
  - {name: g, type: group, by: entity}
`);
    expect(renamed.subtopologies).toHaveLength(1);
    const changed = plan(`sources:
${metrics(', key: [host]')}operators:
  - {name: shape, type: map, keep_input: true, fields: {host: upper(host)}}
  - {name: g, type: group, by: host}
`);
    expect(changed.subtopologies).toHaveLength(2);
    const kept = plan(`sources:
${metrics(', key: [host]')}operators:
  - {name: shape, type: transform, keep_input: true, fields: {v: value * 2}}
  - {name: g, type: group, by: host}
`);
    expect(kept.subtopologies).toHaveLength(1);
  });

  it('groups everything reading one source into one sub-topology, and separate sources apart', () => {
    const p = plan(`sources:
${metrics()}  - {name: logs, topic: telemetry.logs, schema: vigil.telemetry.LogLine}
operators:
  - {name: a, type: filter, from: metrics, where: "value > 1"}
  - {name: b, type: filter, from: metrics, where: "value < 1"}
  - {name: c, type: filter, from: logs, where: "true"}
sinks:
  - {name: sa, from: a, topic: sa, schema: vigil.telemetry.MetricSample}
  - {name: sb, from: b, topic: sb, schema: vigil.telemetry.MetricSample}
`);
    expect(p.subtopologies.map((s) => s.nodes.map((n) => n.name))).toEqual([['a', 'b'], ['c']]);
    expect(p.subtopologies[0].sources[0].downstream).toEqual([{ node: 'a', input: 'in' }, { node: 'b', input: 'in' }]);
    expect(p.subtopologies[0].sinks.map((s) => s.name)).toEqual(['sa', 'sb']);
  });

  it('co-partitions a multi-input operator: same counts required, repartition topics named per input', () => {
    const ok = plan(`sources:
${metrics(', key: [host], partitions: 4')}  - {name: more, topic: more.metrics, schema: vigil.telemetry.MetricSample, key: [host], partitions: 4}
operators:
  - {name: both, type: group2, from: [metrics, more], by: host}
`);
    expect(ok.subtopologies).toHaveLength(1);
    expect(ok.subtopologies[0].sources.map((s) => s.name)).toEqual(['metrics', 'more']);

    const repart = plan(`sources:
${metrics(', partitions: 2')}  - {name: more, topic: more.metrics, schema: vigil.telemetry.MetricSample, partitions: 8}
operators:
  - {name: both, type: group2, from: {a: metrics, b: more}, by: host}
`);
    expect(repart.subtopologies.map((s) => s.partitions)).toEqual([2, 8, 8]);
    expect(repart.internalTopics.filter((t) => t.kind === 'repartition').map((t) => [t.name, t.partitions])).toEqual([
      ['app-both-a-repartition', 8],
      ['app-both-b-repartition', 8],
    ]);

    try {
      plan(`sources:
${metrics(', key: [host], partitions: 4')}  - {name: more, topic: more.metrics, schema: vigil.telemetry.MetricSample, key: [host], partitions: 6}
operators:
  - {name: both, type: group2, from: [metrics, more], by: host}
`);
      throw new Error('expected a co-partitioning error');
    } catch (e) {
      expect(e).toBeInstanceOf(TopologyError);
      expect((e as TopologyError).format().split('\n')).toEqual([
        "plan.yaml:4:5: sources 'metrics', 'more' feed one sub-topology and must have the same partition count, but have metrics (telemetry.metrics): 4, more (more.metrics): 6",
        "plan.yaml:5:5: sources 'metrics', 'more' feed one sub-topology and must have the same partition count, but have metrics (telemetry.metrics): 4, more (more.metrics): 6",
      ]);
    }
  });

  it('refuses internal topics that collide with the file\'s topics', () => {
    expect(() =>
      plan(`sources:
${metrics()}operators:
  - {name: g, type: group, by: host}
sinks:
  - {name: o, topic: app-g-repartition, schema: vigil.telemetry.MetricSample}
`),
    ).toThrow(/internal topic 'app-g-repartition' is also a topic of the file/);
  });
});
