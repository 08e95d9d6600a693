// The narrow adapter between Vigil and its Kafka client. Only this file imports kafkajs for the
// runtime: consume batches, produce batches (plain or in transactions), commit, admin. Swapping
// kafkajs for @confluentinc/kafka-javascript's KafkaJS-compatible API (which adds KIP-447
// group-metadata fencing) means re-implementing this file, not the runtime or the operators.
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import kafkajs, { Kafka, logLevel, CompressionTypes } from 'kafkajs';
import type { Admin, Consumer, Producer, Transaction, IHeaders, Message, LogEntry } from 'kafkajs';
import { kafkaSecurity } from '../kernel/kafka-security.ts';
import type { KafkaSecurity } from '../kernel/kafka-security.ts';

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  /** Kafka record timestamp (ms). */
  timestamp: number;
  headers: Record<string, string>;
}

export interface ConsumedBatch {
  topic: string;
  partition: number;
  records: ConsumedRecord[];
  /** Offset after the last record of the batch (what a commit stores). */
  nextOffset: string;
  /** highWatermark - nextOffset: how far behind the partition's end this batch leaves us. */
  lag: number;
}

export interface OutRecord {
  topic: string;
  key: Buffer | string | null;
  value: Buffer | null;
  headers?: Record<string, string>;
  partition?: number;
  timestamp?: number;
}

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

