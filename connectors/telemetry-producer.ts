// Produces synthetic telemetry (connectors/telemetry-generator.ts) to Kafka as Confluent-framed
// Avro, at a target rate or as fast as possible: the demo's input and the benchmarks' load.
import { KafkaClient } from './kafka-client.ts';
import type { OutRecord } from './kafka-client.ts';
import { TelemetryGenerator, SCHEMA_OF_KIND } from './telemetry-generator.ts';
import type { GeneratedRecord, GeneratorOptions } from './telemetry-generator.ts';
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
  /** Records to send instead of the generator's (e.g. the demo scenario); `kind` still names the schema. */
  source?: { next(): GeneratedRecord };
  /**
   * Never send a record whose `timestamp` field is ahead of the wall clock: wait for it (a source in
   * simulated time that starts in the past catches up, then follows the clock; brokers refuse
   * timestamps far in the future).
   */
  notAhead?: boolean;
}

function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
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
  const gen = opts.source ?? new TelemetryGenerator(opts);
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
        const ahead = opts.notAhead === true ? (r.value.timestamp as number) - Date.now() : 0;
        if (ahead > 0) await abortableSleep(ahead, opts.signal);
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
