// Restore benchmark: how fast a task rebuilds a large store from its changelog, and how long an
// instance takes from start to ready (/health 200) with that much state to restore.
//
// It fills the changelog of a one-partition `aggregate` store with N distinct keys (one window
// each, values encoded as the operator's state is), then starts a Runner on the topology and times
// start -> ready. Run: `npx tsx bench/restore.ts [--keys 1000000]` (KAFKA_BROKERS, or a local
// broker is started for the run).
import { parseArgs } from 'node:util';
import { KafkaClient } from '../connectors/kafka-client.ts';
import type { OutRecord } from '../connectors/kafka-client.ts';
import { startLocalBroker } from '../connectors/local-broker.ts';
import { startRegistry } from '../schemas/registry/server.ts';
import { AvroSerde, loadSchemaCatalog } from '../schemas/serde.ts';
import { parseTopology } from '../topology/loader.ts';
import { operatorRegistry } from '../operators/registry.ts';
import { planTopology } from '../topology/plan.ts';
import { Runner } from '../runtime/runner.ts';
import { avroCodec, windowChangelogKey } from '../runtime/stores.ts';

export interface RestoreResult {
  keys: number;
  changelogBytes: number;
  fillSeconds: number;
  /** Changelog records replayed per second (the runner's own measurement). */
  restoreRecordsPerSecond: number;
  /** From Runner.start() to ready (every task restored). */
  timeToReadySeconds: number;
  /** Heap growth while the store was restored, per key. */
  heapBytesPerKey: number;
}

export async function runRestoreBenchmark(opts: { brokers: string[]; keys: number; log?: (l: string) => void }): Promise<RestoreResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const name = `restore-bench-${Date.now().toString(36)}`;
  const yaml = `
version: 1
name: ${name}
sources:
  - name: metrics
    topic: ${name}.in
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
operators:
  - name: hourly
    type: aggregate
    group_by: [host]
    window: { type: tumbling, size: 1h }
    aggregations:
      n: { fn: count }
      total: { fn: sum, field: value }
sinks:
  - name: out
    topic: ${name}.out
`;
  const plan = planTopology(parseTopology(yaml, 'restore-bench.yaml', { operators: operatorRegistry }));
  const store = plan.subtopologies[0]!.nodes[0]!.stores[0]!;
  // Values as the store writes them: the aggregate's states in Avro.
  const codec = avroCodec<unknown[]>(store.value, store.codec);
  const client = new KafkaClient({ brokers: opts.brokers, clientId: 'vigil-restore-bench' });
  const admin = client.admin();
  await admin.createTopics([{ topic: store.changelogTopic, partitions: 1, configs: { 'cleanup.policy': 'compact' } }]);
  const producer = client.producer();
  await producer.connect();
  const started = Date.now();
  let bytes = 0;
  const batch = 5000;
  for (let i = 0; i < opts.keys; i += batch) {
    const records: OutRecord[] = [];
    for (let k = i; k < Math.min(opts.keys, i + batch); k++) {
      const key = windowChangelogKey(`host-${k}`, 1_700_000_000_000 - (1_700_000_000_000 % 3_600_000));
      const value = codec.encode([k % 97, (k % 97) * 41.5]);
      bytes += key.length + value.length;
      records.push({ topic: store.changelogTopic, partition: 0, key, value });
    }
    await producer.send(records);
    if ((i / batch) % 40 === 0) log(`[restore-bench] changelog ${i + records.length}/${opts.keys}`);
  }
  await producer.disconnect();
  const fillSeconds = (Date.now() - started) / 1000;

  const registry = await startRegistry({ brokers: opts.brokers, port: 0, topic: `${name}-schemas` });
  const serde = new AvroSerde({ url: registry.url, catalog: loadSchemaCatalog() });
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const runner = new Runner({ plan, brokers: opts.brokers, serde, log });
  const t0 = Date.now();
  await runner.start();
  while (!runner.ready()) await new Promise((r) => setTimeout(r, 20));
  const timeToReadySeconds = (Date.now() - t0) / 1000;
  global.gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  const rate = (await runner.metrics.restoreRate.get()).values[0]?.value ?? 0;
  await runner.stop();
  await registry.close();
  await admin.deleteTopics([store.changelogTopic, `${name}.in`, `${name}.out`, `${name}.dlq`, `${name}-schemas`]).catch(() => undefined);
  await admin.disconnect();
  return {
    keys: opts.keys,
    changelogBytes: bytes,
    fillSeconds,
    restoreRecordsPerSecond: Math.round(rate),
    timeToReadySeconds,
    heapBytesPerKey: Math.round((heapAfter - heapBefore) / opts.keys),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { keys: { type: 'string', default: '1000000' } } });
  const env = process.env.KAFKA_BROKERS;
  const broker = env ? undefined : await startLocalBroker({ heapMb: 1024 });
  const brokers = env ? env.split(',') : [broker!.brokers];
  try {
    const r = await runRestoreBenchmark({ brokers, keys: Number(values.keys) });
    process.stdout.write(
      `restore of ${r.keys.toLocaleString('en')} keys (${(r.changelogBytes / 1e6).toFixed(1)} MB of changelog): ` +
        `${r.restoreRecordsPerSecond.toLocaleString('en')} records/s, ready in ${r.timeToReadySeconds.toFixed(1)} s, ` +
        `~${r.heapBytesPerKey} heap bytes per key (changelog filled in ${r.fillSeconds.toFixed(1)} s)\n`,
    );
  } finally {
    await broker?.stop();
  }
}
