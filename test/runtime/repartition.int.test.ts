// Repartition topics on the real broker: chained aggregates give every window when event time
// jumps, records with month-old timestamps pass through a repartition topic that has unlimited
// retention and is purged once its records are committed, and an input gathered into one partition
// (incident without scope) relates records of every partition.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaClient } from '../../connectors/kafka-client.ts';
import type { OutRecord } from '../../connectors/kafka-client.ts';
import { brokers, createTopics, uniqueName } from '../kafka.ts';
import { planYaml, produceRaw, readAll, readUntil, startRunner, testRegistry, waitFor } from '../helpers/pipeline.ts';
import type { Registry } from '../helpers/pipeline.ts';
import { T0, burst, chainedAggregatesYaml, expectedPeaks, metric } from '../helpers/chained-aggregates.ts';

let registry: Registry;

beforeAll(async () => {
  registry = await testRegistry();
});
afterAll(async () => {
  await registry?.close();
});

const encoder = (topic: string) => registry.encoder(topic, 'vigil.telemetry.MetricSample');

describe('repartition topics on the real broker', () => {
  it('chained aggregates give every window, complete, when event time jumps 60 s', async () => {
    const name = uniqueName('chained');
    const input = `${name}.metrics`;
    const output = `${name}.peaks`;
    await createTopics([input], { partitions: 2 });
    const encode = await encoder(input);
    const records = burst().map((r) => encode(r.host, metric(r.timestamp, r.host)));
    // The jump reaches both partitions (the hosts spread over them).
    for (let i = 0; i < 8; i++) records.push(encode(`j${i}`, metric(T0 + 60_000, `j${i}`)));
    await produceRaw(records);
    const runner = await startRunner(planYaml(chainedAggregatesYaml(name, input, output, 2)), registry.serde);
    try {
      const out = await registry.decodeValues(await readUntil(output, 5));
      const peaks = out.map((v) => ({ upstream_start: v.upstream_start as number, top: v.top as number, hosts: v.hosts as number })).sort((a, b) => a.upstream_start - b.upstream_start);
      expect(peaks).toEqual(expectedPeaks());
      expect(await readAll(`${name}.dlq`, { idleMs: 1500 })).toEqual([]);
    } finally {
      await runner.stop();
    }
  });

  it('passes records with month-old timestamps through a repartition topic with unlimited retention, and purges what it committed', async () => {
    const name = uniqueName('replay');
    const input = `${name}.metrics`;
    const output = `${name}.per-metric`;
    await createTopics([input], { partitions: 2 });
    const encode = await encoder(input);
    const start = Date.now() - 30 * 86_400_000;
    const hosts = ['a', 'b', 'c', 'd'];
    const metrics = ['cpu', 'mem', 'disk'];
    const records: OutRecord[] = [];
    const windows = new Map<string, number>();
    // Ten minutes of the past month; the Kafka timestamps are that old too.
    for (let i = 0; i < 600; i++) {
      const t = start + i * 1000;
      const host = hosts[i % hosts.length]!;
      const m = metrics[i % metrics.length]!;
      records.push(encode(host, { ...metric(t, host), name: m }, { timestamp: t }));
      const w = `${m}@${Math.floor(t / 60_000) * 60_000}`;
      windows.set(w, (windows.get(w) ?? 0) + 1);
    }
    // A later record on every partition moves the watermark past the ten minutes.
    for (const host of hosts) records.push(encode(host, { ...metric(start + 700_000, host), name: 'cpu' }, { timestamp: start + 700_000 }));
    await produceRaw(records);
    const yaml = `
version: 1
name: ${name}
commit_interval: 200ms
sources:
  - name: metrics
    topic: ${input}
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
    partitions: 2
operators:
  - name: per-metric
    type: aggregate
    group_by: [name]
    window: { type: tumbling, size: 1m }
    aggregations:
      n: { fn: count }
sinks:
  - name: out
    topic: ${output}
`;
    const plan = planYaml(yaml);
    const repartition = plan.internalTopics.find((t) => t.kind === 'repartition')!.name;
    const runner = await startRunner(plan, registry.serde, { purgeIntervalMs: 300 });
    const admin = new KafkaClient({ brokers: brokers() }).admin();
    try {
      // The last record moves the watermark past every window of the ten minutes: each is complete.
      const out = await registry.decodeValues(await readUntil(output, windows.size));
      expect(new Map(out.map((v) => [`${v.name}@${v.window_start}`, v.n as number]))).toEqual(windows);
      const configs = await admin.topicConfigs(repartition);
      expect(configs['retention.ms']).toBe('-1');
      expect(configs['cleanup.policy']).toBe('delete');
      // Once committed, the repartition topic's records are deleted: its log start offset moves up.
      await waitFor(async () => (await admin.offsets(repartition)).some((o) => BigInt(o.low) > 0n), 60_000, `a purge of ${repartition}`);
    } finally {
      await admin.disconnect();
      await runner.stop();
    }
  });

  it('gathers the alerts of four partitions into one task: a cascade across partitions is one incident', async () => {
    const name = uniqueName('gather');
    const input = `${name}.alerts`;
    const output = `${name}.incidents`;
    await createTopics([input], { partitions: 4 });
    const encode = await registry.encoder(input, 'vigil.alerting.Alert');
    const services = ['lb', 'web', 'api', 'db', 'cache', 'queue'];
    const alert = (entity: string, t: number) => ({ id: entity, timestamp: t, rule: 'r', entity, summary: 's', labels: {} });
    // Keyed by service, so they spread over the partitions; one more at every partition, an hour later, closes it.
    const records = services.map((s, i) => encode(s, alert(s, T0 + i * 1000), { partition: i % 4 }));
    for (let p = 0; p < 4; p++) records.push(encode(`late-${p}`, alert(`late-${p}`, T0 + 3_600_000), { partition: p }));
    await produceRaw(records);
    const yaml = `
version: 1
name: ${name}
commit_interval: 200ms
sources:
  - { name: alerts, topic: ${input}, schema: vigil.alerting.Alert, key: [entity], timestamp: timestamp, partitions: 4 }
operators:
  - name: grouped
    type: incident
    entity: entity
    wall_clock: false
    depends_on: { lb: [web], web: [api], api: [db, cache], worker: [db, queue] }
sinks:
  - { name: out, topic: ${output} }
`;
    const plan = planYaml(yaml);
    expect(plan.internalTopics.filter((t) => t.kind === 'repartition').map((t) => t.partitions)).toEqual([1]);
    const runner = await startRunner(plan, registry.serde);
    try {
      const out = await registry.decodeValues(await readUntil(output, 1, { timeoutMs: 120_000 }));
      const closed = await waitForClosed(output, out);
      // queue joins too: two links from db (through worker, which did not alert). db and cache each explain
      // four members (lb, web, api and themselves); db signalled first.
      expect(closed).toMatchObject({ root: 'db', entities: 6, root_explains: 4 });
      expect(new Set((closed.members as Array<{ entity: string }>).map((m) => m.entity))).toEqual(new Set(services));
    } finally {
      await runner.stop();
    }
  });
});

/** Reads the incidents topic until the first incident is closed; returns its closed record. */
async function waitForClosed(topic: string, first: Array<Record<string, unknown>>): Promise<Record<string, unknown>> {
  let all = first;
  await waitFor(async () => {
    all = await registry.decodeValues(await readAll(topic, { idleMs: 500 }));
    return all.some((v) => v.status === 'closed' && v.incident === all[0]!.incident);
  }, 120_000, `the first incident of ${topic} closed`);
  return all.find((v) => v.status === 'closed' && v.incident === all[0]!.incident)!;
}
