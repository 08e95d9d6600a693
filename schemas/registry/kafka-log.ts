// The registry's log: one compacted, single-partition Kafka topic, tailed from the beginning by
// a consumer that never commits, and appended to by an idempotent producer (acks=-1).
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import type { Admin, Consumer, LogEntry, Producer } from 'kafkajs';
import { kafkaSecurity } from '../../kernel/kafka-security.ts';
import { RegistryStoreError } from '../errors.ts';

export interface KafkaLogOptions {
  brokers: string[];
  topic: string;
  clientId: string;
  log: (s: string) => void;
  /** Called for every record in offset order, exactly once per offset. */
  onRecord(key: string, value: string | null, offset: number): void;
}

export interface LogRecord {
  key: string;
  /** null: a tombstone. */
  value: string | null;
}

interface Waiter {
  offset: number;
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class KafkaLog {
  private readonly kafka: Kafka;
  private readonly admin: Admin;
  private readonly producer: Producer;
  private readonly consumer: Consumer;
  private readonly groupId: string;
  /** The next offset to apply: every record below it has been passed to onRecord. */
  private next = 0;
  private waiters: Waiter[] = [];
  private closed = false;

  private constructor(private readonly opts: KafkaLogOptions) {
    const log = opts.log;
    // SASL and TLS as every other Kafka connection of this process (kernel/kafka-security.ts).
    const security = kafkaSecurity();
    this.kafka = new Kafka({
      clientId: opts.clientId,
      brokers: opts.brokers,
      ssl: security.ssl,
      sasl: security.sasl,
      logLevel: logLevel.ERROR,
      logCreator: () => (entry: LogEntry) => {
        const detail = (entry.log as { error?: string }).error;
        // Two instances starting at once race to create the topic; the loser's "already exists" is
        // expected, and any other creation error is thrown by createTopics anyway.
        if (this.closed || detail === 'Topic creation errors') return;
        log(`kafkajs ${entry.namespace}: ${entry.log.message}${detail ? ` (${detail})` : ''}`);
      },
    });
    this.admin = this.kafka.admin();
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    // A group of one that never commits: kafkajs has no assign(); a unique group id per instance
    // gives every instance the whole partition, read from the beginning on every start.
    this.groupId = `${opts.clientId}-${randomUUID()}`;
    this.consumer = this.kafka.consumer({
      groupId: this.groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 250,
      sessionTimeout: 30_000,
    });
  }

  get topic(): string {
    return this.opts.topic;
  }

  /** Opens the log: creates the topic if missing, then starts tailing it from the beginning. */
  static async open(opts: KafkaLogOptions): Promise<KafkaLog> {
    const l = new KafkaLog(opts);
    try {
      await l.start();
      return l;
    } catch (err) {
      await l.close().catch(() => undefined);
      if (err instanceof RegistryStoreError) throw err;
      throw new RegistryStoreError(opts.topic, `cannot open: ${(err as Error).message}`, { cause: err });
    }
  }

  private async start(): Promise<void> {
    const { topic } = this.opts;
    await this.admin.connect();
    if (!(await this.admin.listTopics()).includes(topic)) {
      await this.admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
      });
    }
    const meta = await this.admin.fetchTopicMetadata({ topics: [topic] });
    const partitions = meta.topics[0]?.partitions.length ?? 0;
    if (partitions !== 1) {
      throw new RegistryStoreError(topic, `the topic must have exactly one partition, it has ${partitions}`);
    }
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic, fromBeginning: true });
    // Batches whose records were all filtered out (compaction, control records) still advance.
    this.consumer.on(this.consumer.events.END_BATCH_PROCESS, (e) => {
      this.advance(Number(e.payload.lastOffset) + 1);
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.opts.log(`registry log consumer crashed (restart: ${e.payload.restart}): ${e.payload.error.message}`);
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const offset = Number(m.offset);
          // A rebalance without committed offsets restarts from the beginning: skip what was applied.
          if (offset < this.next) continue;
          if (m.key) this.opts.onRecord(m.key.toString('utf8'), m.value ? m.value.toString('utf8') : null, offset);
          this.advance(offset + 1);
        }
      },
    });
  }

  private advance(next: number): void {
    if (next <= this.next) return;
    this.next = next;
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.offset < next) {
        clearTimeout(w.timer);
        w.resolve();
      } else still.push(w);
    }
    this.waiters = still;
  }

  /** Resolves once the record at `offset` (and everything before it) has been applied. */
  waitFor(offset: number, timeoutMs = 30_000): Promise<void> {
    if (offset < this.next) return Promise.resolve();
    if (this.closed) return Promise.reject(new RegistryStoreError(this.opts.topic, 'the registry is closed'));
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        offset,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(
            new RegistryStoreError(
              this.opts.topic,
              `timed out after ${timeoutMs} ms reading up to offset ${offset} (read up to ${this.next - 1})`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  /** Reads to the current end of the log (its high watermark). */
  async catchUp(timeoutMs = 30_000): Promise<void> {
    const offsets = await this.admin.fetchTopicOffsets(this.opts.topic);
    const high = Number(offsets.find((o) => o.partition === 0)?.high ?? 0);
    if (high > 0) await this.waitFor(high - 1, timeoutMs);
  }

  /** Appends records (in order) and returns the offset of the last one. */
  async append(records: LogRecord[]): Promise<number> {
    if (records.length === 0) throw new Error('append: no records');
    const [meta] = await this.producer.send({
      topic: this.opts.topic,
      acks: -1,
      messages: records.map((r) => ({ key: r.key, value: r.value, partition: 0 })),
    });
    if (!meta || meta.baseOffset === undefined) {
      throw new RegistryStoreError(this.opts.topic, 'the broker did not return the offset of a write');
    }
    return Number(meta.baseOffset) + records.length - 1;
  }

  /** Appends and waits until this instance has applied the records (read-your-writes). */
  async appendAndApply(records: LogRecord[], timeoutMs = 30_000): Promise<number> {
    const last = await this.append(records);
    await this.waitFor(last, timeoutMs);
    return last;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new RegistryStoreError(this.opts.topic, 'the registry is closed'));
    }
    this.waiters = [];
    await this.consumer.disconnect().catch(() => undefined);
    await this.producer.disconnect().catch(() => undefined);
    // The group never committed anything; remove it so brokers do not accumulate empty groups.
    await this.admin.deleteGroups([this.groupId]).catch(() => undefined);
    await this.admin.disconnect().catch(() => undefined);
  }
}
