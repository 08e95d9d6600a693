// Unit tests of the wire format, its errors and writer->reader resolution. No broker and no
// registry: writer schemas are pre-seeded (addWriter) or served by a stub client.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import avro from 'avsc';
import type { RecordSchema } from '../../kernel/operator.ts';
import {
  AvroDecodeError,
  AvroEncodeError,
  BadMagicByteError,
  BufferTooShortError,
  IncompatibleReaderError,
  RegisterSchemaError,
  RegistryUnavailableError,
  SchemaCatalogError,
  SchemaErrorCode,
  SchemaNotCachedError,
  UnknownReaderSchemaError,
  UnknownSchemaIdError,
} from '../../schemas/errors.ts';
import { AvroSerde, addSchemaFiles, loadSchemaCatalog, schemaFullName } from '../../schemas/serde.ts';
import type { RegistryClient } from '../../schemas/serde.ts';

const URL = 'http://registry.test:8081';
const catalog = loadSchemaCatalog();
const metricSchema = catalog.get('vigil.telemetry.MetricSample')!;
const sample = { timestamp: 1_700_000_000_000, name: 'cpu.utilization', host: 'web-1', value: 0.93, unit: 'percent', tags: { region: 'eu' } };

/** MetricSample as an older producer wrote it: no unit, no tags. */
const metricV0: RecordSchema = {
  type: 'record',
  name: 'MetricSample',
  namespace: 'vigil.telemetry',
  fields: [
    { name: 'timestamp', type: 'long' },
    { name: 'name', type: 'string' },
    { name: 'host', type: 'string' },
    { name: 'value', type: 'double' },
  ],
};
/** MetricSample as a newer producer writes it: an extra field. */
const metricV2: RecordSchema = {
  ...metricSchema,
  fields: [...metricSchema.fields, { name: 'region', type: 'string', default: 'unknown' }],
};
/** Written by someone who renamed `value`: the catalog's reader cannot fill `value`. */
const metricBroken: RecordSchema = {
  type: 'record',
  name: 'MetricSample',
  namespace: 'vigil.telemetry',
  fields: [
    { name: 'timestamp', type: 'long' },
    { name: 'name', type: 'string' },
    { name: 'host', type: 'string' },
    { name: 'reading', type: 'double' },
  ],
};

function serdeWith(writers: Record<number, RecordSchema>, client?: RegistryClient): AvroSerde {
  const serde = new AvroSerde({ url: URL, catalog: new Map(catalog), client: client ?? stubClient({}) });
  for (const [id, schema] of Object.entries(writers)) serde.addWriter(Number(id), schema);
  return serde;
}

function stubClient(byId: Record<number, RecordSchema>, opts: { fail?: { status: number; message: string } } = {}) {
  const calls = { getSchema: [] as number[], register: [] as Array<{ subject: string; compatibility?: string }> };
  const client: RegistryClient & { calls: typeof calls } = {
    calls,
    async getSchema(id: number) {
      calls.getSchema.push(id);
      await new Promise((r) => setTimeout(r, 5));
      if (opts.fail) throw Object.assign(new Error(opts.fail.message), { status: opts.fail.status });
      const schema = byId[id];
      if (!schema) throw Object.assign(new Error(`Confluent_Schema_Registry - Schema ${id} not found`), { status: 404 });
      return avro.Type.forSchema(schema as any);
    },
    async register(_schema: RecordSchema, o: { subject: string; compatibility?: string }) {
      calls.register.push(o);
      return { id: 42 };
    },
  };
  return client;
}

