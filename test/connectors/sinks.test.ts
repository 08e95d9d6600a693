// Sinks as an extension point: a sink type is one definition; a type that delivers outside Kafka
// gets an outbox topic and a delivery sub-topology of its own, planned and run like any other.
import { afterEach, describe, expect, it } from 'vitest';
import type { OperatorContext, StreamRecord } from '../../kernel/operator.ts';
import { DEFAULT_INPUT } from '../../kernel/operator.ts';
import type { SinkDefinition } from '../../kernel/sink.ts';
import type { TopologyError } from '../../kernel/diagnostics.ts';
import { kafkaSink, sinkRegistry } from '../../connectors/sinks.ts';
import { describePlan } from '../../topology/plan.ts';
import { TestDriver } from '../../runtime/test-driver.ts';
import { planYamlBuiltin } from '../helpers/topology.ts';
import { scriptedServer } from '../helpers/http-server.ts';
import type { ScriptedServer } from '../helpers/http-server.ts';

/** A test sink type: POSTs each record as JSON to `url`; a failure dead-letters the record. */
const postSink: SinkDefinition<{ url: string }> = {
  type: 'post',
  summary: 'Test sink: POSTs records.',
  config: { url: { kind: 'url', description: 'Where to.' } },
  compile(config) {
    return {
      ok: true,
      sink: {
        kind: 'deliver',
        description: `POST ${config.url}`,
        deliver: {
          outputs: [],
          create: () => ({
            process(record: StreamRecord, ctx: OperatorContext) {
              const body = JSON.stringify({ key: record.key, value: record.value });
              ctx.defer(fetch(config.url, { method: 'POST', body, headers: { 'content-type': 'application/json' } }), (res) => {
                if (!res.ok) ctx.deadLetter('delivery-failed', `HTTP ${res.status}`);
                else ctx.count('delivered');
              });
            },
          }),
        },
      },
    };
  },
};
const sinks = new Map([...sinkRegistry, ['post', postSink as SinkDefinition<any>]]);

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const yaml = (host: string) => `
version: 1
name: sinks-test
allowed_hosts: [${host}]
sources:
  - { name: metrics, topic: metrics, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp, partitions: 2 }
operators:
  - { name: hot, type: filter, where: value > 90 }
sinks:
  - { name: to-kafka, from: hot, topic: hot }
  - { name: hook, from: hot, type: post, url: "http://${host}/hook" }
`;

describe('sink types', () => {
  it('kafka is the default type, and its config is its own spec', () => {
    expect(sinkRegistry.get('kafka')).toBe(kafkaSink);
    expect(() => planYamlBuiltin(yaml('x.internal').replace('topic: hot }', 'topik: hot }'), 'sinks.yaml', { sinks })).toThrow(/unknown field 'topik' in sink 'to-kafka'; did you mean 'topic'\?/);
    expect(() => planYamlBuiltin(yaml('x.internal').replace('type: post', 'type: pots'), 'sinks.yaml', { sinks })).toThrow(/unknown sink type 'pots'; did you mean 'post'\? \(types: kafka, webhook, slack, pagerduty, alertmanager, post\)/);
  });

  it('a type that delivers outside Kafka gets an outbox topic and a delivery sub-topology', () => {
    const plan = planYamlBuiltin(yaml('x.internal'), 'sinks.yaml', { sinks });
    expect(plan.internalTopics.filter((t) => t.kind === 'outbox')).toEqual([
      { name: 'sinks-test-hook-outbox', kind: 'outbox', partitions: 2, configs: { 'cleanup.policy': 'delete', 'retention.ms': '-1', 'segment.ms': '600000' } },
    ]);
    const delivery = plan.subtopologies.at(-1)!;
    expect(delivery.sources.map((s) => [s.topic, s.downstream])).toEqual([['sinks-test-hook-outbox', [{ node: 'hook', input: DEFAULT_INPUT }]]]);
    expect(delivery.nodes.map((n) => [n.name, n.type])).toEqual([['hook', 'sink:post']]);
    expect(describePlan(plan)).toContain('outbox hook -> sinks-test-hook-outbox');
  });

  it('delivers each record through the outbox; a failure is dead-lettered, not lost', async () => {
    const seen: unknown[] = [];
    server = await scriptedServer((path, n) => (n === 2 ? { status: 500 } : { status: 204 }));
    const plan = planYamlBuiltin(yaml(server.host), 'sinks.yaml', { sinks });
    const d = new TestDriver(plan);
    for (const [i, host] of ['a', 'b', 'c'].entries()) await d.pipeAsync('metrics', { timestamp: i, name: 'cpu', host, value: 95, unit: null, tags: {} }, { key: host });
    await d.pipeAsync('metrics', { timestamp: 9, name: 'cpu', host: 'd', value: 5, unit: null, tags: {} }, { key: 'd' });
    seen.push(...server.requests);
    expect(seen).toEqual(['/hook', '/hook', '/hook']);
    expect(d.output('to-kafka').map((r) => r.key)).toEqual(['a', 'b', 'c']);
    expect(d.deadLetters().map((x) => [x.stage, x.reason, x.node, x.detail])).toEqual([['operator', 'delivery-failed', 'hook', 'HTTP 500']]);
  });

  it('refuses a receiver host that is not allowed', () => {
    try {
      planYamlBuiltin(yaml('x.internal').replace('http://x.internal/hook', 'http://y.internal/hook'), 'sinks.yaml', { sinks });
      throw new Error('accepted');
    } catch (e) {
      expect((e as TopologyError).format()).toMatch(/sinks\.yaml:11:\d+: host 'y\.internal:80' is not in the topology's allowed_hosts/);
    }
  });
});
