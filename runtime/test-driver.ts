// In-process test driver (Kafka Streams' TopologyTestDriver): runs a Plan's tasks without a
// broker, with explicit wall-clock time. Records are Avro round-tripped through the source and
// sink schemas, so a record a real run could not encode fails here too. It complements, and
// does not replace, the tests against a real broker.
import avro from 'avsc';
import type { Type } from 'avsc';
import type { StreamRecord } from '../kernel/record.ts';
import type { TableView } from '../kernel/store.ts';
import type { GlobalTable, Plan, PlanSink, PlanSource, SubTopology } from '../topology/types.ts';
import { Task, WATERMARK_HEADER, WATERMARK_TASK_HEADER, upstreamTaskCounts } from './task.ts';
import { sinkKey } from './keys.ts';
import type { DeadLetter, InputRef, TaskHooks } from './task.ts';
import { MemoryKeyValueStore, avroCodec } from './stores.ts';
import type { ChangelogEntry } from './stores.ts';

export interface PipeOptions {
  key?: string | null;
  /** Kafka record timestamp (ms); also the event time when the source declares no timestamp field. */
  timestamp?: number;
  partition?: number;
  headers?: Record<string, string>;
}

/** Records fed back through the topology's own topics within one step, at most. */
const MAX_FED_BACK = 1_000_000;