describe('schema catalog', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-serde-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the repository .avsc files keyed by full name', () => {
    expect([...catalog.keys()].sort()).toEqual([
      'vigil.alerting.Ack',
      'vigil.alerting.Action',
      'vigil.alerting.Alert',
      'vigil.alerting.AuditEvent',
      'vigil.alerting.Feedback',
      'vigil.alerting.Silence',
      'vigil.inventory.Entity',
      'vigil.telemetry.Event',
      'vigil.telemetry.LogLine',
      'vigil.telemetry.MetricSample',
      'vigil.telemetry.StateSnapshot',
    ]);
    expect(schemaFullName(metricSchema)).toBe('vigil.telemetry.MetricSample');
    expect(schemaFullName({ name: 'a.b.C', namespace: 'ignored' })).toBe('a.b.C');
  });

  it('adds extra files, accepts an identical redefinition and refuses a conflicting one', () => {
    const extra = join(dir, 'cpu.avsc');
    writeFileSync(extra, JSON.stringify({ type: 'record', name: 'Cpu', namespace: 'acme', fields: [{ name: 'v', type: 'double' }] }));
    const same = join(dir, 'metric-same.avsc');
    writeFileSync(same, JSON.stringify(metricSchema, null, 4));
    const cat = addSchemaFiles(new Map(catalog), [extra, same]);
    expect(cat.has('acme.Cpu')).toBe(true);

    const conflict = join(dir, 'metric-other.avsc');
    writeFileSync(conflict, JSON.stringify(metricV0));
    expect(() => addSchemaFiles(new Map(catalog), [conflict])).toThrowError(/defines vigil\.telemetry\.MetricSample/);
  });

  it('refuses unreadable, non-JSON, non-record and invalid schema files with a stable code', () => {
    const cases: Array<[string, string | null, RegExp]> = [
      ['missing.avsc', null, /cannot read/],
      ['broken.avsc', '{"type": "record",', /not valid JSON/],
      ['string.avsc', '"string"', /must be an Avro record/],
      ['bad-type.avsc', JSON.stringify({ type: 'record', name: 'X', fields: [{ name: 'a', type: 'nope' }] }), /invalid Avro schema: unknown type "nope"/],
      ['proto.avsc', JSON.stringify({ type: 'record', name: 'P', fields: [{ name: 'x', type: { type: 'record', name: 'Q', fields: [{ name: 'constructor', type: 'int' }] } }] }), /'constructor' is not allowed as a field name/],
    ];
    for (const [name, text, message] of cases) {
      const file = join(dir, name);
      if (text !== null) writeFileSync(file, text);
      let caught: unknown;
      try {
        addSchemaFiles(new Map(), [file]);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(SchemaCatalogError);
      expect((caught as SchemaCatalogError).code).toBe(SchemaErrorCode.CATALOG_INVALID);
      expect((caught as Error).message).toContain(file);
      expect((caught as Error).message).toMatch(message);
    }
  });
});