export interface BatchControls {
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

export interface GroupConsumer {
  subscribe(topics: string[], fromBeginning: boolean): Promise<void>;
  run(opts: {
    eachBatch: (batch: ConsumedBatch, controls: BatchControls) => Promise<void>;
    /** Called with the full assignment after each rebalance (kafkajs rebalances eagerly). */
    onAssignment: (assignment: Array<{ topic: string; partition: number }>) => void;
    concurrency?: number;
  }): Promise<void>;
  commit(offsets: TopicPartitionOffset[]): Promise<void>;
  /** Fires after a batch (even one holding only control records), with its last offset. */
  onBatchEnd(fn: (topic: string, partition: number, lastOffset: string, highWatermark: string) => void): void;
  onCrash(fn: (error: Error, willRestart: boolean) => void): void;
  pause(tps: Array<{ topic: string; partitions: number[] }>): void;
  resume(tps: Array<{ topic: string; partitions: number[] }>): void;
  seek(tp: TopicPartitionOffset): void;
  stop(): Promise<void>;
  disconnect(): Promise<void>;
}

export interface TransactionHandle {
  send(records: OutRecord[]): Promise<void>;
  sendOffsets(groupId: string, offsets: TopicPartitionOffset[]): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface BatchProducer {
  connect(): Promise<void>;
  /** Sends records (acks=all, idempotent) and resolves once all are acknowledged. */
  send(records: OutRecord[]): Promise<void>;
  transaction(): Promise<TransactionHandle>;
  /**
   * Transactional producers: registers the transactional id with the coordinator (InitProducerId),
   * which fences any previous producer with the same id and waits until a transaction it was
   * completing has completed. Nothing is sent.
   */
  fence(): Promise<void>;
  disconnect(): Promise<void>;
}

export interface TopicSpec {
  topic: string;
  partitions: number;
  configs?: Record<string, string>;
}

export interface AdminClient {
  createTopics(topics: TopicSpec[]): Promise<void>;
  listTopics(): Promise<string[]>;
  /** Partition count per topic (topics that do not exist are absent). */
  partitionCounts(topics: string[]): Promise<Map<string, number>>;
  /** Latest (high watermark) and earliest offsets per partition. */
  offsets(topic: string): Promise<Array<{ partition: number; low: string; high: string }>>;
  /** Committed offsets of a group for a topic. */
  groupOffsets(groupId: string, topic: string): Promise<Array<{ partition: number; offset: string }>>;
  deleteTopics(topics: string[]): Promise<void>;
  /** Deletes the records of each partition below the given offset (moves its log start offset). */
  deleteRecords(topic: string, partitions: Array<{ partition: number; offset: string }>): Promise<void>;
  /** Topic configs as the broker reports them (e.g. retention.ms). */
  topicConfigs(topic: string): Promise<Record<string, string>>;
  disconnect(): Promise<void>;
}

export interface ClientOptions {
  brokers: string[];
  clientId?: string;
  /** kafkajs log level; defaults to errors only, or VIGIL_KAFKA_LOG=info|debug. */
  logLevel?: 'nothing' | 'error' | 'warn' | 'info' | 'debug';
  /** SASL and TLS; default: from the environment (kernel/kafka-security.ts). */
  security?: KafkaSecurity;
}

export interface ConsumerOptions {
  groupId: string;
  readCommitted?: boolean;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  rebalanceTimeoutMs?: number;
  maxBytesPerPartition?: number;
  maxWaitTimeMs?: number;
}

export interface ProducerOptions {
  transactionalId?: string;
  transactionTimeoutMs?: number;
  /**
   * Upper bound on the estimated bytes of one produce request. kafkajs puts all of a send's
   * records for a partition into one record batch and does not split it (the Java producer's
   * batch.size does); a batch above the broker's message.max.bytes (1 MiB by default) is refused
   * whole. Sends above this bound go out as several requests, in order.
   */
  maxRequestBytes?: number;
}

/** Default bound per produce request: under the broker's default message.max.bytes (1,048,588). */
export const MAX_REQUEST_BYTES = 1_000_000;
/** Estimated bytes a record adds to a v2 record batch besides its key, value and headers (varints). */
const RECORD_OVERHEAD_BYTES = 24;

function recordBytes(r: OutRecord): number {
  let n = RECORD_OVERHEAD_BYTES + (r.value?.length ?? 0) + (r.key === null ? 0 : typeof r.key === 'string' ? Buffer.byteLength(r.key) : r.key.length);
  if (r.headers) for (const k of Object.keys(r.headers)) n += 2 + Buffer.byteLength(k) + Buffer.byteLength(r.headers[k]!);
  return n;
}

/**
 * Splits records, in order, into runs of at most `maxBytes` estimated bytes (a record larger than
 * that travels alone). Bounding a whole request bounds each partition's batch in it.
 */
export function chunkBySize(records: OutRecord[], maxBytes: number): OutRecord[][] {
  const chunks: OutRecord[][] = [];
  let current: OutRecord[] = [];
  let bytes = 0;
  for (const r of records) {
    const n = recordBytes(r);
    if (current.length > 0 && bytes + n > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(r);
    bytes += n;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

const LEVELS = { nothing: logLevel.NOTHING, error: logLevel.ERROR, warn: logLevel.WARN, info: logLevel.INFO, debug: logLevel.DEBUG };

function toHeaders(h: Record<string, string> | undefined): IHeaders | undefined {
  return h;
}

function toMessage(r: OutRecord): Message {
  const m: Message = { key: r.key, value: r.value };
  if (r.headers) m.headers = toHeaders(r.headers);
  if (r.partition !== undefined) m.partition = r.partition;
  if (r.timestamp !== undefined) m.timestamp = String(r.timestamp);
  return m;
}

/** Groups records per topic, keeping order, for kafkajs sendBatch. */
function topicMessages(records: OutRecord[]): Array<{ topic: string; messages: Message[] }> {
  const byTopic = new Map<string, Message[]>();
  for (const r of records) {
    let list = byTopic.get(r.topic);
    if (!list) byTopic.set(r.topic, (list = []));
    list.push(toMessage(r));
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

/** Runs fn again while it fails with an error Kafka calls retriable, for up to about 30 s. */
async function retryRetriable<T>(fn: () => Promise<T>): Promise<T> {
  for (let delay = 100, waited = 0; ; waited += delay, delay = Math.min(delay * 2, 2000)) {
    try {
      return await fn();
    } catch (err) {
      if ((err as { retriable?: boolean }).retriable !== true || waited >= 30_000) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Sends records in order, as requests of at most `maxBytes` (acks=all, no compression). */
async function sendChunked(target: Pick<Producer, 'sendBatch'>, records: OutRecord[], maxBytes: number): Promise<void> {
  for (const chunk of chunkBySize(records, maxBytes)) await target.sendBatch({ topicMessages: topicMessages(chunk), acks: -1, compression: CompressionTypes.None });
}

function decodeHeaders(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const k of Object.keys(h)) {
    const v = h[k];
    if (v === undefined) continue;
    const one = Array.isArray(v) ? v[v.length - 1] : v;
    out[k] = typeof one === 'string' ? one : one.toString('utf8');
  }
  return out;
}

export class KafkaClient {
  readonly kafka: Kafka;
  readonly brokers: string[];

  constructor(opts: ClientOptions) {
    process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
    this.brokers = opts.brokers;
    const level = opts.logLevel ?? ((process.env.VIGIL_KAFKA_LOG as ClientOptions['logLevel']) || 'nothing');
    const security = opts.security ?? kafkaSecurity();
    this.kafka = new Kafka({
      clientId: opts.clientId ?? 'vigil',
      brokers: opts.brokers,
      ssl: security.ssl,
      sasl: security.sasl,
      logLevel: LEVELS[level] ?? logLevel.ERROR,
      logCreator: () => (entry: LogEntry) => {
        const { message, ...extra } = entry.log;
        process.stderr.write(`[kafkajs ${entry.namespace}] ${message} ${JSON.stringify(extra)}\n`);
      },
      retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
    });
  }

  admin(): AdminClient {
    const admin: Admin = this.kafka.admin();
    let connected: Promise<void> | undefined;
    const ready = () => (connected ??= admin.connect());
    return {
      async createTopics(topics) {
        await ready();
        const existing = new Set(await admin.listTopics());
        const missing = topics.filter((t) => !existing.has(t.topic));
        if (missing.length === 0) return;
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((t) => ({
            topic: t.topic,
            numPartitions: t.partitions,
            replicationFactor: -1,
            configEntries: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
          })),
        });
      },
      async listTopics() {
        await ready();
        return admin.listTopics();
      },
      async partitionCounts(topics) {
        await ready();
        const existing = new Set(await admin.listTopics());
        const wanted = topics.filter((t) => existing.has(t));
        const out = new Map<string, number>();
        if (wanted.length === 0) return out;
        const md = await admin.fetchTopicMetadata({ topics: wanted });
        for (const t of md.topics) out.set(t.name, t.partitions.length);
        return out;
      },
      async offsets(topic) {
        await ready();
        // A topic another instance has just created can answer NOT_LEADER for a moment (its
        // leader is in the metadata before the partition is ready): retried, as kafkajs does not.
        const offs = await retryRetriable(() => admin.fetchTopicOffsets(topic));
        return offs.map((o) => ({ partition: o.partition, low: o.low, high: o.high }));
      },
      async groupOffsets(groupId, topic) {
        await ready();
        const res = await admin.fetchOffsets({ groupId, topics: [topic] });
        return (res[0]?.partitions ?? []).map((p) => ({ partition: p.partition, offset: p.offset }));
      },
      async deleteTopics(topics) {
        await ready();
        await admin.deleteTopics({ topics });
      },
      async deleteRecords(topic, partitions) {
        await ready();
        await admin.deleteTopicRecords({ topic, partitions });
      },
      async topicConfigs(topic) {
        await ready();
        const res = await admin.describeConfigs({ resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false });
        const out: Record<string, string> = {};
        for (const e of res.resources[0]?.configEntries ?? []) out[e.configName] = e.configValue;
        return out;
      },
      async disconnect() {
        if (connected) await admin.disconnect();
      },
    };
  }

  consumer(opts: ConsumerOptions): GroupConsumer {
    const consumer: Consumer = this.kafka.consumer({
      groupId: opts.groupId,
      readUncommitted: !(opts.readCommitted ?? false),
      sessionTimeout: opts.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: opts.heartbeatIntervalMs ?? 3_000,
      rebalanceTimeout: opts.rebalanceTimeoutMs ?? 60_000,
      maxBytesPerPartition: opts.maxBytesPerPartition ?? 1_048_576,
      maxWaitTimeInMs: opts.maxWaitTimeMs ?? 250,
      allowAutoTopicCreation: false,
    });
    let connected: Promise<void> | undefined;
    const ready = () => (connected ??= consumer.connect());
    return {
      async subscribe(topics, fromBeginning) {
        await ready();
        await consumer.subscribe({ topics, fromBeginning });
      },
      async run({ eachBatch, onAssignment, concurrency }) {
        await ready();
        consumer.on(consumer.events.GROUP_JOIN, (e) => {
          const assignment: Array<{ topic: string; partition: number }> = [];
          const ma = e.payload.memberAssignment as Record<string, number[]>;
          for (const topic of Object.keys(ma)) for (const partition of ma[topic] ?? []) assignment.push({ topic, partition });
          onAssignment(assignment);
        });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: concurrency ?? 1,
          eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset }) => {
            if (batch.messages.length === 0) return;
            const records: ConsumedRecord[] = new Array(batch.messages.length);
            for (let i = 0; i < batch.messages.length; i++) {
              const m = batch.messages[i]!;
              records[i] = {
                topic: batch.topic,
                partition: batch.partition,
                offset: m.offset,
                key: m.key ?? null,
                value: m.value ?? null,
                timestamp: Number(m.timestamp),
                headers: m.headers ? decodeHeaders(m.headers) : {},
              };
            }
            const last = batch.messages[batch.messages.length - 1]!.offset;
            const nextOffset = (BigInt(last) + 1n).toString();
            const lag = Number(BigInt(batch.highWatermark) - BigInt(nextOffset));
            await eachBatch({ topic: batch.topic, partition: batch.partition, records, nextOffset, lag }, { heartbeat, isRunning, isStale });
            // Only a batch that returned normally advances the fetch position.
            resolveOffset(last);
          },
        });
      },
      async commit(offsets) {
        await consumer.commitOffsets(offsets);
      },
      onBatchEnd(fn) {
        consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
          const p = e.payload as { topic: string; partition: number; lastOffset: string; highWatermark?: string; offsetLag: string };
          const hw = p.highWatermark ?? String(BigInt(p.lastOffset) + BigInt(p.offsetLag) + 1n);
          fn(p.topic, p.partition, p.lastOffset, hw);
        });
      },
      onCrash(fn) {
        consumer.on(consumer.events.CRASH, (e) => fn(e.payload.error, Boolean(e.payload.restart)));
      },
      pause(tps) {
        consumer.pause(tps);
      },
      resume(tps) {
        consumer.resume(tps);
      },
      seek(tp) {
        consumer.seek(tp);
      },
      async stop() {
        await consumer.stop();
      },
      async disconnect() {
        await consumer.disconnect();
      },
    };
  }

