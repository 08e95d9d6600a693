// Reads a topic outside any processing group (a fresh group id that never commits): used by
// `vigil tail`, the tests and the benchmarks to look at what a topology wrote.
import { randomUUID } from 'node:crypto';
import { KafkaClient } from './kafka-client.ts';
import type { ConsumedRecord } from './kafka-client.ts';

export interface ReadOptions {
  brokers: string[];
  topic: string;
  fromBeginning?: boolean;
  /** Only records of committed transactions (what exactly-once consumers see). */
  readCommitted?: boolean;
  /** Stop after this many records. */
  max?: number;
  /** Stop once no record arrived for this long (ms); undefined = until max or the signal. */
  idleMs?: number;
  /**
   * Stop once every partition's end offset, as it was when reading started, is reached (a
   * snapshot of the topic: `vigil silence list`). A topic that does not exist reads as empty.
   */
  untilEnd?: boolean;
  signal?: AbortSignal;
  onRecord?: (r: ConsumedRecord) => void;
}

/** Reads a topic; one that does not exist yet is waited for (an empty result once idleMs passes). */
export async function readTopic(opts: ReadOptions): Promise<ConsumedRecord[]> {
  const client = new KafkaClient({ brokers: opts.brokers, clientId: 'vigil-reader' });
  const admin = client.admin();
  const since = Date.now();
  /** partition -> the offset of its last record when reading started (only non-empty partitions). */
  const ends = new Map<number, bigint>();
  try {
    if (opts.untilEnd === true) {
      if (!(await admin.listTopics()).includes(opts.topic)) return [];
      for (const p of await admin.offsets(opts.topic)) if (BigInt(p.high) > BigInt(p.low)) ends.set(p.partition, BigInt(p.high) - 1n);
      if (ends.size === 0) return [];
    }
    while (!(await admin.listTopics()).includes(opts.topic)) {
      if (opts.signal?.aborted || (opts.idleMs !== undefined && Date.now() - since >= opts.idleMs)) return [];
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect();
  }
  const consumer = client.consumer({ groupId: `vigil-reader-${randomUUID()}`, readCommitted: opts.readCommitted ?? false, maxWaitTimeMs: 100 });
  const out: ConsumedRecord[] = [];
  let last = Date.now();
  let finish!: () => void;
  let fail!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  // A reader whose consumer gave up must say so, not wait silently for its deadline.
  consumer.onCrash((err, restart) => {
    if (!restart) fail(new Error(`reading ${opts.topic} failed: ${err.message}`));
  });
  const max = opts.max ?? Number.POSITIVE_INFINITY;
  // After every batch (also one holding only a transaction marker, which may be a partition's end,
  // reached by no record): a partition whose end the batch reached is done.
  consumer.onBatchEnd((_t, partition, lastOffset) => {
    const end = ends.get(partition);
    if (end !== undefined && BigInt(lastOffset) >= end) ends.delete(partition);
    if (opts.untilEnd === true && ends.size === 0) finish();
  });
  await consumer.subscribe([opts.topic], opts.fromBeginning ?? true);
  await consumer.run({
    onAssignment: () => {},
    eachBatch: async (batch) => {
      for (const r of batch.records) {
        if (out.length >= max) break;
        const end = ends.get(r.partition);
        if (opts.untilEnd === true && (end === undefined || BigInt(r.offset) > end)) continue;
        out.push(r);
        opts.onRecord?.(r);
      }
      last = Date.now();
      if (out.length >= max) finish();
    },
  });
  const timer = setInterval(() => {
    if (opts.signal?.aborted || (opts.idleMs !== undefined && Date.now() - last >= opts.idleMs)) finish();
  }, 50);
  try {
    await done;
  } finally {
    clearInterval(timer);
    await consumer.stop();
    await consumer.disconnect();
  }
  return out;
}
