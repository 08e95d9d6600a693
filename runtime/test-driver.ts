// In-process test driver (Kafka Streams' TopologyTestDriver): runs a Plan's tasks without a
// broker, with explicit wall-clock time. Records are Avro round-tripped through the source and
// sink schemas, so a record a real run could not encode fails here too. It complements, and
// does not replace, the tests against a real broker.
import avro from 'avsc';
import type { Type } from 'avsc';
import type { StreamRecord } from '../operators/types.ts';
import type { Plan, PlanSink, SubTopology } from '../topology/types.ts';
import { Task, WATERMARK_HEADER, WATERMARK_TASK_HEADER, upstreamTaskCounts } from './task.ts';
import { sinkKey } from './keys.ts';
import type { DeadLetter, InputRef, TaskHooks } from './task.ts';
import type { ChangelogEntry } from './stores.ts';

export interface PipeOptions {
  key?: string | null;
  /** Kafka record timestamp (ms); also the event time when the source declares no timestamp field. */
  timestamp?: number;
  partition?: number;
}

/** Deterministic string hash for in-process partitioning (FNV-1a). */
function partitionOf(key: string | null, partitions: number, fallback: number): number {
  if (key === null) return fallback % partitions;
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

export class TestDriver {
  private wall: number;
  private readonly tasks = new Map<string, Task>();
  private readonly outputs = new Map<string, StreamRecord[]>();
  private readonly dead: DeadLetter[] = [];
  private readonly types = new Map<string, Type>();
  /** Everything written to changelogs so far, per topic and partition, in order (for restart()). */
  private readonly changelogs = new Map<string, ChangelogEntry[]>();
  private offset = 0;
  private readonly upstreamTasks: Map<string, number>;
  /** Per task: the watermark last broadcast to the repartition topics it writes. */
  private broadcast = new Map<string, number>();
  private roundRobin = 0;

  constructor(
    readonly plan: Plan,
    opts: { wallClock?: number } = {},
  ) {
    this.wall = opts.wallClock ?? 0;
    this.upstreamTasks = upstreamTaskCounts(plan.subtopologies);
    this.createTasks();
  }

  /** Sends one record to a source (by source name or topic); operators must be synchronous. */
  pipe(source: string, value: Record<string, unknown>, opts: PipeOptions = {}): void {
    const { task, topic, record, input } = this.prepare(source, value, opts);
    if (task.process(topic, record, input)) throw new Error('asynchronous operators need pipeAsync()');
    this.commit();
  }

  /** Like pipe(), awaiting asynchronous operators (e.g. external lookups). */
  async pipeAsync(source: string, value: Record<string, unknown>, opts: PipeOptions = {}): Promise<void> {
    const { task, topic, record, input } = this.prepare(source, value, opts);
    await task.process(topic, record, input);
    this.commit();
  }

  private prepare(source: string, value: Record<string, unknown>, opts: PipeOptions) {
    const { sub, src } = this.findSource(source);
    const type = this.typeOf(src.schema);
    const bytes = type.toBuffer(value);
    const decoded = type.fromBuffer(bytes) as Record<string, unknown>;
    const key = opts.key ?? null;
    const partition = opts.partition ?? partitionOf(key, sub.partitions, this.roundRobin++);
    const ts = opts.timestamp ?? this.wall;
    const task = this.task(sub, partition);
    const input: InputRef = {
      topic: src.topic,
      partition,
      offset: String(this.offset++),
      key: key === null ? null : Buffer.from(key),
      value: bytes,
      timestamp: ts,
      headers: {},
    };
    const record: StreamRecord = { key, value: decoded, timestamp: task.eventTime(src, decoded, ts) };
    return { task, topic: src.topic, record, input };
  }

  /** Moves the wall clock forward and fires due wall-clock timers in every task. */
  advanceWallClock(ms: number): void {
    this.wall += ms;
    for (const t of this.tasks.values()) t.tick(this.wall);
    this.commit();
  }

  /** Records written to a sink (by sink name or topic), in order. */
  output(sink: string): StreamRecord[] {
    for (const sub of this.plan.subtopologies)
      for (const s of sub.sinks) if (s.name === sink || s.topic === sink) return this.outputs.get(s.topic) ?? [];
    throw new Error(`no sink '${sink}' in the plan`);
  }

  deadLetters(): DeadLetter[] {
    return this.dead;
  }

  /** All tasks' stores, for assertions on state. */
  allTasks(): Task[] {
    return [...this.tasks.values()];
  }

  /**
   * Simulates a crash and restart: drops every task and rebuilds them from the changelogs
   * written so far, as the runtime restores from Kafka. Outputs already emitted are kept.
   */
  restart(): void {
    for (const t of this.tasks.values()) void t.close();
    this.tasks.clear();
    this.broadcast = new Map();
    this.createTasks();
  }

  private createTasks(): void {
    for (const sub of this.plan.subtopologies)
      for (let p = 0; p < sub.partitions; p++) {
        const self: { task?: Task } = {};
        const t = new Task(
          this.plan.topology.name,
          sub,
          p,
          this.hooks(self),
          (n) => n.def.create(n.config, { input: n.inputSchemas[0]!, inputs: n.inputSchemas, name: n.name }),
          this.upstreamTasks,
        );
        self.task = t;
        for (const store of t.stores)
          for (const e of this.changelogs.get(`${store.changelogTopic}/${p}`) ?? [])
            store.restore(e.key, e.value === null ? null : Buffer.from(e.value));
        t.afterRestore();
        this.tasks.set(t.id, t);
      }
  }

  private hooks(self: { task?: Task }): TaskHooks {
    return {
      now: () => this.wall,
      deadLetter: (dl) => this.dead.push(dl),
      sink: (sink, record, input) => this.emit(sink, record, input, self.task!),
    };
  }

  private emit(sink: PlanSink, record: StreamRecord, input: InputRef | undefined, from: Task): void {
    const type = this.typeOf(sink.schema);
    let value: Record<string, unknown>;
    try {
      value = type.fromBuffer(type.toBuffer(record.value)) as Record<string, unknown>;
    } catch (err) {
      this.dead.push({ stage: 'encode', reason: 'encode-error', detail: (err as Error).message, input, record });
      return;
    }
    const out: StreamRecord = { key: record.key, value, timestamp: record.timestamp };
    out.key = sinkKey(sink, out);
    if (sink.internal) {
      // A repartition topic: feed the consuming sub-topology, partitioned by key, with the
      // writing task's watermark in the headers as the runner writes it.
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
          headers: { [WATERMARK_HEADER]: String(from.watermark), [WATERMARK_TASK_HEADER]: from.id },
        };
        const r = this.task(sub, partition).process(src.topic, out, ref);
        if (r) throw new Error('asynchronous operators need pipeAsync()');
      }
      return;
    }
    let list = this.outputs.get(sink.topic);
    if (!list) this.outputs.set(sink.topic, (list = []));
    list.push(out);
  }

  /** Sends watermark markers from tasks whose watermark advanced to every task reading their repartition topics. */
  private broadcastWatermarks(): void {
    for (const from of this.tasks.values()) {
      const wm = from.watermark;
      if (wm <= (this.broadcast.get(from.id) ?? Number.NEGATIVE_INFINITY)) continue;
      let any = false;
      for (const sink of from.sub.sinks) {
        if (!sink.internal) continue;
        any = true;
        for (const sub of this.plan.subtopologies)
          if (sub.sources.some((s) => s.topic === sink.topic))
            for (let p = 0; p < sub.partitions; p++)
              this.task(sub, p).watermarkMarker(sink.topic, { [WATERMARK_HEADER]: String(wm), [WATERMARK_TASK_HEADER]: from.id });
      }
      if (any) this.broadcast.set(from.id, wm);
    }
  }

  private commit(): void {
    this.broadcastWatermarks();
    for (const t of this.tasks.values())
      for (const store of t.stores) {
        const changes = store.drainChanges();
        if (changes.length === 0) continue;
        const k = `${store.changelogTopic}/${t.partition}`;
        let list = this.changelogs.get(k);
        if (!list) this.changelogs.set(k, (list = []));
        list.push(...changes);
      }
  }

  private findSource(name: string): { sub: SubTopology; src: SubTopology['sources'][number] } {
    for (const sub of this.plan.subtopologies)
      for (const src of sub.sources) if (src.name === name || src.topic === name) return { sub, src };
    throw new Error(`no source '${name}' in the plan`);
  }

  private task(sub: SubTopology, partition: number): Task {
    const t = this.tasks.get(`${sub.id}_${partition}`);
    if (!t) throw new Error(`no task for sub-topology ${sub.id} partition ${partition}`);
    return t;
  }

  private typeOf(schema: object): Type {
    const k = JSON.stringify(schema);
    let t = this.types.get(k);
    if (!t) this.types.set(k, (t = avro.Type.forSchema(schema as avro.Schema)));
    return t;
  }
}