  producer(opts: ProducerOptions = {}): BatchProducer {
    const maxRequestBytes = opts.maxRequestBytes ?? MAX_REQUEST_BYTES;
    const producer: Producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: opts.transactionalId ? 1 : 5,
      transactionalId: opts.transactionalId,
      transactionTimeout: opts.transactionTimeoutMs ?? 60_000,
      allowAutoTopicCreation: false,
    });
    return {
      connect: () => producer.connect(),
      async send(records) {
        await sendChunked(producer, records, maxRequestBytes);
      },
      async transaction() {
        const tx: Transaction = await producer.transaction();
        return {
          async send(records) {
            await sendChunked(tx, records, maxRequestBytes);
          },
          async sendOffsets(groupId, offsets) {
            const byTopic = new Map<string, Array<{ partition: number; offset: string }>>();
            for (const o of offsets) {
              let l = byTopic.get(o.topic);
              if (!l) byTopic.set(o.topic, (l = []));
              l.push({ partition: o.partition, offset: o.offset });
            }
            await tx.sendOffsets({ consumerGroupId: groupId, topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) });
          },
          commit: () => tx.commit(),
          abort: () => tx.abort(),
        };
      },
      async fence() {
        // kafkajs initialises the transactional producer id on the first transaction() only; an
        // empty transaction is aborted without an EndTxn request.
        const tx = await producer.transaction();
        await tx.abort();
      },
      disconnect: () => producer.disconnect(),
    };
  }
}

