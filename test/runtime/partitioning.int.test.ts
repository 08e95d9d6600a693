// Producers that do not partition like Kafka's Java client (librdkafka's default hashes keys with
// crc32): a source's `key:` then promises co-location the topic does not have. Two producers write
// one host's records, one placing them by murmur2 (kafkajs, Java) and one by crc32 (librdkafka's
// default): trusting the key, the host's window comes out as two rows, and Vigil says so (a
// warning naming the record, and a metric); with `partitioner: unknown` the planner repartitions
// and the window is one row with every record.
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { murmur2Partition } from '../../connectors/kafka-client.ts';
import { createTopics, uniqueName } from '../kafka.ts';
import { planYaml, produceRaw, readUntil, startRunner, testRegistry } from '../helpers/pipeline.ts';
import type { Registry } from '../helpers/pipeline.ts';

let registry: Registry;
beforeAll(async () => {
  registry = await testRegistry();
});
afterAll(async () => {
  await registry?.close();
});

const T0 = 1_700_000_040_000 - (1_700_000_040_000 % 60_000);
// A host whose partition differs under the two hashes (2 partitions).
const HOST = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8'].find((h) => murmur2Partition(Buffer.from(h), 2) !== (crc32(h) >>> 0) % 2)!;

const CLOSERS = Array.from({ length: 64 }, (_, i) => `z${i}`);

async function run(partitioner: string): Promise<{ rows: Array<Record<string, unknown>>; logs: string[]; misplaced: number }> {
  const name = uniqueName('partitioner');
  await createTopics([`${name}.in`], { partitions: 2 });
  const sample = await registry.encoder(`${name}.in`, 'vigil.telemetry.MetricSample');
  const at = (host: string, ms: number, partition: number) => sample(host, { timestamp: T0 + ms, name: 'cpu', host, value: 1, unit: '%', tags: {} }, { partition });
  const murmur = murmur2Partition(Buffer.from(HOST), 2);
  const crc = (crc32(HOST) >>> 0) % 2;
  await produceRaw([
    ...Array.from({ length: 10 }, (_, i) => at(HOST, 1000 + i, murmur)),
    ...Array.from({ length: 10 }, (_, i) => at(HOST, 2000 + i, crc)),
    // Later records on both partitions, each where murmur2 puts its key, close the window.
    ...[0, 1].map((p) => {
      const key = CLOSERS.find((k) => murmur2Partition(Buffer.from(k), 2) === p)!;
      return at(key, 5 * 60_000, p);
    }),
  ]);
  const logs: string[] = [];
  const runner = await startRunner(
    planYaml(`
version: 1
name: ${name}
sources:
  - { name: metrics, topic: ${name}.in, schema: vigil.telemetry.MetricSample, partitions: 2, timestamp: timestamp, key: [host], partitioner: ${partitioner} }
operators:
  - name: per_host
    type: aggregate
    from: metrics
    group_by: [host]
    window: { type: tumbling, size: 1m }
    aggregations:
      total: { fn: count }
sinks:
  - { name: out, from: per_host, topic: ${name}.out }
`),
    registry.serde,
    { log: (l) => void logs.push(l) },
  );
  try {
    const rows = (await registry.decodeValues(await readUntil(`${name}.out`, partitioner === 'murmur2' ? 2 : 1, { timeoutMs: 120_000 }))).filter((r) => r.host === HOST);
    const metrics = await runner.metrics.registry.getSingleMetric('vigil_source_misplaced_records_total')!.get();
    const misplaced = metrics.values.filter((v) => v.labels.topic === `${name}.in`).reduce((n, v) => n + v.value, 0);
    return { rows, logs, misplaced };
  } finally {
    await runner.stop();
  }
}

describe('key placement by other partitioners', () => {
  it('trusting key: the window splits in two, and Vigil warns about the misplaced records', async () => {
    const { rows, logs, misplaced } = await run('murmur2');
    expect(rows.map((r) => r.total)).toEqual([10, 10]);
    expect(misplaced).toBeGreaterThanOrEqual(10);
    expect(logs.join('\n')).toMatch(new RegExp(`warning: source 'metrics' .* has key '${HOST}', which Kafka's partitioner \\(murmur2\\) puts on partition ${murmur2Partition(Buffer.from(HOST), 2)}: .*Set 'partitioner: unknown'`));
  });

  it('partitioner: unknown repartitions by the key fields: one window row with all 20 records', async () => {
    const { rows, logs } = await run('unknown');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ host: HOST, total: 20 });
    expect(logs.join('\n')).not.toContain('warning: source');
  });
});
