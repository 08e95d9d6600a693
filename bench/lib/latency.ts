// End-to-end latency as a downstream reader sees it: for every output record, the time it was
// read (read_committed) minus the record's timestamp. Workloads keep the input's event time on
// their outputs, and the live phase stamps event time = send time, so this is the time from
// produce to visible output (for windows: from the window's last millisecond to its result).
import { randomUUID } from 'node:crypto';
import { KafkaClient } from '../../connectors/kafka-client.ts';

export interface LatencyReader {
  /** Resolves once the reader's group has its assignment. */
  ready: Promise<void>;
  /** Latencies (ms) of the records with timestamp >= since. */
  readonly latencies: number[];
  /** All records read, and wall time of the last one. */
  readonly count: number;
  readonly lastAt: number;
  stop(): Promise<void>;
}

export async function startLatencyReader(o: { brokers: string[]; topics: string[]; since: () => number }): Promise<LatencyReader> {
  const client = new KafkaClient({ brokers: o.brokers, clientId: 'vigil-bench-reader' });
  const consumer = client.consumer({ groupId: `vigil-bench-reader-${randomUUID()}`, readCommitted: true, maxWaitTimeMs: 100 });
  const latencies: number[] = [];
  let count = 0;
  let lastAt = Date.now();
  let assigned!: () => void;
  const ready = new Promise<void>((r) => (assigned = r));
  await consumer.subscribe(o.topics, false);
  await consumer.run({
    concurrency: o.topics.length * 4,
    onAssignment: () => assigned(),
    eachBatch: async (batch) => {
      const now = Date.now();
      const since = o.since();
      for (const r of batch.records) if (r.timestamp >= since) latencies.push(now - r.timestamp);
      count += batch.records.length;
      lastAt = now;
    },
  });
  return {
    ready,
    latencies,
    get count() {
      return count;
    },
    get lastAt() {
      return lastAt;
    },
    async stop() {
      await consumer.stop();
      await consumer.disconnect();
    },
  };
}