/**
 * Checks TLS to the first bootstrap broker that accepts a TCP connection: the handshake, then a
 * Kafka ApiVersions request answered (under TLS 1.3 a broker refuses a client certificate only
 * after the handshake). kafkajs retries TLS failures as connection errors for tens of seconds;
 * this names them at once, with what to set. Resolves when TLS is not configured, when the
 * broker answers, or when no broker could be reached (that failure is kafkajs's to report).
 */
export async function checkKafkaTls(brokers: string[], security: KafkaSecurity = kafkaSecurity(), timeoutMs = 10_000): Promise<void> {
  const ssl = security.ssl;
  if (!ssl) return;
  for (const broker of brokers) {
    const at = broker.lastIndexOf(':');
    const host = broker.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(broker.slice(at + 1));
    const failure = await new Promise<NodeJS.ErrnoException | 'unreachable' | undefined>((resolve) => {
      const socket = tlsConnect({ host, port, ...ssl, ...(isIP(host) === 0 ? { servername: host } : {}) });
      const done = (r: NodeJS.ErrnoException | 'unreachable' | undefined): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve(r);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      let handshaken = false;
      socket.once('secureConnect', () => {
        handshaken = true;
        const clientId = Buffer.from('vigil-tls-check');
        const req = Buffer.alloc(4 + 2 + 2 + 4 + 2 + clientId.length);
        req.writeInt32BE(req.length - 4, 0);
        req.writeInt16BE(18, 4); // ApiVersions
        req.writeInt16BE(0, 6);
        req.writeInt32BE(1, 8);
        req.writeInt16BE(clientId.length, 12);
        clientId.copy(req, 14);
        socket.write(req);
      });
      socket.once('data', () => done(undefined));
      socket.once('error', (err: NodeJS.ErrnoException) => done(!handshaken && ['ECONNREFUSED', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT'].includes(err.code ?? '') ? 'unreachable' : err));
      socket.once('close', () => done(handshaken ? Object.assign(new Error('the broker closed the connection after the TLS handshake'), { code: 'CLOSED' }) : 'unreachable'));
    });
    if (failure === 'unreachable') continue;
    if (failure === undefined) return;
    throw new KafkaTlsError(`TLS to Kafka at ${broker} failed: ${failure.message.trim()}${tlsHint(failure, host)}`);
  }
}

export class KafkaTlsError extends Error {
  override name = 'KafkaTlsError';
}

function tlsHint(err: NodeJS.ErrnoException, host: string): string {
  const code = err.code ?? '';
  const text = `${code} ${err.message}`;
  if (/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED/.test(text))
    return " (the broker's certificate does not chain to a CA this client trusts: set KAFKA_SSL_CA_LOCATION, or ssl.ca.location, to the CA's PEM file)";
  if (/ALTNAME|Hostname\/IP does not match/.test(text))
    return ` (the broker's certificate does not name ${host}: connect by a name it has, or set KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM=none)`;
  if (/BAD_CERTIFICATE|CERTIFICATE_REQUIRED|bad certificate|certificate required|UNKNOWN_CA|unknown ca/i.test(text) || code === 'CLOSED')
    return ' (the broker wants a client certificate it trusts: set KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION)';
  if (/WRONG_VERSION_NUMBER|wrong version number|packet length too long|disconnected before secure TLS/i.test(text)) return ' (the broker did not answer TLS: is this a PLAINTEXT or SASL_PLAINTEXT listener?)';
  if (/EXPIRED|NOT_YET_VALID/.test(text)) return " (the broker's certificate is outside its validity period)";
  return '';
}

/**
 * The partition Kafka's Java client (and kafkajs's default partitioner, and librdkafka with
 * `partitioner: murmur2_random`) places a keyed record on: murmur2 of the key bytes, made
 * positive, modulo the partition count.
 */
export function murmur2Partition(key: Buffer, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), in 32-bit integer arithmetic. */
export function murmur2(data: Buffer): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  // The last 1-3 bytes (Java's switch falls through from case 3 to case 1).
  const tail = length & ~3;
  const rest = length % 4;
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}
