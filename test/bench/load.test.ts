import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { TIMESTAMP_OFFSET, generateLoad, patchLong, readLong, spreadTime, varintLengthAt, varintLongLength, zigzag } from '../../bench/lib/load.ts';
import { AvroSerde, loadSchemaCatalog } from '../../schemas/serde.ts';
import { stubRegistry } from '../../bench/lib/core.ts';

describe('Avro long (zig-zag varint) arithmetic', () => {
  it('zig-zag encodes signed values', () => {
    expect([0, -1, 1, -2, 2, 2 ** 40].map(zigzag)).toEqual([0, 1, 2, 3, 4, 2 ** 41]);
  });

  it('knows the varint length of a long, as avsc writes it', () => {
    const long = avro.Type.forSchema('long');
    for (const v of [0, 63, 64, -65, 8191, 8192, 1_700_000_000_000, 2 ** 52, -(2 ** 52)]) {
      expect(varintLongLength(v)).toBe(long.toBuffer(v).length);
    }
  });

  it('patches a long in place and reads it back', () => {
    const long = avro.Type.forSchema('long');
    const buf = Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), long.toBuffer(1_700_000_000_000), Buffer.from([0x42])]);
    expect(patchLong(buf, 5, 1_764_000_000_123)).toBe(true);
    expect(readLong(buf, 5)).toBe(1_764_000_000_123);
    expect(long.fromBuffer(buf.subarray(5, buf.length - 1))).toBe(1_764_000_000_123);
    expect(buf[buf.length - 1]).toBe(0x42); // the next field is untouched
  });

  it('refuses a value whose encoding has another length, leaving the buffer alone', () => {
    const buf = Buffer.from(avro.Type.forSchema('long').toBuffer(1_700_000_000_000));
    const copy = Buffer.from(buf);
    expect(patchLong(buf, 0, 5)).toBe(false);
    expect(buf.equals(copy)).toBe(true);
    expect(varintLengthAt(Buffer.from([0x80, 0x80]), 0)).toBe(-1);
  });
});

describe('spreadTime', () => {
  it('spreads n records evenly over the span, in integer ms', () => {
    expect([0, 1, 2, 3].map((i) => spreadTime(1000, 100, i, 4))).toEqual([1000, 1025, 1050, 1075]);
    expect(spreadTime(1000, 10, 1, 3)).toBe(1003);
  });
});

describe('generateLoad', () => {
  it('encodes records whose event time can be patched to the send time', async () => {
    const catalog = loadSchemaCatalog();
    const schema = catalog.get('vigil.telemetry.MetricSample')!;
    const serde = new AvroSerde({ url: 'stub://', catalog, client: stubRegistry() });
    const id = await serde.register('m-value', schema);
    const load = generateLoad(
      { kind: 'metric', records: 2000, keys: 10, recordBytes: 0, outOfOrderFraction: 0.1, maxOutOfOrderMs: 500, anomalyFraction: 0.05, seed: 7, startTime: 1_700_000_000_000, spanMs: 10_000 },
      (v) => serde.encode(id, v),
    );
    expect(load.values).toHaveLength(2000);
    expect(new Set(load.keys.map((k) => k.toString())).size).toBe(10);
    expect(load.bytes).toBe(load.values.reduce((a, v, i) => a + v.length + load.keys[i]!.length, 0));
    const late = [...load.lateness].filter((l) => l > 0).length;
    expect(late).toBeGreaterThan(100);
    expect(late).toBeLessThan(300);
    // Event times: spread over the span, minus the injected lateness.
    const first = serde.decode(load.values[1000]!, 'vigil.telemetry.MetricSample').value;
    expect(first.timestamp).toBe(spreadTime(1_700_000_000_000, 10_000, 1000, 2000) - load.lateness[1000]!);
    // Live: the timestamp field is patched without re-encoding.
    expect(patchLong(load.values[0]!, TIMESTAMP_OFFSET, 1_764_000_000_000)).toBe(true);
    expect(serde.decode(load.values[0]!, 'vigil.telemetry.MetricSample').value.timestamp).toBe(1_764_000_000_000);
  });
});
