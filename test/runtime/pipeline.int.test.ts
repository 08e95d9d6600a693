// End to end on the real broker: Avro telemetry in, transformed and filtered alerts out;
// poison records to the dead-letter topic; a killed and restarted `vigil run` loses nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Partitioners } from 'kafkajs';
import { TelemetryGenerator } from '../../connectors/telemetry-generator.ts';
import { KafkaClient } from '../../connectors/kafka-client.ts';
import type { OutRecord } from '../../connectors/kafka-client.ts';
import { loadSchemaCatalog } from '../../schemas/serde.ts';
import { readTopic } from '../../connectors/topic-reader.ts';
import { DLQ_HEADERS } from '../../runtime/dead-letter.ts';
import { brokers, createTopics, uniqueName } from '../kafka.ts';
import {
  exited,
  planYaml,
  produceRaw,
  readUntil,
  spawnVigil,
  startRunner,
  testRegistry,
  topologyFile,
  waitFor,
} from '../helpers/pipeline.ts';
import type { Registry } from '../helpers/pipeline.ts';

const catalog = loadSchemaCatalog();
let registry: Registry;

beforeAll(async () => {
  registry = await testRegistry();
});
afterAll(async () => {
  await registry?.close();
});

function topology(name: string, input: string, output: string, where = 'name == "cpu.utilization" && value > 60') {
  return `
version: 1
name: ${name}
guarantee: at_least_once
commit_interval: 500ms
dead_letter_topic: ${name}.dlq
sources:
  - name: metrics
    topic: ${input}
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
    partitions: 2
operators:
  - name: sane
    type: validate
    rules:
      - check: value >= 0
        reason: negative measurement
  - name: hot
    type: filter
    where: ${where}
  - name: alert
    type: map
    schema: vigil.alerting.Alert
    fields:
      id: host + ":" + string(timestamp)
      timestamp: timestamp
      rule: '"cpu-hot"'
      entity: host
      summary: '"CPU at " + string(round(value, 1)) + "% on " + host'
      value: value
      threshold: '60'
sinks:
  - name: alerts
    topic: ${output}
    schema: vigil.alerting.Alert
    key: entity
`;
}

async function encodeMetrics(topic: string, n: number, seed: number) {
  const id = await registry.serde.register(`${topic}-value`, catalog.get('vigil.telemetry.MetricSample')!);
  const gen = new TelemetryGenerator({ kind: 'metric', keys: 8, seed, startTime: 1_700_000_000_000, stepMs: 1, anomalyFraction: 0.3 });
  const values: Array<Record<string, unknown>> = [];
  const records: OutRecord[] = [];
  for (let i = 0; i < n; i++) {
    const r = gen.next();
    values.push(r.value);
    records.push({ topic, key: r.key, value: registry.serde.encode(id, r.value) });
  }
  return { values, records, id };
}

const isHot = (v: Record<string, unknown>) => v.name === 'cpu.utilization' && (v.value as number) > 60;

