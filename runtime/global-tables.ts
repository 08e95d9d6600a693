// Global tables (Kafka Streams' GlobalKTable): every instance holds a whole table, read from all
// partitions of its topic from the beginning, and keeps it current while it runs. Before any task
// processes a record the replica has caught up with the topic's end as it was at start-up; later
// updates are applied as they arrive, independently of the tasks' progress, so a lookup sees the
// table as of when the record is processed (not as of the record's event time), and a restart may
// see a newer table than the run before it. No changelog: the table's topic is its own log.
import { randomUUID } from 'node:crypto';
import type { KafkaClient, GroupConsumer } from '../connectors/kafka-client.ts';
import type { TableView } from '../kernel/store.ts';
import type { GlobalTable } from '../topology/types.ts';
import type { DeadLetter } from './task.ts';
import { MemoryKeyValueStore, avroCodec } from './stores.ts';
import type { RuntimeSerde } from './runner.ts';

export interface GlobalTableOptions {
  client: KafkaClient;
  serde: RuntimeSerde;
  table: GlobalTable;
  /** Consumer group prefix (the group is never committed: it only assigns all partitions). */
  groupPrefix: string;
  readCommitted: boolean;
  /** Records that cannot be decoded, or have no key. */
  deadLetter(dl: DeadLetter): void;
  log(line: string): void;
  onRecords?(n: number): void;
}

export class GlobalTableReplica {
  readonly store: MemoryKeyValueStore<Record<string, unknown>>;
  private consumer?: GroupConsumer;

  constructor(private readonly opts: GlobalTableOptions) {
    this.store = new MemoryKeyValueStore(opts.table.name, opts.table.topic, avroCodec(opts.table.schema), false);
  }

  get view(): TableView {
    return this.store;
  }

  /** Reads the topic up to its current end, then keeps following it in the background. */
  async start(): Promise<void> {
    const { client, table, serde } = this.opts;
    const admin = client.admin();
    const targets = new Map<number, bigint>();
    try {
      for (const o of await admin.offsets(table.topic)) if (BigInt(o.high) > BigInt(o.low)) targets.set(o.partition, BigInt(o.high));
    } finally {
      await admin.disconnect();
    }
    serde.addReaderSchema(table.schema);
    const started = Date.now();
    let caughtUp!: () => void;
    const bootstrapped = new Promise<void>((r) => (caughtUp = r));
    if (targets.size === 0) caughtUp();
    const consumer = client.consumer({ groupId: `${this.opts.groupPrefix}-global-${table.name}-${randomUUID().slice(0, 8)}`, readCommitted: this.opts.readCommitted });
    this.consumer = consumer;
    consumer.onBatchEnd((_topic, partition, lastOffset) => {
      const target = targets.get(partition);
      if (target !== undefined && BigInt(lastOffset) + 1n >= target) {
        targets.delete(partition);
        if (targets.size === 0) caughtUp();
      }
    });
    await consumer.subscribe([table.topic], true);
    await consumer.run({
      onAssignment: () => undefined,
      eachBatch: async (batch) => {
        await serde.prepareBatch(batch.records.map((r) => r.value));
        for (const r of batch.records) {
          if (r.key === null) {
            this.opts.deadLetter({ stage: 'decode', reason: 'table-null-key', detail: `a record of table '${table.name}' has no key: a table row needs one`, input: r });
            continue;
          }
          const key = r.key.toString('utf8');
          if (r.value === null) {
            this.store.apply(key, null);
            continue;
          }
          try {
            this.store.apply(key, serde.decode(r.value, table.schemaName).value);
          } catch (err) {
            this.opts.deadLetter({ stage: 'decode', reason: 'decode-error', detail: `table '${table.name}': ${(err as Error).message}`, input: r });
          }
        }
        this.opts.onRecords?.(batch.records.length);
      },
    });
    await bootstrapped;
    this.opts.log(`[vigil] global table '${table.name}' loaded: ${this.store.size} rows in ${((Date.now() - started) / 1000).toFixed(2)} s`);
  }

  async stop(): Promise<void> {
    await this.consumer?.stop().catch(() => undefined);
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
