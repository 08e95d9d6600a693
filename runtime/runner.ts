// Executes a Plan on Kafka: one consumer group per topology, one Task per sub-topology and
// partition, batches decoded, processed, encoded and produced, then committed.
//
// Commits: a batch's outputs, dead letters and changelog records are sent as soon as it is
// processed; the consumed offsets are committed once per `commit_interval` (and on the wall-clock
// tick, and on a graceful stop), so one commit covers many batches.
//
// Guarantees
// - at_least_once: outputs, dead letters and changelog records are produced (acks=all,
//   idempotent producer) and acknowledged before the offsets covering them are committed.
// - exactly_once: one transactional producer per task (transactional.id =
//   <topology>-<subtopology>-<partition>, the pre-KIP-447 scheme kafkajs supports); outputs,
//   changelog writes and the consumed offsets commit in one transaction, which stays open across
//   the batches of one commit interval; inputs and changelogs
//   are read read_committed. A new owner of a task initialises the same transactional id, which
//   fences the previous owner (zombie) and aborts its open transaction.
//
// Failure handling: any error while a batch is processed or committed discards the task's
// in-memory state (it may be ahead of what was committed); the task is rebuilt from its
// changelog and resumes at the group's committed offset. Under exactly_once a failed commit
// (fenced, timed out, connection lost) also closes the transactional producer and restarts the
// consumer, so the group's current assignment decides who owns the partition.
import { randomUUID } from 'node:crypto';
import { KafkaClient, murmur2Partition } from '../connectors/kafka-client.ts';
import type {
  AdminClient,
  BatchControls,
  BatchProducer,
  ConsumedBatch,
  ConsumedRecord,
  GroupConsumer,
  OutRecord,
  TransactionHandle,
} from '../connectors/kafka-client.ts';
import type { StreamRecord } from '../kernel/record.ts';
import type { TableView } from '../kernel/store.ts';
import type { AvroSerde } from '../schemas/serde.ts';
import type { Plan, PlanSink, PlanSource, SubTopology } from '../topology/types.ts';
import { planTopology } from '../topology/plan.ts';
import { deadLetterRecord } from './dead-letter.ts';
import { sinkKey } from './keys.ts';
import { EngineMetrics, serveMetrics } from './metrics.ts';
import type { ExtraHandler } from './metrics.ts';
import { ackEndpoint } from './ack-endpoint.ts';
import { redactText } from '../kernel/redact.ts';
import { printable } from '../kernel/diagnostics.ts';
import { CONTROL_HEADER, Task, WATERMARK_HEADER, WATERMARK_TASK_HEADER, metaChangelogTopic, timersChangelogTopic, upstreamTaskCounts } from './task.ts';
import { GlobalTableReplica } from './global-tables.ts';
import { checkStateLayouts, stateLayoutTopic } from './state-layouts.ts';
import type { RestoreFormats } from './state-layouts.ts';
import { readTopic } from '../connectors/topic-reader.ts';
import type { DeadLetter, InputRef } from './task.ts';
import type { ManagedStore } from './stores.ts';

const ACK_SCHEMA = 'vigil.alerting.Ack';

/** What the runner needs from the Avro serde (schemas/serde.ts). */
export type RuntimeSerde = Pick<AvroSerde, 'register' | 'prepareBatch' | 'decode' | 'encode' | 'addReaderSchema'> & Partial<Pick<AvroSerde, 'protectReadSubject'>>;

export interface RunnerOptions {
  plan: Plan;
  brokers: string[];
  serde: RuntimeSerde;
  /** Distinguishes instances in logs and client ids. */
  instanceId?: string;
  /** Port for /metrics and /health (0 = a free port; undefined = no server). */
  metricsPort?: number;
  /** Address the metrics server listens on (default 127.0.0.1). */
  metricsHost?: string;
  log?: (line: string) => void;
  /** Wall-clock tick for punctuation, idle detection and metrics (ms). */
  tickMs?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Batches (partitions) processed concurrently. */
  concurrency?: number;
  /** Encoded records larger than this go to the dead-letter topic instead of failing the batch. */
  maxRecordBytes?: number;
  /** Called when the consumer stopped for good (kafkajs gave up restarting it): the instance no longer processes. */
  onFatal?: (error: Error) => void;
  /** How often a task deletes the records of repartition topics it has committed (ms); Kafka Streams' repartition.purge.interval.ms. */
  purgeIntervalMs?: number;
  /** Operators whose state is dropped at start (`--reset-state`), e.g. after an incompatible change. */
  resetState?: readonly string[];
  /** Raise the compatibility of the subjects the topology reads so that no producer can register a schema it cannot read (default true). */
  protectReadSubjects?: boolean;
}

interface TaskSlot {
  task: Task;
  sub: SubTopology;
  /** Resolves once the stores are restored (and, under exactly_once, the producer has fenced). */
  ready: Promise<void>;
  restored: boolean;
  producer?: BatchProducer;
  /** Encoded outputs and dead letters waiting for the next commit. */
  out: OutRecord[];
  /** Serialises batch processing, punctuation and commits of this task. */
  chain: Promise<unknown>;
  discarded: boolean;
  /**
   * Per input topic, the offset after the last record this task's state includes: the group's
   * committed offset once restored, then each processed batch's end. kafkajs resets fetch
   * positions to the committed offsets on every rebalance, possibly read before the last
   * transaction's offsets were stable; records below this offset are already in the state and are
   * skipped, never processed twice.
   */
  next: Map<string, bigint>;
  /** Per repartition topic this task writes: the watermark last broadcast to it. */
  broadcast: Map<string, number>;
  /** Wall-clock time of the last purge of the repartition topics this task reads. */
  purgedAt: number;
  /** Per repartition topic this task reads: the offset committed last, and the offset purged up to. */
  purge: Map<string, { committed: string; purged: string }>;
  /** Offsets processed but not committed yet, per input topic. */
  pending: Map<string, string>;
  /** Wall-clock time of the last commit. */
  committedAt: number;
  /** exactly_once: the transaction open since the last commit. */
  tx?: TransactionHandle;
}

