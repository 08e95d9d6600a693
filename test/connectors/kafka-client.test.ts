import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { chunkBySize, murmur2, murmur2Partition } from '../../connectors/kafka-client.ts';
import type { OutRecord } from '../../connectors/kafka-client.ts';

const rec = (i: number, bytes: number, headers?: Record<string, string>): OutRecord => ({ topic: 't', key: `k${i}`, value: Buffer.alloc(bytes), headers });

describe('chunkBySize', () => {
  it('keeps records in order and each run within the bound (24 bytes of overhead per record)', () => {
    // Each record: 24 + 2 (key) + 74 (value) = 100 bytes.
    const records = Array.from({ length: 10 }, (_, i) => rec(i, 74));
    const chunks = chunkBySize(records, 350);
    expect(chunks.map((c) => c.length)).toEqual([3, 3, 3, 1]);
    expect(chunks.flat()).toEqual(records);
  });

  it('counts header bytes', () => {
    const records = [rec(0, 74, { h: 'x'.repeat(47) }), rec(1, 74)]; // 100 + 2 + 1 + 47 = 150, then 100
    expect(chunkBySize(records, 249).map((c) => c.length)).toEqual([1, 1]);
    expect(chunkBySize(records, 250).map((c) => c.length)).toEqual([2]);
  });

  it('sends a record larger than the bound alone, and nothing for no records', () => {
    const chunks = chunkBySize([rec(0, 10), rec(1, 5000), rec(2, 10)], 1000);
    expect(chunks.map((c) => c.map((r) => r.key))).toEqual([['k0'], ['k1'], ['k2']]);
    expect(chunkBySize([], 1000)).toEqual([]);
  });
});

// kafkajs 2.2.4 is patched (patches/kafkajs+2.2.4.patch): its per-partition grouping of a send
// copied the partition's list for every message (quadratic; 30% of the engine's CPU in the
// passthrough benchmark). The patched grouping must still keep every message, in order.
const require = createRequire(import.meta.url);
const groupMessagesPerPartition = require('kafkajs/src/producer/groupMessagesPerPartition.js') as (a: {
  topic: string;
  partitionMetadata: unknown[];
  messages: Array<{ n: number }>;
  partitioner: (a: { message: { n: number } }) => number;
}) => Record<string, Array<{ n: number }>>;

describe('kafkajs groupMessagesPerPartition (patched)', () => {
  it('groups every message under its partition, in order', () => {
    const messages = Array.from({ length: 1000 }, (_, n) => ({ n }));
    const grouped = groupMessagesPerPartition({ topic: 't', partitionMetadata: [{}, {}, {}], messages, partitioner: ({ message }) => (message.n * 7) % 3 });
    expect(Object.keys(grouped).sort()).toEqual(['0', '1', '2']);
    for (const p of [0, 1, 2]) expect(grouped[p]!.map((m) => m.n)).toEqual(messages.filter((m) => (m.n * 7) % 3 === p).map((m) => m.n));
  });

  it('returns nothing without partition metadata', () => {
    expect(groupMessagesPerPartition({ topic: 't', partitionMetadata: [], messages: [{ n: 1 }], partitioner: () => 0 })).toEqual({});
  });
});

describe('murmur2 partitioning', () => {
  it("gives Kafka's own test vectors (UtilsTest.testMurmur2) and kafkajs's results", () => {
    const reference = createRequire(import.meta.url)('kafkajs/src/producer/partitioners/default/murmur2.js') as (b: Buffer) => number;
    const java: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [text, h] of java) expect(murmur2(Buffer.from(text))).toBe(h);
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256;
    for (let n = 0; n < 2000; n++) {
      const b = Buffer.from(Array.from({ length: n % 41 }, rnd));
      expect(murmur2(b)).toBe(reference(b));
    }
    expect(murmur2Partition(Buffer.from('21'), 6)).toBe((-973932308 & 0x7fffffff) % 6);
  });
});
