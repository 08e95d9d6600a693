// Produces synthetic telemetry (connectors/telemetry-generator.ts) to Kafka as Confluent-framed
// Avro, at a target rate or as fast as possible: the demo's input and the benchmarks' load.
import { KafkaClient } from './kafka-client.ts';
import type { OutRecord } from './kafka-client.ts';
import { TelemetryGenerator, SCHEMA_OF_KIND } from './telemetry-generator.ts';
import type { GeneratorOptions } from './telemetry-generator.ts';
import type { AvroSerde } from '../schemas/serde.ts';
import type { RecordSchema } from '../kernel/operator.ts';

export interface ProduceOptions extends GeneratorOptions {
  brokers: string[];
  serde: AvroSerde;
  catalog: Map<string, RecordSchema>;
  topic: string;
  /** Records per second; 0 = as fast as possible. */
  rate?: number;
  /** Stop after this many records; 0 = until the signal aborts. */
  count?: number;
  /** Records per produce request. */
  batchSize?: number;
  /** Partitions when the topic has to be created. */
  partitions?: number;
  signal?: AbortSignal;
  /** Called after each acknowledged batch with the running total. */
  onProgress?: (sent: number) => void;
}

export async function produceTelemetry(opts: ProduceOptions): Promise<{ sent: number; anomalies: number; seconds: number }> {
  const schemaName = SCHEMA_OF_KIND[opts.kind];
  const schema = opts.catalog.get(schemaName);
  if (!schema) throw new Error(`schema ${schemaName} is not in the catalog`);
  const client = new KafkaClient({ brokers: opts.brokers, clientId: 'vigil-produce' });
  const admin = client.admin();
  await admin.createTopics([{ topic: opts.topic, partitions: opts.partitions ?? 4 }]);
  await admin.disconnect();
  const id = await opts.serde.register(`${opts.topic}-value`, schema);
  const producer = client.producer();
  await producer.connect();
  const gen = new TelemetryGenerator(opts);
  const rate = opts.rate ?? 0;
  const count = opts.count ?? 0;
  const batchSize = opts.batchSize ?? (rate > 0 ? Math.max(1, Math.min(500, Math.round(rate / 10))) : 500);
  const started = Date.now();
  let sent = 0;
  let anomalies = 0;
  try {
    while (!opts.signal?.aborted && (count === 0 || sent < count)) {
      const n = count === 0 ? batchSize : Math.min(batchSize, count - sent);
      const batch: OutRecord[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const r = gen.next();
        if (r.anomaly) anomalies++;
        batch[i] = { topic: opts.topic, key: r.key, value: opts.serde.encode(id, r.value) };
      }
      await producer.send(batch);
      sent += n;
      opts.onProgress?.(sent);
      if (rate > 0) {
        const due = started + (sent / rate) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
  } finally {
    await producer.disconnect();
  }
  return { sent, anomalies, seconds: (Date.now() - started) / 1000 };
}