/** Creates and starts a Runner. */
export async function startRunner(opts: RunnerOptions): Promise<Runner> {
  const runner = new Runner(opts);
  try {
    await runner.start();
  } catch (err) {
    await runner.stop().catch(() => {});
    throw err;
  }
  return runner;
}

/** Topics a plan reads or writes, with partitions and configs, including the runtime's own. */
export function planTopics(plan: Plan): Array<{ topic: string; partitions: number; configs?: Record<string, string> }> {
  const t = plan.topology;
  const list = new Map<string, { topic: string; partitions: number; configs?: Record<string, string> }>();
  const compact = { 'cleanup.policy': 'compact', 'min.cleanable.dirty.ratio': '0.1', 'segment.ms': '600000' };
  // A table topic Vigil creates is compacted: the latest value per key is what a table is.
  for (const s of t.sources) list.set(s.topic, { topic: s.topic, partitions: s.partitions, ...(s.table ? { configs: compact } : {}) });
  // A sink that delivers outside Kafka writes an internal outbox topic (below).
  for (const s of t.sinks) if (s.deliver === undefined && !list.has(s.topic)) list.set(s.topic, { topic: s.topic, partitions: s.partitions });
  list.set(t.deadLetterTopic, { topic: t.deadLetterTopic, partitions: 1 });
  // Changelogs compact eagerly, so a restore reads about the live state, not the history.
  for (const it of plan.internalTopics)
    list.set(it.name, { topic: it.name, partitions: it.partitions, configs: it.kind === 'changelog' ? { ...compact, ...it.configs } : it.configs });
  for (const sub of plan.subtopologies)
    for (const name of [metaChangelogTopic(t.name, sub.id), timersChangelogTopic(t.name, sub.id)]) list.set(name, { topic: name, partitions: sub.partitions, configs: compact });
  list.set(stateLayoutTopic(t.name), { topic: stateLayoutTopic(t.name), partitions: 1, configs: compact });
  return [...list.values()];
}