/** Deterministic string hash for in-process partitioning (FNV-1a). */
export function partitionOf(key: string | null, partitions: number, fallback: number): number {
  if (key === null) return fallback % partitions;
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

/** Told of what comes out, as it comes out (a backtest streams it to files instead of keeping it). */
export interface DriverListener {
  sink?(sink: string, record: StreamRecord): void;
  tap?(node: string, output: string, record: StreamRecord): void;
  deadLetter?(dl: DeadLetter): void;
}

export interface DriverOptions {
  /** The wall clock at the start (ms); default 0. */
  wallClock?: number;
  /**
   * Keep outputs, operator outputs, dead letters and changelogs for output(), recorded(),
   * deadLetters() and restart() (default). Off: only the listener sees them, and memory stays flat.
   */
  retain?: boolean;
  listener?: DriverListener;
}

export class TestDriver {
  private wall: number;
  private readonly tasks = new Map<string, Task>();
  /** Records written, per topic and per sink name. */
  private readonly outputs = new Map<string, StreamRecord[]>();
  private readonly bySink = new Map<string, StreamRecord[]>();
  /** What each operator emitted, per "<operator>\u0000<output>". */
  private readonly taps = new Map<string, StreamRecord[]>();
  private readonly dead: DeadLetter[] = [];
  private readonly types = new Map<string, Type>();
  private readonly typesBySchema = new WeakMap<object, Type>();
  /** Everything written to changelogs (and table topics) so far, per topic and partition, in order (for restart()). */
  private readonly changelogs = new Map<string, ChangelogEntry[]>();
  private readonly tableRows = new Map<string, Array<{ key: string; value: Record<string, unknown> | null }>>();
  private readonly globals = new Map<string, { table: GlobalTable; store: MemoryKeyValueStore<Record<string, unknown>> }>();
  private offset = 0;
  private readonly upstreamTasks: Map<string, number>;
  /** Per task and repartition topic: the watermark last broadcast to it. */
  private broadcast = new Map<string, number>();
  private roundRobin = 0;
  private readonly retain: boolean;
  private readonly listener: DriverListener;
  /** Records written to topics the topology also reads, waiting to be read back. */
  private readonly fedBack: Array<{ source: string; value: Record<string, unknown>; opts: PipeOptions }> = [];

  constructor(
    readonly plan: Plan,
    opts: DriverOptions = {},
  ) {
    this.wall = opts.wallClock ?? 0;
    this.retain = opts.retain ?? true;
    this.listener = opts.listener ?? {};
    this.upstreamTasks = upstreamTaskCounts(plan.subtopologies);
    for (const g of plan.globalTables) this.globals.set(g.name, { table: g, store: new MemoryKeyValueStore(g.name, g.topic, avroCodec(g.schema), false) });
    this.createTasks();
  }

  /**
   * Sends one record to a source (by source name or topic). A table source takes a key, and a
   * null value deletes it. Operators that defer work (lookups) need pipeAsync().
   */
  pipe(source: string, value: Record<string, unknown> | null, opts: PipeOptions = {}): void {
    const task = this.send(source, value, opts);
    if (task !== undefined && task.pending.length > 0) throw new Error('this topology defers work (e.g. HTTP lookups): use pipeAsync()');
    this.commit();
  }

  /** Like pipe(), then waits for the work operators deferred. */
  async pipeAsync(source: string, value: Record<string, unknown> | null, opts: PipeOptions = {}): Promise<void> {
    this.send(source, value, opts);
    await this.settle();
    this.commit();
  }

  /**
   * Sends several records as one consumed batch would arrive: all are processed, then the deferred
   * work of all of them (running concurrently) is awaited, then the batch commits.
   */
  async pipeBatch(source: string, records: Array<{ value: Record<string, unknown> | null } & PipeOptions>): Promise<void> {
    for (const r of records) this.send(source, r.value, r);
    await this.settle();
    this.commit();
  }

  /** Waits for every task's deferred work. */
  async settle(): Promise<void> {
    for (let again = true; again; ) {
      again = false;
      for (const t of this.tasks.values())
        if (t.pending.length > 0) {
          again = true;
          await t.settle();
        }
    }
  }

  private send(source: string, value: Record<string, unknown> | null, opts: PipeOptions): Task | undefined {
    // A table may be read global by some operators and partitioned by others: both see the row.
    const global = this.globals.get(source) ?? [...this.globals.values()].find((g) => g.table.topic === source);
    if (global !== undefined) global.store.apply(this.tableKey(source, opts), value === null ? null : this.roundTrip(global.table.schema, value));
    const found = this.findSource(source, global === undefined);
    if (found === undefined) return undefined;
    const { sub, src } = found;
    const key = opts.key ?? null;
    const partition = opts.partition ?? partitionOf(key, sub.partitions, this.roundRobin++);
    const task = this.task(sub, partition);
    if (src.kind === 'table') {
      const k = this.tableKey(source, opts);
      const row = value === null ? null : this.roundTrip(src.schema, value);
      if (this.retain) {
        const rows = this.tableRows.get(`${src.topic}/${partition}`) ?? [];
        rows.push({ key: k, value: row });
        this.tableRows.set(`${src.topic}/${partition}`, rows);
      }
      task.applyTable(src.topic, k, row, this.inputRef(src, partition, k, value === null ? null : this.typeOf(src.schema).toBuffer(value), opts));
      return task;
    }
    if (value === null) throw new Error(`stream source '${source}' takes records, not null (tables take null to delete a key)`);
    const type = this.typeOf(src.schema);
    const bytes = type.toBuffer(value);
    const decoded = type.fromBuffer(bytes) as Record<string, unknown>;
    const input = this.inputRef(src, partition, key, bytes, opts);
    const record: StreamRecord = { key, value: decoded, timestamp: task.eventTime(src, decoded, input.timestamp) };
    if (opts.headers !== undefined) record.headers = { ...opts.headers };
    task.process(src.topic, record, input);
    return task;
  }

  private tableKey(source: string, opts: PipeOptions): string {
    if (opts.key === undefined || opts.key === null) throw new Error(`table '${source}' needs a key for each row`);
    return opts.key;
  }

  private roundTrip(schema: object, value: Record<string, unknown>): Record<string, unknown> {
    const type = this.typeOf(schema);
    return type.fromBuffer(type.toBuffer(value)) as Record<string, unknown>;
  }

  private inputRef(src: PlanSource, partition: number, key: string | null, bytes: Buffer | null, opts: PipeOptions): InputRef {
    return {
      topic: src.topic,
      partition,
      offset: String(this.offset++),
      key: key === null ? null : Buffer.from(key),
      value: bytes,
      timestamp: opts.timestamp ?? this.wall,
      headers: opts.headers ?? {},
    };
  }

  /** Moves the wall clock forward and fires due wall-clock timers in every task. */
  advanceWallClock(ms: number): void {
    this.wall += ms;
    for (const t of this.tasks.values()) t.tick(this.wall);
    this.commit();
  }

  /** The wall clock (ms). */
  now(): number {
    return this.wall;
  }

  /**
   * The end of bounded inputs: stream time moves past every record in every task (and, through
   * repartition topics, downstream), so every window closes and every event-time timer fires.
   */
  endOfInput(): void {
    for (const t of this.tasks.values()) t.endOfInput();
    this.commit();
  }

  /** Records written by a sink (by name), or to a topic (by every sink writing it), in order. */
  output(sink: string): StreamRecord[] {
    const sinks = this.plan.subtopologies.flatMap((s) => s.sinks).filter((s) => !s.internal);
    if (sinks.some((s) => s.name === sink)) return this.bySink.get(sink) ?? [];
    if (sinks.some((s) => s.topic === sink)) return this.outputs.get(sink) ?? [];
    throw new Error(`no sink '${sink}' in the plan`);
  }

  /**
   * What came out of a sink (by name or topic) or an operator (`op`: its first output, or
   * `op.output`), in order.
   */
  recorded(name: string): StreamRecord[] {
    for (const sub of this.plan.subtopologies) for (const s of sub.sinks) if (!s.internal && (s.name === name || s.topic === name)) return this.output(name);
    const nodes = this.plan.subtopologies.flatMap((s) => s.nodes);
    let node = nodes.find((n) => n.name === name);
    let output = node?.outputs[0]?.name;
    if (node === undefined) {
      const dot = name.lastIndexOf('.');
      node = dot > 0 ? nodes.find((n) => n.name === name.slice(0, dot)) : undefined;
      output = name.slice(dot + 1);
      if (node === undefined || !node.outputs.some((o) => o.name === output)) {
        const names = [...this.plan.topology.sinks.map((s) => s.name), ...nodes.flatMap((n) => n.outputs.map((o, i) => (i === 0 ? n.name : `${n.name}.${o.name}`)))];
        throw new Error(`no sink or operator output '${name}' (there are: ${names.join(', ')})`);
      }
    }
    return this.taps.get(`${node.name}\u0000${output}`) ?? [];
  }

  deadLetters(): DeadLetter[] {
    return this.dead;
  }

  /** All tasks' stores, for assertions on state. */
  allTasks(): Task[] {
    return [...this.tasks.values()];
  }

  /**
   * Simulates a crash and restart: drops every task and rebuilds them from the changelogs (and
   * table topics) written so far, as the runtime restores from Kafka. Outputs already emitted are
   * kept.
   */
  restart(): void {
    if (!this.retain) throw new Error('restart() needs the changelogs: this driver was created with retain: false');
    for (const t of this.tasks.values()) void t.close();
    this.tasks.clear();
    this.broadcast = new Map();
    this.createTasks();
  }

  private createTasks(): void {
    for (const sub of this.plan.subtopologies)
      for (let p = 0; p < sub.partitions; p++) {
        const self: { task?: Task } = {};
        const t = new Task(this.plan.topology.name, sub, p, this.hooks(self), this.upstreamTasks);
        self.task = t;
        for (const store of t.stores)
          for (const e of this.changelogs.get(`${store.changelogTopic}/${p}`) ?? []) store.restore(e.key, e.value);
        for (const topic of t.tableStores.keys()) for (const r of this.tableRows.get(`${topic}/${p}`) ?? []) t.restoreTable(topic, r.key, r.value);
        t.afterRestore();
        this.tasks.set(t.id, t);
      }
  }

  private hooks(self: { task?: Task }): TaskHooks {
    return {
      now: () => this.wall,
      deadLetter: (dl) => {
        if (this.retain) this.dead.push(dl);
        this.listener.deadLetter?.(dl);
      },
      sink: (sink, record, input, watermark) => this.emit(sink, record, input, self.task!, watermark),
      tap: (node, output, record) => {
        const copy = { key: record.key, value: record.value, timestamp: record.timestamp, ...(record.headers ? { headers: record.headers } : {}) };
        if (this.retain) {
          const k = `${node}\u0000${output}`;
          let list = this.taps.get(k);
          if (!list) this.taps.set(k, (list = []));
          list.push(copy);
        }
        this.listener.tap?.(node, output, copy);
      },
      globalTable: (name): TableView => {
        const g = this.globals.get(name);
        if (g === undefined) throw new Error(`no global table '${name}' in the plan`);
        return g.store;
      },
    };
  }

  private emit(sink: PlanSink, record: StreamRecord, input: InputRef | undefined, from: Task, watermark: number): void {
    const type = this.typeOf(sink.schema);
    let value: Record<string, unknown>;
    try {
      value = type.fromBuffer(type.toBuffer(record.value)) as Record<string, unknown>;
    } catch (err) {
      const dl: DeadLetter = { stage: 'encode', reason: 'encode-error', detail: (err as Error).message, input, record };
      if (this.retain) this.dead.push(dl);
      this.listener.deadLetter?.(dl);
      return;
    }
    const out: StreamRecord = { key: record.key, value, timestamp: record.timestamp };
    if (record.headers !== undefined) out.headers = record.headers;
    out.key = sinkKey(sink, out);
    if (sink.internal) {
      // A repartition topic: feed the consuming sub-topology, partitioned by key, with the
      // watermark of what emitted the record in the headers, as the runner writes it.
      for (const sub of this.plan.subtopologies) {
        const src = sub.sources.find((s) => s.topic === sink.topic);
        if (!src) continue;
        const partition = partitionOf(out.key, sub.partitions, 0);
        const ref: InputRef = {
          topic: sink.topic,
          partition,
          offset: String(this.offset++),
          key: out.key === null ? null : Buffer.from(out.key),
          value: type.toBuffer(value),
          timestamp: out.timestamp,
          headers: { [WATERMARK_HEADER]: String(watermark), [WATERMARK_TASK_HEADER]: from.id },
        };
        this.task(sub, partition).process(src.topic, { ...out }, ref);
      }
      return;
    }
    if (this.retain)
      for (const [map, k] of [[this.outputs, sink.topic], [this.bySink, sink.name]] as const) {
        let list = map.get(k);
        if (!list) map.set(k, (list = []));
        list.push(out);
      }
    this.listener.sink?.(sink.name, out);
    // A topic this topology also reads (alerts written by rules, read back by a router): its
    // sources get the record after what is being processed now, as they would from Kafka.
    // send() takes the topic and gives the record to whatever reads it (a source, a global table).
    if (this.plan.subtopologies.some((sub) => sub.sources.some((s) => s.topic === sink.topic)) || this.plan.globalTables.some((g) => g.topic === sink.topic))
      this.fedBack.push({ source: sink.topic, value, opts: { key: out.key, timestamp: out.timestamp } });
  }

  /** Sends watermark markers for repartition topics whose feeding watermark advanced, to every task reading them. */
  private broadcastWatermarks(): void {
    for (let again = true; again; ) {
      again = false;
      for (const from of this.tasks.values())
        for (const sink of from.sub.sinks) {
          if (!sink.internal) continue;
          const wm = from.sinkWatermark(sink.name);
          const k = `${from.id}\u0000${sink.topic}`;
          if (wm <= (this.broadcast.get(k) ?? Number.NEGATIVE_INFINITY)) continue;
          this.broadcast.set(k, wm);
          again = true;
          for (const sub of this.plan.subtopologies)
            if (sub.sources.some((s) => s.topic === sink.topic))
              for (let p = 0; p < sub.partitions; p++) this.task(sub, p).watermarkMarker(sink.topic, { [WATERMARK_HEADER]: String(wm), [WATERMARK_TASK_HEADER]: from.id });
        }
    }
  }

  private commit(): void {
    // Records fed back through topics, in the order they were written; a loop that never ends is an error.
    for (let n = 0; this.fedBack.length > 0; n++) {
      if (n >= MAX_FED_BACK) throw new Error(`records keep coming back through topic '${this.fedBack[0]!.source}': the topology loops through its own topics`);
      const f = this.fedBack.shift()!;
      this.send(f.source, f.value, f.opts);
    }
    this.broadcastWatermarks();
    for (const t of this.tasks.values())
      for (const store of t.stores) {
        const changes = store.drainChanges();
        if (changes.length === 0 || !this.retain) continue;
        const k = `${store.changelogTopic}/${t.partition}`;
        let list = this.changelogs.get(k);
        if (!list) this.changelogs.set(k, (list = []));
        list.push(...changes);
      }
  }

  private findSource(name: string, required: true): { sub: SubTopology; src: PlanSource };
  private findSource(name: string, required: boolean): { sub: SubTopology; src: PlanSource } | undefined;
  private findSource(name: string, required: boolean): { sub: SubTopology; src: PlanSource } | undefined {
    for (const sub of this.plan.subtopologies)
      for (const src of sub.sources) if (src.name === name || src.topic === name) return { sub, src };
    if (required) throw new Error(`no source '${name}' in the plan`);
    return undefined;
  }

  private task(sub: SubTopology, partition: number): Task {
    const t = this.tasks.get(`${sub.id}_${partition}`);
    if (!t) throw new Error(`no task for sub-topology ${sub.id} partition ${partition}`);
    return t;
  }

  private typeOf(schema: object): Type {
    let t = this.typesBySchema.get(schema);
    if (t === undefined) {
      const k = JSON.stringify(schema);
      t = this.types.get(k);
      if (!t) this.types.set(k, (t = avro.Type.forSchema(schema as avro.Schema)));
      this.typesBySchema.set(schema, t);
    }
    return t;
  }
}
