// The serde against Vigil's registry on the real broker: registration, the batch pre-pass, values
// through a Kafka topic, reader-schema resolution, and byte compatibility with the Confluent client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { RecordSchema } from '../../kernel/operator.ts';
import { RegisterSchemaError, SchemaNotCachedError, UnknownSchemaIdError } from '../../schemas/errors.ts';
import { startRegistry } from '../../schemas/registry/server.ts';
import type { RegistryHandle } from '../../schemas/registry/server.ts';
import { AvroSerde, loadSchemaCatalog } from '../../schemas/serde.ts';
import { brokers, createTopics, testKafka, uniqueName } from '../kafka.ts';

const catalog = loadSchemaCatalog();
const metric = catalog.get('vigil.telemetry.MetricSample')!;
const metricV0: RecordSchema = {
  type: 'record',
  name: 'MetricSample',
  namespace: 'vigil.telemetry',
  fields: [
    { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'name', type: 'string' },
    { name: 'host', type: 'string' },
    { name: 'value', type: 'double' },
  ],
};
const READER = 'vigil.telemetry.MetricSample';
const sample = (i: number) => ({ timestamp: 1_700_000_000_000 + i, name: 'cpu', host: `web-${i}`, value: i / 2, unit: null, tags: { i: String(i) } });

const registryTopic = uniqueName('_schemas');
const dataTopic = uniqueName('metrics');
let registry: RegistryHandle;

beforeAll(async () => {
  registry = await startRegistry({ brokers: brokers(), topic: registryTopic });
  await createTopics([dataTopic]);
});

afterAll(async () => {
  await registry?.close();
  const admin = testKafka('vigil-serde-test').admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [registryTopic, dataTopic] });
  } finally {
    await admin.disconnect();
  }
});

describe('AvroSerde with the registry', () => {
  it('registers, encodes, and decodes in a fresh serde after one async pre-pass', async () => {
    const producer = new AvroSerde({ url: registry.url, catalog });
    const id = await producer.register('metrics-value', metric);
    expect(await producer.register('metrics-value', metric)).toBe(id);
    const values = Array.from({ length: 50 }, (_, i) => producer.encode(id, sample(i)));

    const consumer = new AvroSerde({ url: registry.url, catalog });
    expect(() => consumer.decode(values[0]!)).toThrowError(SchemaNotCachedError);
    await consumer.prepareBatch(values);
    const decoded = values.map((v) => consumer.decode(v, READER));
    expect(decoded.map((d) => d.schemaId)).toEqual(values.map(() => id));
    expect(decoded.map((d) => ({ ...d.value }))).toEqual(Array.from({ length: 50 }, (_, i) => sample(i)));
  });

  it('carries values through a Kafka topic and resolves an older writer into the reader shape', async () => {
    const old = new AvroSerde({ url: registry.url, catalog });
    const current = new AvroSerde({ url: registry.url, catalog });
    const oldId = await old.register('fleet-value', metricV0);
    const newId = await current.register('fleet-value', metric); // BACKWARD: added fields have defaults
    expect(newId).not.toBe(oldId);

    const kafka = testKafka('vigil-serde-test');
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: dataTopic,
      messages: [
        { value: old.encode(oldId, { timestamp: 1, name: 'mem', host: 'a', value: 1 }) },
        { value: current.encode(newId, { ...sample(2), unit: 'MB' }) },
      ],
    });
    await producer.disconnect();

    const reader = new AvroSerde({ url: registry.url, catalog });
    const consumer = kafka.consumer({ groupId: uniqueName('serde') });
    await consumer.connect();
    await consumer.subscribe({ topic: dataTopic, fromBeginning: true });
    const got: Array<{ value: Record<string, unknown>; schemaId: number }> = [];
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachBatch: async ({ batch }) => {
            const raw = batch.messages.map((m) => m.value);
            await reader.prepareBatch(raw); // the async pre-pass
            for (const v of raw) got.push(reader.decode(v!, READER)); // then synchronous
            if (got.length >= 2) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
    expect(got.map((g) => g.schemaId)).toEqual([oldId, newId]);
    expect({ ...got[0]!.value }).toEqual({ timestamp: 1, name: 'mem', host: 'a', value: 1, unit: null, tags: {} });
    expect({ ...got[1]!.value }).toEqual({ ...sample(2), unit: 'MB' });
  });

  it('is byte-compatible with the Confluent client in both directions', async () => {
    const serde = new AvroSerde({ url: registry.url, catalog });
    const id = await serde.register('compat-value', metric);
    const client = new SchemaRegistry({ host: registry.url });
    const ours = serde.encode(id, sample(7));
    expect(await client.decode(ours)).toMatchObject(sample(7));
    const theirs = await client.encode(id, sample(8));
    expect(theirs.equals(serde.encode(id, sample(8)))).toBe(true);
    expect({ ...serde.decode(theirs).value }).toEqual(sample(8));
  });

  it('names the id and the registry for an unknown id; refuses an incompatible registration', async () => {
    const serde = new AvroSerde({ url: registry.url, catalog });
    const bogus = Buffer.from([0, 0, 0, 0x7f, 0x7f, 2]);
    await serde.prepareBatch([bogus]);
    let err: unknown;
    try {
      serde.decode(bogus);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnknownSchemaIdError);
    expect((err as Error).message).toBe(`schema id ${0x7f7f} is not registered in the schema registry at ${registry.url}`);

    await serde.register('strict-value', metric);
    const incompatible: RecordSchema = { ...metric, fields: [...metric.fields, { name: 'region', type: 'string' }] };
    const refused = await serde.register('strict-value', incompatible).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RegisterSchemaError);
    expect((refused as RegisterSchemaError).status).toBe(409);
    expect((refused as Error).message).toMatch(/strict-value.*incompatible/);
  });
});