describe('a topology on the real broker', () => {
  it('turns Avro telemetry into filtered, transformed Avro alerts', async () => {
    const name = uniqueName('e2e');
    const input = `${name}.metrics`;
    const output = `${name}.alerts`;
    await createTopics([input], { partitions: 2 });
    const { values, records } = await encodeMetrics(input, 400, 7);
    await produceRaw(records);
    const expected = values.filter(isHot);
    expect(expected.length).toBeGreaterThan(10);

    const runner = await startRunner(planYaml(topology(name, input, output)), registry.serde, { metricsPort: 0 });
    try {
      const out = await readUntil(output, expected.length);
      // Observability: Prometheus metrics per operator, and readiness once restored.
      const health = await fetch(`${runner.metricsUrl}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ready', topology: name });
      // Offsets commit once per commit_interval (500 ms here): wait for the first commit.
      const scrape = async () => (await fetch(`${runner.metricsUrl}/metrics`)).text();
      await waitFor(async () => /vigil_commit_seconds_count\{[^}]*guarantee="at_least_once"\} [1-9]/.test(await scrape()), 30_000, 'a commit');
      const metrics = await scrape();
      expect(metrics).toContain(`vigil_operator_records_in_total{topology="${name}",node="sane"} ${values.length}`);
      expect(metrics).toContain(`vigil_operator_records_out_total{topology="${name}",node="hot"} ${expected.length}`);
      expect(metrics).toMatch(new RegExp(`vigil_records_consumed_total\\{topology="${name}",topic="${input}"\\} ${values.length}`));
      expect(metrics).toMatch(/vigil_commit_seconds_count\{[^}]*guarantee="at_least_once"\} [1-9]/);
      expect(metrics).toMatch(/vigil_consumer_lag\{/);
      const alerts = await Promise.all(out.map(async (r) => ({ key: r.key?.toString(), value: (await registry.serde.decodeAsync(r.value!)).value })));
      const byId = new Map(alerts.map((a) => [a.value.id as string, a]));
      expect(byId.size).toBe(expected.length);
      for (const v of expected) {
        const a = byId.get(`${v.host}:${v.timestamp}`);
        expect(a, `alert for ${v.host}@${v.timestamp}`).toBeDefined();
        expect(a!.key).toBe(v.host);
        expect(a!.value).toMatchObject({ rule: 'cpu-hot', entity: v.host, value: v.value, threshold: 60, category: 'UNCLASSIFIED', priority: 3 });
        expect(a!.value.summary).toMatch(/^CPU at [\d.]+% on host-\d$/);
      }
    } finally {
      await runner.stop();
    }
  });

  it('sends poison records to the dead-letter topic with their reason while every good record arrives', async () => {
    const name = uniqueName('poison');
    const input = `${name}.metrics`;
    const output = `${name}.alerts`;
    await createTopics([input], { partitions: 1 });
    const { values, records, id } = await encodeMetrics(input, 60, 11);
    const good = values.filter(isHot);
    const negative = { ...values[0]!, name: 'cpu.utilization', value: -5, timestamp: 1 };
    const poison: OutRecord[] = [
      { topic: input, key: 'p1', value: Buffer.from('{"not":"avro"}') },
      { topic: input, key: 'p2', value: Buffer.concat([Buffer.from([0, 0, 0x0f, 0x42, 0x3f]), Buffer.from('xyz')]) },
      { topic: input, key: 'p3', value: registry.serde.encode(id, negative) },
      { topic: input, key: 'p4', value: Buffer.from([0, 0, 0, 0]) },
    ];
    // Interleave: poison at the start, in the middle and at the end.
    const mixed = [poison[0]!, ...records.slice(0, 30), poison[1]!, poison[2]!, ...records.slice(30), poison[3]!];
    await produceRaw(mixed);

    const runner = await startRunner(planYaml(topology(name, input, output)), registry.serde);
    try {
      const dead = await readUntil(`${name}.dlq`, 4);
      const out = await readUntil(output, good.length);
      expect(out).toHaveLength(good.length);
      const byKey = new Map(dead.map((d) => [d.key?.toString(), d]));
      const offsets = new Map(mixed.map((m, i) => [m.key as string, String(i)]));
      const expectations: Array<[string, string, string, RegExp]> = [
        ['p1', 'decode', 'bad-magic', /magic byte.*0x7b/i],
        ['p2', 'decode', 'unknown-schema-id', /999999/],
        ['p3', 'operator', 'validation-failed', /negative measurement/],
        ['p4', 'decode', 'buffer-too-short', /4 byte/],
      ];
      for (const [key, stage, reason, message] of expectations) {
        const d = byKey.get(key);
        expect(d, `dead letter for ${key}`).toBeDefined();
        expect(d!.headers[DLQ_HEADERS.stage]).toBe(stage);
        expect(d!.headers[DLQ_HEADERS.reason]).toBe(reason);
        expect(d!.headers[DLQ_HEADERS.message]).toMatch(message);
        expect(d!.headers[DLQ_HEADERS.topic]).toBe(input);
        expect(d!.headers[DLQ_HEADERS.partition]).toBe('0');
        expect(d!.headers[DLQ_HEADERS.offset]).toBe(offsets.get(key));
        // Nothing is lost: the dead letter carries the original bytes.
        expect(d!.value).toEqual(mixed.find((m) => m.key === key)!.value);
      }
      expect(byKey.get('p3')!.headers[DLQ_HEADERS.node]).toBe('sane');
    } finally {
      await runner.stop();
    }
  });

  it('regroups through an internal repartition topic and aggregates by the new key', async () => {
    const name = uniqueName('regroup');
    const input = `${name}.metrics`;
    const output = `${name}.by-metric`;
    await createTopics([input], { partitions: 2 });
    const yaml = `
version: 1
name: ${name}
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
    window: { type: tumbling, size: 1s }
    aggregations:
      n: { fn: count }
      total: { fn: sum, field: value }
sinks:
  - name: out
    topic: ${output}
`;
    const plan = planYaml(yaml);
    expect(plan.internalTopics.map((t) => t.kind)).toContain('repartition');
    const id = await registry.serde.register(`${input}-value`, catalog.get('vigil.telemetry.MetricSample')!);
    const gen = new TelemetryGenerator({ kind: 'metric', keys: 10, seed: 5, startTime: 1_700_000_000_000, stepMs: 3 });
    const records: OutRecord[] = [];
    const expected = new Map<string, { n: number; total: number }>();
    let last = 0;
    for (let i = 0; i < 3000; i++) {
      const r = gen.next();
      const v: Record<string, unknown> = { ...r.value, value: Math.round(r.value.value as number) };
      records.push({ topic: input, key: r.key, value: registry.serde.encode(id, v) });
      const ts = v.timestamp as number;
      last = ts;
      const k = `${v.name}@${ts - (ts % 1000)}`;
      const e = expected.get(k) ?? { n: 0, total: 0 };
      e.n++;
      e.total += v.value as number;
      expected.set(k, e);
    }
    // Far-future records from every input partition, with names that land on every repartition
    // partition, move every watermark (the minimum over the upstream tasks) past all windows.
    const partitionOf = Partitioners.DefaultPartitioner();
    const flushNames = new Map<number, string>();
    for (let i = 0; flushNames.size < 2; i++) {
      const p = partitionOf({ topic: 'x', partitionMetadata: [{ partitionId: 0 }, { partitionId: 1 }] as never, message: { key: `flush-${i}`, value: null } });
      if (!flushNames.has(p)) flushNames.set(p, `flush-${i}`);
    }
    for (const partition of [0, 1])
      for (const flush of flushNames.values())
        records.push({ topic: input, partition, key: 'flush', value: registry.serde.encode(id, { timestamp: last + 3_600_000, name: flush, host: 'flush', value: 0, unit: null, tags: {} }) });
    await produceRaw(records);
    const runner = await startRunner(plan, registry.serde);
    try {
      const out = await readUntil(output, expected.size);
      const got = new Map<string, { n: number; total: number }>();
      for (const r of out) {
        const v = (await registry.serde.decodeAsync(r.value!)).value;
        expect(r.key?.toString()).toBe(v.name);
        got.set(`${v.name}@${v.window_start}`, { n: Number(v.n), total: Number(v.total) });
      }
      expect(got).toEqual(expected);
    } finally {
      await runner.stop();
    }
  });

  it('commits what it processed when stopped with SIGTERM, even long before its commit interval', async () => {
    const name = uniqueName('graceful');
    const input = `${name}.metrics`;
    const output = `${name}.alerts`;
    await createTopics([input], { partitions: 2 });
    const file = topologyFile(topology(name, input, output).replace('commit_interval: 500ms', 'commit_interval: 1h'));
    const { values, records } = await encodeMetrics(input, 500, 13);
    await produceRaw(records);
    const child = spawnVigil(['run', file, '--metrics-port', '0'], { KAFKA_BROKERS: brokers().join(','), SCHEMA_REGISTRY_URL: registry.url });
    try {
      await readUntil(output, values.filter(isHot).length);
      child.kill('SIGTERM');
      expect(await exited(child)).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const admin = new KafkaClient({ brokers: brokers() }).admin();
    try {
      const ends = await admin.offsets(input);
      const committed = await admin.groupOffsets(name, input);
      expect(committed.sort((a, b) => a.partition - b.partition).map((c) => c.offset)).toEqual(ends.sort((a, b) => a.partition - b.partition).map((e) => e.high));
    } finally {
      await admin.disconnect();
    }
  });

  it('delivers every input record at least once when `vigil run` is killed mid-stream and restarted', async () => {
    const name = uniqueName('crash');
    const input = `${name}.metrics`;
    const output = `${name}.alerts`;
    await createTopics([input], { partitions: 2 });
    const file = topologyFile(topology(name, input, output, 'value >= 0'));
    const env = { KAFKA_BROKERS: brokers().join(','), SCHEMA_REGISTRY_URL: registry.url };
    const { values, records } = await encodeMetrics(input, 6000, 3);

    // One reader for the whole test collects the ids of the alerts as they are written.
    const seen: string[] = [];
    const stopReading = new AbortController();
    let decoding = Promise.resolve();
    const reading = readTopic({
      brokers: brokers(),
      topic: output,
      signal: stopReading.signal,
      onRecord: (r) => {
        decoding = decoding.then(async () => void seen.push((await registry.serde.decodeAsync(r.value!)).value.id as string));
      },
    });
    const want = new Set(values.map((v) => `${v.host}:${v.timestamp}`));
    const first = spawnVigil(['run', file, '--metrics-port', '0', '--session-timeout', '8000'], env);
    try {
      // Produce while it runs (paced over several seconds); kill it once part of the output is there.
      const producing = produceRaw(records, { chunk: 100, pauseMs: 100 });
      await waitFor(() => seen.length >= 1000, 90_000, `the first outputs (${first.output().slice(-500)})`);
      first.kill('SIGKILL');
      await exited(first);
      await producing;
    } finally {
      if (first.exitCode === null) first.kill('SIGKILL');
    }
    await decoding;
    // Killed mid-stream: part of the input has no output yet.
    const beforeRestart = new Set(seen).size;
    expect(beforeRestart).toBeLessThan(want.size);

    const second = spawnVigil(['run', file, '--metrics-port', '0', '--session-timeout', '8000'], env);
    try {
      await waitFor(() => [...want].every((id) => seen.includes(id)), 120_000, `all ${want.size} inputs in the output (second run: ${second.output().slice(-500)})`);
      // A graceful stop (SIGTERM) ends with exit code 0.
      second.kill('SIGTERM');
      expect(await exited(second)).toBe(0);
    } finally {
      if (second.exitCode === null) second.kill('SIGKILL');
      stopReading.abort();
      await reading;
    }
    expect([...want].filter((id) => !seen.includes(id))).toEqual([]);
  });
});
