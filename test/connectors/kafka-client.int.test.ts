// The client adapter against the real broker: sends larger than the broker's message.max.bytes
// (1 MiB by default) must arrive whole and in order. kafkajs puts all of a send's records for one
// partition into a single record batch, which the broker refuses whole (MESSAGE_TOO_LARGE) above
// that size; a window closing 10,000 series at once writes more than that to one changelog
// partition (found by the window benchmark at 10,000 series).
import { describe, expect, it } from 'vitest';
import { KafkaClient } from '../../connectors/kafka-client.ts';
import type { OutRecord } from '../../connectors/kafka-client.ts';
import { readTopic } from '../../connectors/topic-reader.ts';
import { brokers, createTopics, uniqueName } from '../kafka.ts';

/** 3 MiB for one partition: 12,000 records of 256 bytes, each value holding its index. */
function bigSend(topic: string): OutRecord[] {
  return Array.from({ length: 12_000 }, (_, i) => {
    const value = Buffer.alloc(256, 0x61);
    value.writeUInt32BE(i, 0);
    return { topic, partition: 0, key: `k${i % 100}`, value };
  });
}

async function readBack(topic: string, count: number, readCommitted: boolean): Promise<number[]> {
  const got = await readTopic({ brokers: brokers(), topic, max: count, idleMs: 30_000, readCommitted });
  return got.map((r) => r.value!.readUInt32BE(0));
}

describe('KafkaClient producer', () => {
  it('sends a 3 MiB batch for one partition as several requests, in order', async () => {
    const topic = uniqueName('big-send');
    await createTopics([topic]);
    const producer = new KafkaClient({ brokers: brokers() }).producer();
    await producer.connect();
    try {
      await producer.send(bigSend(topic));
    } finally {
      await producer.disconnect();
    }
    expect(await readBack(topic, 12_000, false)).toEqual(Array.from({ length: 12_000 }, (_, i) => i));
  });

  it('does the same inside a transaction, visible to read_committed readers after the commit', async () => {
    const topic = uniqueName('big-tx');
    await createTopics([topic]);
    const producer = new KafkaClient({ brokers: brokers() }).producer({ transactionalId: uniqueName('big-tx') });
    await producer.connect();
    try {
      await producer.fence();
      const tx = await producer.transaction();
      await tx.send(bigSend(topic));
      await tx.commit();
    } finally {
      await producer.disconnect();
    }
    expect(await readBack(topic, 12_000, true)).toEqual(Array.from({ length: 12_000 }, (_, i) => i));
  });
});