/** A failed commit: kafkajs retries the batch (on a rebuilt task) and, past its retries, restarts the consumer. */
class CommitFailed extends Error {
  override name = 'VigilCommitFailed';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Runner {
  readonly metrics = new EngineMetrics();
  readonly groupId: string;
  private plan: Plan;
  private readonly client: KafkaClient;
  private readonly admin: AdminClient;
  private readonly log: (line: string) => void;
  private readonly eos: boolean;
  private readonly slots = new Map<string, TaskSlot>();
  private readonly subByTopic = new Map<string, { sub: SubTopology; source: PlanSource }>();
  private readonly schemaIds = new Map<string, number>();
  /** Repartition topics: partition count, and how many upstream tasks write each. */
  private repartitions = new Map<string, number>();
  private upstreamTasks = new Map<string, number>();
  private consumer?: GroupConsumer;
  private producer?: BatchProducer;
  /** Global tables (whole on every instance), by source name. */
  private readonly globalTables = new Map<string, GlobalTableReplica>();
  private ticker?: NodeJS.Timeout;
  private metricsServer?: { url: string; close(): Promise<void> };
  private stopping = false;
  private started = false;
  private assignment: Array<{ topic: string; partition: number }> = [];
  /** Topics whose misplaced keys were already warned about. */
  private readonly warnedPlacement = new Set<string>();
  /** Migrated stores: how restore reads values written in an older format. */
  private restoreFormats: RestoreFormats = new Map();
  readonly instanceId: string;

  constructor(private readonly opts: RunnerOptions) {
    this.plan = opts.plan;
    this.groupId = opts.plan.topology.name;
    this.eos = opts.plan.topology.guarantee === 'exactly_once';
    this.instanceId = opts.instanceId ?? randomUUID().slice(0, 8);
    this.client = new KafkaClient({ brokers: opts.brokers, clientId: `vigil-${this.groupId}-${this.instanceId}` });
    this.admin = this.client.admin();
    // Whatever a log line quotes (a client's error with a URL), credentials in URLs are redacted.
    const write = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
    this.log = (l) => write(redactText(l));
  }

  get metricsUrl(): string | undefined {
    return this.metricsServer?.url;
  }

  /** Topics the plan reads or writes, with partitions and configs, including the runtime's own. */
  topics(): Array<{ topic: string; partitions: number; configs?: Record<string, string> }> {
    return planTopics(this.plan);
  }

  async start(): Promise<void> {
    await this.adoptPartitionCounts();
    const t = this.plan.topology;
    this.repartitions = new Map(this.plan.internalTopics.filter((it) => it.kind !== 'changelog').map((it) => [it.name, it.partitions]));
    this.upstreamTasks = upstreamTaskCounts(this.plan.subtopologies);
    for (const sub of this.plan.subtopologies)
      for (const source of sub.sources) {
        this.subByTopic.set(source.topic, { sub, source });
        // Reader schemas: the sources' own, and the generated ones of repartition topics.
        this.opts.serde.addReaderSchema(source.schema);
      }
    await this.admin.createTopics(this.topics());
    this.restoreFormats = await this.checkStateLayouts();
    for (const sub of this.plan.subtopologies)
      for (const sink of sub.sinks) this.schemaIds.set(sink.topic, await this.opts.serde.register(`${sink.topic}-value`, sink.schema));
    await this.protectReadSubjects();

    if (this.opts.metricsPort !== undefined) {
      const ack = this.ackEndpoint();
      this.metricsServer = await serveMetrics(this.metrics, { ready: () => this.ready(), status: () => this.status() }, this.opts.metricsPort, this.opts.metricsHost, ack?.handler);
      this.log(`[vigil] metrics and health at ${this.metricsServer.url}/metrics ${this.metricsServer.url}/health`);
      if (ack !== undefined) this.log(`[vigil] acknowledgements at ${this.metricsServer.url}/ack/<alert or group id> (to ${ack.topic})`);
    }
    // Outputs under at_least_once; under exactly_once only what no task owns (a global table's dead letters).
    this.producer = this.client.producer();
    await this.producer.connect();
    await this.startGlobalTables();
    const consumer = this.client.consumer({
      groupId: this.groupId,
      readCommitted: this.eos,
      sessionTimeoutMs: this.opts.sessionTimeoutMs ?? 30_000,
      heartbeatIntervalMs: this.opts.heartbeatIntervalMs ?? Math.min(3_000, Math.floor((this.opts.sessionTimeoutMs ?? 30_000) / 3)),
    });
    this.consumer = consumer;
    consumer.onCrash((err, restart) => {
      this.log(`[vigil] consumer ${restart ? 'restarting' : 'stopped'} after: ${err.message}`);
      if (restart) this.discardAll();
      else if (!this.stopping) this.opts.onFatal?.(err);
    });
    // Without committed offsets a group starts where each source says: earliest, or latest.
    const latest = [...this.subByTopic].filter(([, v]) => v.source.startLatest === true).map(([topic]) => topic);
    const earliest = [...this.subByTopic.keys()].filter((topic) => !latest.includes(topic));
    if (earliest.length > 0) await consumer.subscribe(earliest, true);
    if (latest.length > 0) await consumer.subscribe(latest, false);
    await consumer.run({
      concurrency: this.opts.concurrency ?? 2,
      onAssignment: (a) => this.onAssignment(a),
      eachBatch: (batch, controls) => this.onBatch(batch, controls),
    });
    this.ticker = setInterval(() => this.tick(), this.opts.tickMs ?? 1000);
    this.ticker.unref();
    this.started = true;
    this.log(`[vigil] topology '${t.name}' running (${t.guarantee}), group ${this.groupId}, instance ${this.instanceId}`);
  }

  /**
   * For each topic the topology reads, the registry must refuse a producer schema the source's
   * reader schema cannot read (records written with it would all be dead-lettered): see
   * AvroSerde.protectReadSubject. A registry that refuses is reported, not fatal.
   */
  private async protectReadSubjects(): Promise<void> {
    const protect = this.opts.serde.protectReadSubject?.bind(this.opts.serde);
    if (protect === undefined || this.opts.protectReadSubjects === false) return;
    const seen = new Set<string>();
    for (const source of this.plan.topology.sources) {
      const subject = `${source.topic}-value`;
      if (seen.has(subject)) continue;
      seen.add(subject);
      const r = await protect(subject, source.schema);
      if (r.problem !== undefined) this.log(`[vigil] warning: registry subject ${subject}: ${r.problem}; producers may register schemas source '${source.name}' cannot read (their records are dead-lettered)`);
      else if (r.level !== r.previous) this.log(`[vigil] registry subject ${subject}: compatibility ${r.previous} -> ${r.level}, with ${source.schemaName} registered: a producer schema source '${source.name}' cannot read is refused`);
    }
  }

  /** Compares the operators' state layouts with those their state was written under (runtime/state-layouts.ts). */
  private async checkStateLayouts(): Promise<RestoreFormats> {
    const brokers = this.opts.brokers;
    return checkStateLayouts(this.plan, this.opts.resetState ?? [], {
      admin: this.admin,
      log: this.log,
      async read(topic) {
        const latest = new Map<string, { partition: number; key: string; value: string | null }>();
        for (const r of await readTopic({ brokers, topic, untilEnd: true, readCommitted: true }))
          if (r.key) latest.set(`${r.partition}\u0000${r.key.toString('utf8')}`, { partition: r.partition, key: r.key.toString('utf8'), value: r.value === null ? null : r.value.toString('utf8') });
        return [...latest.values()];
      },
      write: async (records) => {
        const producer = this.client.producer();
        await producer.connect();
        try {
          await producer.send(records);
        } finally {
          await producer.disconnect();
        }
      },
    });
  }

  /** Loads every global table before any task starts, then keeps them current. */
  private async startGlobalTables(): Promise<void> {
    const topology = this.plan.topology.name;
    for (const table of this.plan.globalTables) {
      const replica = new GlobalTableReplica({
        client: this.client,
        serde: this.opts.serde,
        table,
        groupPrefix: `${topology}-${this.instanceId}`,
        readCommitted: this.eos,
        log: this.log,
        deadLetter: (dl) => {
          this.metrics.deadLettered.inc({ topology, stage: dl.stage, reason: dl.reason });
          void this.producer!.send([deadLetterRecord(this.plan.topology.deadLetterTopic, topology, dl)]).catch((err: unknown) => this.log(`[vigil] dead letter of global table '${table.name}' not sent: ${(err as Error).message}`));
        },
      });
      this.globalTables.set(table.name, replica);
      await replica.start();
    }
  }

  /** Stops consuming, lets the batches in flight commit, and closes every client. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.ticker) clearInterval(this.ticker);
    // Commit what was processed while this instance still belongs to the group; batches still in
    // flight commit as they finish (they see `stopping`).
    await Promise.allSettled([...this.slots.values()].filter((s) => s.restored).map((s) => this.serial(s, () => this.flush(s, true))));
    try {
      await this.consumer?.stop();
    } catch (err) {
      this.log(`[vigil] consumer stop: ${(err as Error).message}`);
    }
    await Promise.allSettled([...this.slots.values()].map((s) => s.chain));
    await Promise.allSettled([...this.slots.values()].map((s) => this.closeSlot(s)));
    this.slots.clear();
    await Promise.allSettled([...this.globalTables.values()].map((g) => g.stop()));
    await Promise.allSettled([this.consumer?.disconnect(), this.producer?.disconnect(), this.admin.disconnect()]);
    await this.metricsServer?.close();
    this.log(`[vigil] topology '${this.plan.topology.name}' stopped`);
  }

  /** True once started and every assigned task has restored its state. */
  ready(): boolean {
    if (!this.started || this.stopping) return false;
    for (const s of this.slots.values()) if (!s.restored) return false;
    return true;
  }

  /** The operator stores of the tasks this instance runs now (for state-size figures). */
  operatorStores(): ManagedStore[] {
    return [...this.slots.values()].flatMap((s) => s.task.operatorStores);
  }

  /** The /ack endpoint, when the topology reads acknowledgements (a source of vigil.alerting.Ack). */
  private ackEndpoint(): { handler: ExtraHandler; topic: string } | undefined {
    const topics = [...new Set(this.plan.topology.sources.filter((s) => s.schemaName === ACK_SCHEMA).map((s) => s.topic))];
    if (topics.length !== 1) {
      if (topics.length > 1) this.log(`[vigil] no /ack endpoint: the topology reads acknowledgements from ${topics.length} topics (${topics.join(', ')})`);
      return undefined;
    }
    const topic = topics[0]!;
    const source = this.plan.topology.sources.find((s) => s.topic === topic)!;
    let id: Promise<number> | undefined;
    const handler = ackEndpoint({
      topic,
      ...(process.env.VIGIL_ACK_TOKEN ? { token: process.env.VIGIL_ACK_TOKEN } : {}),
      send: async (ack) => {
        const schemaId = await (id ??= this.opts.serde.register(`${topic}-value`, source.schema));
        if (this.producer === undefined) throw new Error('the instance is not running yet');
        await this.producer.send([{ topic, key: ack.target, value: this.opts.serde.encode(schemaId, ack) }]);
      },
    });
    return { handler, topic };
  }

  status(): Record<string, unknown> {
    return {
      topology: this.plan.topology.name,
      instance: this.instanceId,
      guarantee: this.plan.topology.guarantee,
      assignment: this.assignment.map((a) => `${a.topic}-${a.partition}`),
      tasks: [...this.slots.values()].map((s) => ({ id: s.task.id, restored: s.restored, watermark: s.task.watermark })),
    };
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Input topics that already exist decide the task count (their `partitions:` in the file only
   * applies when Vigil creates them): re-plans with the real counts. Co-partitioned inputs with
   * different counts are refused by the planner.
   */
  private async adoptPartitionCounts(): Promise<void> {
    const t = this.plan.topology;
    const actual = await this.admin.partitionCounts(t.sources.map((s) => s.topic));
    if (!t.sources.some((s) => actual.has(s.topic) && actual.get(s.topic) !== s.partitions)) return;
    this.plan = planTopology({ ...t, sources: t.sources.map((s) => ({ ...s, partitions: actual.get(s.topic) ?? s.partitions })) });
    this.log(`[vigil] partition counts taken from the existing input topics: ${t.sources.map((s) => `${s.topic}=${actual.get(s.topic) ?? s.partitions}`).join(', ')}`);
  }

  private onAssignment(assignment: Array<{ topic: string; partition: number }>): void {
    this.assignment = assignment;
    const wanted = new Set<string>();
    for (const { topic, partition } of assignment) {
      const e = this.subByTopic.get(topic);
      if (e) wanted.add(`${e.sub.id}_${partition}`);
    }
    for (const [id, slot] of this.slots)
      if (!wanted.has(id)) {
        this.slots.delete(id);
        slot.discarded = true;
        void slot.chain.then(() => this.closeSlot(slot));
      }
    for (const id of wanted)
      if (!this.slots.has(id)) {
        const [sub, p] = id.split('_').map(Number) as [number, number];
        this.createSlot(this.plan.subtopologies.find((s) => s.id === sub)!, p);
      }
    this.log(`[vigil] ${this.instanceId} assigned ${[...wanted].sort().join(', ') || 'nothing'}`);
    this.updateTaskGauges();
  }

  private createSlot(sub: SubTopology, partition: number): TaskSlot {
    const task = new Task(
      this.plan.topology.name,
      sub,
      partition,
      {
        now: () => Date.now(),
        sink: (sink, record, input, watermark) => this.emit(slot, sink, record, input, watermark),
        deadLetter: (dl) => this.deadLetter(slot, dl),
        globalTable: (name) => this.globalTable(name),
      },
      this.upstreamTasks,
    );
    const now = Date.now();
    const slot: TaskSlot = { task, sub, ready: Promise.resolve(), restored: false, out: [], chain: Promise.resolve(), discarded: false, next: new Map(), broadcast: new Map(), pending: new Map(), committedAt: now, purgedAt: now, purge: new Map() };
    slot.ready = this.prepare(slot);
    slot.ready.catch(() => undefined);
    this.slots.set(task.id, slot);
    return slot;
  }

  private globalTable(name: string): TableView {
    const g = this.globalTables.get(name);
    if (g === undefined) throw new Error(`global table '${name}' is not loaded`);
    return g.view;
  }

  private async prepare(slot: TaskSlot): Promise<void> {
    const { task } = slot;
    if (this.eos) {
      // Initialising the transactional id fences a previous owner and aborts its open transaction,
      // so the restore below reads only committed state.
      const producer = this.client.producer({ transactionalId: `${this.plan.topology.name}-${task.sub.id}-${task.partition}` });
      await producer.connect();
      slot.producer = producer;
      // kafkajs registers the transactional id only when a first transaction begins (connect()
      // does not): begin and abort an empty one now, so the fence is up — and a transaction the
      // previous owner was committing has completed — before the changelog and the committed
      // offsets are read.
      await producer.fence();
    }
    await this.restore(slot);
    task.afterRestore();
    for (const src of slot.sub.sources) {
      const c = (await this.admin.groupOffsets(this.groupId, src.topic)).find((o) => o.partition === task.partition);
      if (c && BigInt(c.offset) >= 0n) slot.next.set(src.topic, BigInt(c.offset));
    }
    slot.restored = true;
    this.updateTaskGauges();
  }

  /**
   * Replays each store's changelog partition, from the beginning to the end offset seen now, and
   * each partitioned table's topic partition up to the group's committed offset (the records after
   * it are consumed as input, in order with the streams).
   */
  private async restore(slot: TaskSlot): Promise<void> {
    const { task } = slot;
    const byTopic = new Map(task.stores.map((s) => [s.changelogTopic, s]));
    const targets = new Map<string, bigint>();
    let total = 0n;
    const consider = (topic: string, low: bigint, end: bigint) => {
      if (end > low) {
        targets.set(topic, end);
        total += end - low;
      }
    };
    for (const topic of byTopic.keys()) {
      const offs = (await this.admin.offsets(topic)).find((o) => o.partition === task.partition);
      if (offs) consider(topic, BigInt(offs.low), BigInt(offs.high));
    }
    const tables = new Map([...task.tableStores.values()].map((t) => [t.source.topic, t.source]));
    for (const topic of tables.keys()) {
      const offs = (await this.admin.offsets(topic)).find((o) => o.partition === task.partition);
      const committed = (await this.admin.groupOffsets(this.groupId, topic)).find((o) => o.partition === task.partition);
      if (offs && committed && BigInt(committed.offset) >= 0n) consider(topic, BigInt(offs.low), BigInt(committed.offset));
    }
    const topology = this.plan.topology.name;
    if (targets.size === 0) return;
    const started = Date.now();
    let restored = 0;
    const remaining = new Map(targets);
    this.metrics.restoreRemaining.set({ topology, task: task.id }, Number(total));
    const consumer = this.client.consumer({ groupId: `${topology}-restore-${this.instanceId}-${task.id}-${randomUUID().slice(0, 6)}`, readCommitted: this.eos });
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const progress = (topic: string, partition: number, lastOffset: string) => {
      const target = remaining.get(topic);
      if (partition !== task.partition || target === undefined) return;
      if (BigInt(lastOffset) + 1n >= target) {
        remaining.delete(topic);
        if (remaining.size === 0) resolveDone();
      }
    };
    consumer.onBatchEnd((topic, partition, lastOffset) => progress(topic, partition, lastOffset));
    await consumer.subscribe([...targets.keys()], true);
    await consumer.run({
      onAssignment: (a) => {
        const others = a.filter((x) => x.partition !== task.partition);
        const byT = new Map<string, number[]>();
        for (const o of others) byT.set(o.topic, [...(byT.get(o.topic) ?? []), o.partition]);
        if (byT.size) consumer.pause([...byT].map(([topic, partitions]) => ({ topic, partitions })));
      },
      eachBatch: async (batch: ConsumedBatch) => {
        if (batch.partition !== task.partition) return;
        const target = targets.get(batch.topic);
        if (target === undefined) return;
        const store = byTopic.get(batch.topic);
        const migrate = this.restoreFormats.get(batch.topic);
        const table = tables.get(batch.topic);
        if (table) await this.opts.serde.prepareBatch(batch.records.map((r) => r.value));
        for (const r of batch.records) {
          if (BigInt(r.offset) >= target) break;
          restored++;
          if (!r.key) continue;
          if (store) {
            const value = migrate === undefined ? r.value : migrate(task.partition, BigInt(r.offset), r.value);
            if (value !== undefined) store.restore(r.key.toString('utf8'), value);
          }
          else if (table) task.restoreTable(batch.topic, r.key.toString('utf8'), this.decodeTableRow(table, r));
        }
        this.metrics.restoreRecords.inc({ topology, store: batch.topic }, batch.records.length);
        this.metrics.restoreRemaining.set({ topology, task: task.id }, Math.max(0, Number(total) - restored));
      },
    });
    await done;
    await consumer.stop();
    await consumer.disconnect();
    const secs = (Date.now() - started) / 1000;
    const rate = secs > 0 ? restored / secs : restored;
    this.metrics.restoreRate.set({ topology }, rate);
    this.metrics.restoreRemaining.set({ topology, task: task.id }, 0);
    this.log(`[vigil] task ${task.id} restored ${restored} changelog records in ${secs.toFixed(2)} s (${Math.round(rate)} records/s)`);
  }

  private async onBatch(batch: ConsumedBatch, controls: BatchControls): Promise<void> {
    const entry = this.subByTopic.get(batch.topic);
    if (!entry) return;
    const id = `${entry.sub.id}_${batch.partition}`;
    let slot = this.slots.get(id);
    if (!slot) {
      // The task was discarded after a failure. A heartbeat first: if this instance was a zombie
      // (paused past its session), the group has moved on and kafkajs rejoins instead.
      await controls.heartbeat();
      slot = this.createSlot(entry.sub, batch.partition);
    }
    // Restoring can take longer than a session timeout: keep the membership alive meanwhile.
    let restoring = true;
    slot.ready.finally(() => (restoring = false)).catch(() => undefined);
    while (restoring) {
      await Promise.race([slot.ready.catch(() => undefined), sleep(1000)]);
      if (restoring) await controls.heartbeat();
    }
    await slot.ready;
    // Skip what the state already includes (a position reset by a rebalance). A batch that starts
    // later than expected is normal: transaction markers and compaction leave offset gaps.
    const next = slot.next.get(batch.topic);
    if (next !== undefined && BigInt(batch.records[0]!.offset) < next) {
      batch = { ...batch, records: batch.records.filter((r) => BigInt(r.offset) >= next) };
      if (batch.records.length === 0) return;
    }
    this.metrics.lag.set({ topology: this.plan.topology.name, topic: batch.topic, partition: String(batch.partition) }, batch.lag);
    const s = slot;
    await this.serial(s, () => this.processBatch(s, entry.source, batch, controls));
  }

  /** Runs `fn` after everything queued on the task; a failure discards the task's state. */
  private serial(slot: TaskSlot, fn: () => Promise<void>): Promise<void> {
    const run = slot.chain.then(async () => {
      if (slot.discarded) throw new Error(`task ${slot.task.id} was reassigned while its batch waited`);
      try {
        await fn();
      } catch (err) {
        this.log(`[vigil] ${(err as Error).message}; task ${slot.task.id} is rebuilt from its changelog and resumes at the committed offset`);
        await this.discard(slot);
        throw err;
      }
    });
    slot.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * A keyed source promises co-location only if its producers place keys as murmur2 does: counts
   * the records that are elsewhere, and warns once per topic with what to do.
   */
  private checkKeyPlacement(source: PlanSource, batch: ConsumedBatch): void {
    const partitions = this.plan.topology.sources.find((s) => s.topic === batch.topic)?.partitions;
    if (partitions === undefined || partitions < 2) return;
    let misplaced = 0;
    let example: ConsumedRecord | undefined;
    for (const r of batch.records) {
      if (r.key === null || murmur2Partition(r.key, partitions) === batch.partition) continue;
      misplaced++;
      example ??= r;
    }
    if (misplaced === 0) return;
    this.metrics.misplaced.inc({ topology: this.plan.topology.name, topic: batch.topic }, misplaced);
    if (this.warnedPlacement.has(batch.topic)) return;
    this.warnedPlacement.add(batch.topic);
    const key = printable(example!.key!.toString('utf8'), 200);
    this.log(
      `[vigil] warning: source '${source.name}' (topic ${batch.topic}): the record at partition ${batch.partition} offset ${example!.offset} has key '${key}', which Kafka's partitioner (murmur2) puts on partition ${murmur2Partition(example!.key!, partitions)}: ` +
        `its producer partitions otherwise (librdkafka's default is crc32: set partitioner=murmur2_random there), so records of one key may be split between tasks and their windows. ` +
        `Set 'partitioner: unknown' on the source to repartition instead (counted in vigil_source_misplaced_records_total).`,
    );
  }

  private async processBatch(slot: TaskSlot, source: PlanSource, batch: ConsumedBatch, controls: BatchControls): Promise<void> {
    const { task } = slot;
    const serde = this.opts.serde;
    const topology = this.plan.topology.name;
    await serde.prepareBatch(batch.records.map((r) => r.value));
    let n = 0;
    const table = source.kind === 'table';
    const internal = this.repartitions.has(batch.topic);
    if (source.checkKeyPlacement === true) this.checkKeyPlacement(source, batch);
    for (const r of batch.records) {
      // Keep the group membership alive through long batches (kafkajs heartbeats only between them).
      if ((++n & 4095) === 0) await controls.heartbeat();
      if (table) {
        this.applyTableRecord(slot, source, r);
        continue;
      }
      if (r.value === null && r.headers[CONTROL_HEADER] === 'watermark') {
        task.watermarkMarker(batch.topic, r.headers);
        continue;
      }
      let value: Record<string, unknown>;
      try {
        if (r.value === null) throw Object.assign(new Error('record has no value (null)'), { code: 'null-value' });
        value = serde.decode(r.value, source.schemaName).value;
      } catch (err) {
        this.deadLetter(slot, { stage: 'decode', reason: errorCode(err, 'decode-error'), detail: (err as Error).message, input: r });
        continue;
      }
      const record: StreamRecord = { key: r.key === null ? null : r.key.toString('utf8'), value, timestamp: task.eventTime(source, value, r.timestamp) };
      const headers = internal ? userHeaders(r.headers) : r.headers;
      if (headers !== undefined && Object.keys(headers).length > 0) record.headers = headers;
      task.process(batch.topic, record, r);
    }
    // Deferred work (lookups) must finish before the offsets that cover it commit.
    await this.settle(task, controls);
    this.metrics.consumed.inc({ topology, topic: batch.topic }, batch.records.length);
    this.exportCounters(slot);
    slot.pending.set(batch.topic, batch.nextOffset);
    await this.flush(slot, this.stopping || Date.now() - slot.committedAt >= this.plan.topology.commitIntervalMs);
    slot.next.set(batch.topic, BigInt(batch.nextOffset));
  }

  /**
   * Awaits a task's deferred work, heartbeating while it lasts. When the instance stops meanwhile
   * (a receiver that keeps failing holds a delivery for minutes), the batch is given up: nothing of
   * it commits, the task is rebuilt, and the next owner processes it again (at least once).
   */
  private async settle(task: Task, controls: BatchControls): Promise<void> {
    if (task.pending.length === 0) return;
    let done = false;
    const settled = task.settle().finally(() => (done = true));
    while (!done) {
      await Promise.race([settled, sleep(1000)]);
      if (done) break;
      if (this.stopping) {
        settled.catch(() => undefined);
        throw new Error(`stopping while task ${task.id} waits for deferred work (deliveries, lookups): its batch is not committed and is processed again`);
      }
      await controls.heartbeat();
    }
    await settled;
  }

  /** A record of a partitioned table: decoded and applied (null value = delete); no key = dead letter. */
  private applyTableRecord(slot: TaskSlot, source: PlanSource, r: InputRef): void {
    if (r.key === null) {
      this.deadLetter(slot, { stage: 'decode', reason: 'table-null-key', detail: `a record of table '${source.name}' has no key: a table row needs one`, input: r });
      return;
    }
    let value: Record<string, unknown> | null;
    try {
      value = this.decodeTableRow(source, r);
    } catch (err) {
      this.deadLetter(slot, { stage: 'decode', reason: errorCode(err, 'decode-error'), detail: (err as Error).message, input: r });
      return;
    }
    slot.task.applyTable(source.topic, r.key.toString('utf8'), value, r);
  }

  private decodeTableRow(source: PlanSource, r: InputRef): Record<string, unknown> | null {
    return r.value === null ? null : this.opts.serde.decode(r.value, source.schemaName).value;
  }

  private emit(slot: TaskSlot, sink: PlanSink, record: StreamRecord, input: InputRef | undefined, watermark: number): void {
    const id = this.schemaIds.get(sink.topic);
    let value: Buffer;
    try {
      if (id === undefined) throw new Error(`no schema registered for sink topic '${sink.topic}'`);
      value = this.opts.serde.encode(id, record.value);
    } catch (err) {
      this.deadLetter(slot, { stage: 'encode', reason: errorCode(err, 'encode-error'), detail: (err as Error).message, node: sink.name, input, record });
      return;
    }
    const max = this.opts.maxRecordBytes ?? 1_000_000;
    if (value.length > max) {
      this.deadLetter(slot, { stage: 'produce', reason: 'record-too-large', detail: `encoded record is ${value.length} bytes, above ${max}`, node: sink.name, input, record });
      return;
    }
    const key = sinkKey(sink, record);
    const out: OutRecord = { topic: sink.topic, key, value, timestamp: record.timestamp };
    if (record.headers !== undefined) out.headers = { ...record.headers };
    if (sink.internal) out.headers = { ...out.headers, [WATERMARK_HEADER]: String(watermark), [WATERMARK_TASK_HEADER]: slot.task.id };
    slot.out.push(out);
  }

  private deadLetter(slot: TaskSlot, dl: DeadLetter): void {
    const t = this.plan.topology;
    this.metrics.deadLettered.inc({ topology: t.name, stage: dl.stage, reason: dl.reason });
    slot.out.push(deadLetterRecord(t.deadLetterTopic, t.name, dl));
  }

  /**
   * Sends the task's pending outputs, dead letters and changelog changes; when `commit` is set,
   * also commits the offsets processed so far (under exactly_once: sends them to the open
   * transaction and commits it).
   */
  private async flush(slot: TaskSlot, commit: boolean): Promise<void> {
    const { task } = slot;
    const records = slot.out;
    slot.out = [];
    this.broadcastWatermark(slot, records);
    for (const store of task.stores)
      for (const c of store.drainChanges())
        records.push({ topic: store.changelogTopic, partition: task.partition, key: c.key, value: c.value === null ? null : Buffer.from(c.value) });
    const offsets = commit ? [...slot.pending].map(([topic, offset]) => ({ topic, partition: task.partition, offset })) : [];
    if (records.length === 0 && offsets.length === 0 && !(commit && slot.tx)) return;
    const end = this.metrics.commitLatency.startTimer({ topology: this.plan.topology.name, guarantee: this.plan.topology.guarantee });
    if (this.eos) {
      try {
        slot.tx ??= await slot.producer!.transaction();
        await slot.tx.send(records);
        if (commit) {
          if (offsets.length) await slot.tx.sendOffsets(this.groupId, offsets);
          await slot.tx.commit();
          slot.tx = undefined;
        }
      } catch (err) {
        await slot.tx?.abort().catch(() => undefined);
        slot.tx = undefined;
        // Fenced or indeterminate: never retry blindly. Drop the producer and rejoin the group.
        throw new CommitFailed(`transaction of task ${task.id} failed (fenced or indeterminate, not retried): ${(err as Error).message}`);
      }
    } else {
      await this.producer!.send(records);
      if (offsets.length) await this.consumer!.commit(offsets);
    }
    if (commit) {
      slot.committedAt = Date.now();
      end();
      for (const o of offsets) if (this.repartitions.has(o.topic)) slot.purge.set(o.topic, { committed: o.offset, purged: slot.purge.get(o.topic)?.purged ?? '0' });
      slot.pending.clear();
    }
    const topology = this.plan.topology.name;
    const perTopic = new Map<string, number>();
    for (const r of records) perTopic.set(r.topic, (perTopic.get(r.topic) ?? 0) + 1);
    for (const [topic, n] of perTopic) this.metrics.produced.inc({ topology, topic }, n);
  }

  /**
   * Appends watermark markers for every partition of each repartition topic the task writes, when
   * the watermark of what feeds it advanced. They follow the records written before them.
   */
  private broadcastWatermark(slot: TaskSlot, records: OutRecord[]): void {
    for (const sink of slot.sub.sinks) {
      const partitions = sink.internal ? this.repartitions.get(sink.topic) : undefined;
      if (partitions === undefined) continue;
      const wm = slot.task.sinkWatermark(sink.name);
      if (wm <= (slot.broadcast.get(sink.topic) ?? Number.NEGATIVE_INFINITY)) continue;
      slot.broadcast.set(sink.topic, wm);
      const headers = { [CONTROL_HEADER]: 'watermark', [WATERMARK_HEADER]: String(wm), [WATERMARK_TASK_HEADER]: slot.task.id };
      for (let p = 0; p < partitions; p++) records.push({ topic: sink.topic, partition: p, key: null, value: null, headers });
    }
  }

  /**
   * Deletes the committed records of the repartition topics a task reads, at most once per purge
   * interval (they have unlimited retention, so nothing else deletes them; Kafka Streams does the
   * same). Best effort: a failure is logged and retried at the next interval.
   */
  private purge(slot: TaskSlot, now: number): void {
    if (now - slot.purgedAt < (this.opts.purgeIntervalMs ?? 30_000)) return;
    slot.purgedAt = now;
    for (const [topic, p] of slot.purge) {
      if (p.purged === p.committed) continue;
      const offset = p.committed;
      p.purged = offset;
      void this.admin
        .deleteRecords(topic, [{ partition: slot.task.partition, offset }])
        .catch((err: unknown) => this.log(`[vigil] purging ${topic}-${slot.task.partition} below ${offset} failed: ${(err as Error).message}`));
    }
  }

  /** Wall-clock punctuation, idle inputs, and gauges; outputs commit without offsets. */
  private tick(): void {
    if (this.stopping) return;
    const now = Date.now();
    for (const slot of this.slots.values()) {
      if (!slot.restored || slot.discarded) continue;
      void this.serial(slot, async () => {
        slot.task.tick(now);
        await this.flush(slot, now - slot.committedAt >= this.plan.topology.commitIntervalMs);
        this.purge(slot, now);
      }).catch((err: unknown) => this.log(`[vigil] punctuation of task ${slot.task.id} failed: ${(err as Error).message}`));
      const topology = this.plan.topology.name;
      if (Number.isFinite(slot.task.watermark)) this.metrics.watermark.set({ topology, task: slot.task.id }, slot.task.watermark);
      for (const s of slot.task.stores) this.metrics.stateEntries.set({ topology, task: slot.task.id, store: s.name === '__meta' ? `${s.name}` : s.changelogTopic }, s.size);
      this.exportCounters(slot);
    }
  }

  /** Moves the task's per-node counters into the Prometheus counters. */
  private exportCounters(slot: TaskSlot): void {
    const topology = this.plan.topology.name;
    for (const [node, c] of slot.task.counters()) {
      if (c.in) this.metrics.recordsIn.inc({ topology, node }, c.in);
      if (c.out) this.metrics.recordsOut.inc({ topology, node }, c.out);
      if (c.errors) this.metrics.operatorErrors.inc({ topology, node }, c.errors);
      c.in = c.out = c.errors = 0;
      for (const [event, n] of c.custom) if (n) this.metrics.operatorEvents.inc({ topology, node, event }, n);
      c.custom.clear();
      for (const [what, list] of c.durations) for (const v of list) this.metrics.operatorDurations.observe({ topology, node, what }, v);
      c.durations.clear();
      for (const [name, v] of c.gauges) this.metrics.operatorStates.set({ topology, node, task: slot.task.id, name }, v);
    }
  }

  private async discard(slot: TaskSlot): Promise<void> {
    if (this.slots.get(slot.task.id) === slot) this.slots.delete(slot.task.id);
    slot.discarded = true;
    await this.closeSlot(slot);
    this.updateTaskGauges();
  }

  private discardAll(): void {
    for (const slot of this.slots.values()) {
      slot.discarded = true;
      void slot.chain.then(() => this.closeSlot(slot));
    }
    this.slots.clear();
  }

  private async closeSlot(slot: TaskSlot): Promise<void> {
    try {
      await slot.tx?.abort().catch(() => undefined);
      slot.tx = undefined;
      await slot.task.close();
    } finally {
      const p = slot.producer;
      slot.producer = undefined;
      if (p) await p.disconnect().catch(() => undefined);
    }
  }

  private updateTaskGauges(): void {
    const topology = this.plan.topology.name;
    let restoring = 0;
    let running = 0;
    for (const s of this.slots.values()) {
      if (s.restored) running++;
      else restoring++;
    }
    this.metrics.tasks.set({ topology, state: 'restoring' }, restoring);
    this.metrics.tasks.set({ topology, state: 'running' }, running);
  }
}

/** A record's headers without the ones Vigil adds to repartition topics. */
function userHeaders(h: Record<string, string>): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const k of Object.keys(h)) if (k !== WATERMARK_HEADER && k !== WATERMARK_TASK_HEADER) (out ??= {})[k] = h[k]!;
  return out;
}

/** A dead letter's reason from an error's stable code: VIGIL_SERDE_BAD_MAGIC -> bad-magic. */
function errorCode(err: unknown, fallback: string): string {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'string' ? c.replace(/^VIGIL_(SERDE_)?/, '').toLowerCase().replace(/_/g, '-') : fallback;
}