describe('wire format', () => {
  it('frames as magic 0, big-endian id, Avro body, and round-trips', () => {
    const serde = serdeWith({ 258: metricSchema });
    const buf = serde.encode(258, sample);
    expect(buf[0]).toBe(0);
    expect(buf.readInt32BE(1)).toBe(258);
    expect([...buf.subarray(1, 5)]).toEqual([0, 0, 1, 2]);
    expect(buf.subarray(5).equals(avro.Type.forSchema(metricSchema as any).toBuffer(sample))).toBe(true);
    const { value, schemaId } = serde.decode(buf);
    expect(schemaId).toBe(258);
    expect({ ...value }).toEqual(sample);
    expect(serde.schemaIdOf(buf)).toBe(258);
  });

  it('encodes values larger than the scratch buffer', () => {
    const serde = serdeWith({ 1: metricSchema });
    const big = { ...sample, name: 'x'.repeat(200_000) };
    const buf = serde.encode(1, big);
    expect(serde.decode(buf).value.name).toHaveLength(200_000);
    // and the next small value still encodes correctly
    expect({ ...serde.decode(serde.encode(1, sample)).value }).toEqual(sample);
  });

  it('encoded buffers do not share memory with later encodes', () => {
    const serde = serdeWith({ 1: metricSchema });
    const a = serde.encode(1, sample);
    const copy = Buffer.from(a);
    serde.encode(1, { ...sample, host: 'other-host-with-a-longer-name' });
    expect(a.equals(copy)).toBe(true);
  });

  it('refuses a value shorter than the header', () => {
    const serde = serdeWith({ 1: metricSchema });
    const err = catchErr(() => serde.decode(Buffer.from([0, 0, 1])));
    expect(err).toBeInstanceOf(BufferTooShortError);
    expect(err.code).toBe(SchemaErrorCode.BUFFER_TOO_SHORT);
    expect(err.message).toMatch(/3 byte\(s\)/);
  });

  it('refuses a bad magic byte and names the byte found', () => {
    const serde = serdeWith({ 1: metricSchema });
    const buf = serde.encode(1, sample);
    buf[0] = 0x7b; // '{': somebody produced JSON
    const err = catchErr(() => serde.decode(buf));
    expect(err).toBeInstanceOf(BadMagicByteError);
    expect(err.code).toBe(SchemaErrorCode.BAD_MAGIC);
    expect((err as BadMagicByteError).found).toBe(0x7b);
    expect(err.message).toMatch(/found 0x7b/);
  });

  it('names the schema when the body does not decode (truncated, trailing bytes)', () => {
    const serde = serdeWith({ 9: metricSchema });
    const buf = serde.encode(9, sample);
    const truncated = catchErr(() => serde.decode(buf.subarray(0, buf.length - 3)));
    expect(truncated).toBeInstanceOf(AvroDecodeError);
    expect(truncated.code).toBe(SchemaErrorCode.DECODE_FAILED);
    expect(truncated.message).toMatch(/vigil\.telemetry\.MetricSample \(id 9\).*truncated/);
    const trailing = catchErr(() => serde.decode(Buffer.concat([buf, Buffer.from([1, 2])])));
    expect(trailing).toBeInstanceOf(AvroDecodeError);
    expect(trailing.message).toMatch(/2 trailing byte/);
  });

  it('names the field path when a value does not match its schema', () => {
    const serde = serdeWith({ 3: metricSchema });
    const err = catchErr(() => serde.encode(3, { ...sample, tags: { region: 7 } }));
    expect(err).toBeInstanceOf(AvroEncodeError);
    expect(err.code).toBe(SchemaErrorCode.ENCODE_FAILED);
    expect((err as AvroEncodeError).paths).toEqual([['tags', 'region']]);
    expect(err.message).toMatch(/vigil\.telemetry\.MetricSample \(id 3\) at tags\.region/);

    const missing = catchErr(() => serde.encode(3, { ...sample, host: undefined }));
    expect((missing as AvroEncodeError).paths).toEqual([['host']]);
  });

  it('checks the value only on failure (isValid is not on the hot path)', () => {
    const serde = serdeWith({ 3: metricSchema });
    const spy = vi.spyOn(avro.Type.prototype, 'isValid');
    try {
      for (let i = 0; i < 10; i++) serde.encode(3, sample);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});

describe('writer schemas by id', () => {
  it('throws the SchemaNotCached marker for an id nobody fetched, then decodes after prepareBatch', async () => {
    const client = stubClient({ 7: metricSchema, 8: metricV0 });
    const producer = serdeWith({ 7: metricSchema, 8: metricV0 });
    const values = [producer.encode(7, sample), producer.encode(8, sample), producer.encode(7, sample), null, Buffer.from('junk')];
    const serde = serdeWith({}, client);
    const marker = catchErr(() => serde.decode(values[0]!));
    expect(marker).toBeInstanceOf(SchemaNotCachedError);
    expect(marker.code).toBe(SchemaErrorCode.SCHEMA_NOT_CACHED);
    expect((marker as SchemaNotCachedError).schemaId).toBe(7);

    await serde.prepareBatch(values);
    expect(client.calls.getSchema.sort()).toEqual([7, 8]);
    expect(serde.decode(values[0]!).value.unit).toBe('percent');
    expect(serde.decode(values[1]!).value).not.toHaveProperty('unit');
    await serde.prepareBatch(values);
    expect(client.calls.getSchema).toHaveLength(2);
  });

  it('shares one request between concurrent fetches of an id', async () => {
    const client = stubClient({ 7: metricSchema });
    const serde = serdeWith({}, client);
    await Promise.all([serde.ensureWriter(7), serde.ensureWriter(7), serde.prepareDecoder(7, 'vigil.telemetry.MetricSample')]);
    expect(client.calls.getSchema).toEqual([7]);
  });

  it('reports an id the registry does not know with the id and the registry URL, per record', async () => {
    const client = stubClient({ 7: metricSchema });
    const producer = serdeWith({ 7: metricSchema, 99: metricSchema });
    const good = producer.encode(7, sample);
    const bad = producer.encode(99, sample);
    const serde = serdeWith({}, client);
    await serde.prepareBatch([good, bad]); // does not reject: the bad record is dead-lettered alone
    expect(serde.decode(good).schemaId).toBe(7);
    const err = catchErr(() => serde.decode(bad));
    expect(err).toBeInstanceOf(UnknownSchemaIdError);
    expect(err.code).toBe(SchemaErrorCode.UNKNOWN_SCHEMA_ID);
    expect(err.message).toContain('schema id 99');
    expect(err.message).toContain(URL);
    await expect(serde.decodeAsync(bad)).rejects.toBeInstanceOf(UnknownSchemaIdError);
    expect(client.calls.getSchema.filter((id) => id === 99)).toHaveLength(1); // negatively cached
  });

  it('rejects the pre-pass when the registry is unavailable (nothing cached)', async () => {
    const client = stubClient({}, { fail: { status: 400, message: 'connect ECONNREFUSED 127.0.0.1:1' } });
    const producer = serdeWith({ 7: metricSchema });
    const serde = serdeWith({}, client);
    const err = await serde.prepareBatch([producer.encode(7, sample)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect((err as Error).message).toContain(URL);
    expect(serde.hasWriter(7)).toBe(false);
  });

  it('decodeAsync fetches an unseen id once and then decodes', async () => {
    const client = stubClient({ 7: metricSchema });
    const producer = serdeWith({ 7: metricSchema });
    const serde = serdeWith({}, client);
    const { value, schemaId } = await serde.decodeAsync(producer.encode(7, sample));
    expect(schemaId).toBe(7);
    expect(value.host).toBe('web-1');
    expect(serde.hasWriter(7)).toBe(true);
  });
});

describe('reader schema resolution', () => {
  const reader = 'vigil.telemetry.MetricSample';

  it('fills defaults for fields an older writer did not have', () => {
    const serde = serdeWith({ 1: metricV0 });
    const old = serdeWith({ 1: metricV0 }).encode(1, { timestamp: 5, name: 'mem', host: 'h', value: 1.5 });
    const { value, schemaId } = serde.decode(old, reader);
    expect(schemaId).toBe(1);
    expect({ ...value }).toEqual({ timestamp: 5, name: 'mem', host: 'h', value: 1.5, unit: null, tags: {} });
  });

  it('drops fields a newer writer added', () => {
    const serde = serdeWith({ 2: metricV2 });
    const buf = serde.encode(2, { ...sample, region: 'eu-west' });
    expect(serde.decode(buf).value.region).toBe('eu-west');
    const { value } = serde.decode(buf, reader);
    expect(value).not.toHaveProperty('region');
    expect({ ...value }).toEqual(sample);
  });

  it('decodes the same schema without a resolver and builds each resolver once', () => {
    const serde = serdeWith({ 1: metricV0, 2: metricSchema });
    const spy = vi.spyOn(avro.Type.prototype, 'createResolver');
    try {
      const v0 = serde.encode(1, { timestamp: 5, name: 'mem', host: 'h', value: 1.5 });
      const v1 = serde.encode(2, sample);
      for (let i = 0; i < 5; i++) {
        serde.decode(v0, reader);
        serde.decode(v1, reader);
      }
      // avsc recurses into field types; count the record-level calls: only writer 1 (writer 2 equals the reader)
      expect(spy.mock.contexts.filter((t) => (t as { typeName?: string }).typeName === 'record')).toHaveLength(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('refuses a writer the reader cannot read, naming both', () => {
    const serde = serdeWith({ 4: metricBroken });
    const buf = serde.encode(4, { timestamp: 5, name: 'mem', host: 'h', reading: 1 });
    const err = catchErr(() => serde.decode(buf, reader));
    expect(err).toBeInstanceOf(IncompatibleReaderError);
    expect(err.code).toBe(SchemaErrorCode.INCOMPATIBLE_READER);
    expect(err.message).toMatch(/written with vigil\.telemetry\.MetricSample \(schema id 4\) cannot be read as vigil\.telemetry\.MetricSample/);
    // cached: the same error again, and decoding without a reader still works
    expect(catchErr(() => serde.decode(buf, reader))).toBe(err);
    expect(serde.decode(buf).value.reading).toBe(1);
  });

  it('refuses a reader schema that is not in the catalog', () => {
    const serde = serdeWith({ 1: metricSchema });
    const err = catchErr(() => serde.decode(serde.encode(1, sample), 'acme.Nope'));
    expect(err).toBeInstanceOf(UnknownReaderSchemaError);
    expect(err.code).toBe(SchemaErrorCode.UNKNOWN_READER_SCHEMA);
    const name = serde.addReaderSchema({ ...metricV0, name: 'Nope', namespace: 'acme' });
    expect(name).toBe('acme.Nope');
  });
});

describe('registration through the client', () => {
  it('registers once per subject+schema and encodes synchronously with the id', async () => {
    const client = stubClient({});
    const serde = serdeWith({}, client);
    const [a, b] = await Promise.all([serde.register('metrics-value', metricSchema), serde.register('metrics-value', metricSchema)]);
    expect(a).toBe(42);
    expect(b).toBe(42);
    expect(await serde.register('metrics-value', JSON.parse(JSON.stringify(metricSchema)))).toBe(42);
    expect(client.calls.register).toEqual([{ subject: 'metrics-value', compatibility: 'BACKWARD' }]);
    expect(serde.decode(serde.encode(42, sample)).schemaId).toBe(42);
    expect(client.calls.getSchema).toEqual([]);
  });

  it("follows the subject's own compatibility level when it differs", async () => {
    const calls: string[] = [];
    const client: RegistryClient = {
      async register(_s, o) {
        calls.push(String(o.compatibility));
        if (o.compatibility !== 'FULL') throw new Error('Compatibility does not match the configuration (BACKWARD != FULL)');
        return { id: 5 };
      },
      async getSchema() {
        throw new Error('unused');
      },
    };
    expect(await serdeWith({}, client).register('s', metricSchema)).toBe(5);
    expect(calls).toEqual(['BACKWARD', 'FULL']);
  });

  it('maps registry refusals and outages to errors with stable codes', async () => {
    const refusing: RegistryClient = {
      async register() {
        throw Object.assign(new Error('Schema being registered is incompatible'), { status: 409 });
      },
      async getSchema() {
        throw new Error('unused');
      },
    };
    const refused = await serdeWith({}, refusing).register('s', metricSchema).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RegisterSchemaError);
    expect((refused as RegisterSchemaError).status).toBe(409);
    expect((refused as RegisterSchemaError).code).toBe(SchemaErrorCode.REGISTER_FAILED);

    const down: RegistryClient = {
      async register() {
        throw Object.assign(new Error('connect ECONNREFUSED'), { status: 400 });
      },
      async getSchema() {
        throw new Error('unused');
      },
    };
    expect(await serdeWith({}, down).register('s', metricSchema).catch((e: unknown) => e)).toBeInstanceOf(RegistryUnavailableError);

    const invalid = await serdeWith({}, down)
      .register('s', { type: 'record', name: 'X', fields: [{ name: 'a', type: 'nope' }] })
      .catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(RegisterSchemaError);
    expect((invalid as Error).message).toMatch(/unknown type "nope"/);
  });
});

function catchErr(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected an error');
}
