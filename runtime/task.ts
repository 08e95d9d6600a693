// A task runs one sub-topology for one partition: its own operator instances, stores, timers
// and event-time watermark. It knows nothing of Kafka: the runner (runtime/runner.ts) and the
// in-process test driver (runtime/test-driver.ts) feed it decoded records and take its outputs
// through TaskHooks, so both exercise exactly the same processing code.
import type {
  OperatorContext,
  OperatorInstance,
  StreamRecord,
  Timer,
  KeyValueStore,
  WindowStore,
} from '../operators/types.ts';
import type { ConsumedRecord } from '../connectors/kafka-client.ts';
import type { PlanSink, PlanSource, SubTopology } from '../topology/types.ts';
import { MemoryKeyValueStore, MemoryWindowStore } from './stores.ts';
import type { ManagedStore } from './stores.ts';
import { TimerQueue } from './timers.ts';

/** The raw input record a processed record came from (for dead letters: nothing is lost). */
export type InputRef = ConsumedRecord;

export interface DeadLetter {
  /** Where it failed: decode, operator, encode, produce. */
  stage: string;
  /** Short machine-readable reason, e.g. bad-magic-byte, unknown-schema-id, late, operator-error. */
  reason: string;
  /** Human-readable detail (error message). */
  detail?: string;
  node?: string;
  /** The input record, when the failure can be traced to one. */
  input?: InputRef;
  /** The decoded record, when there was no input record (e.g. a timer's output). */
  record?: StreamRecord;
}

export interface TaskHooks {
  sink(sink: PlanSink, record: StreamRecord, input: InputRef | undefined): void;
  deadLetter(dl: DeadLetter): void;
  /** Wall clock (ms). */
  now(): number;
}

export interface NodeCounters {
  in: number;
  out: number;
  errors: number;
  custom: Map<string, number>;
}

interface InputState {
  source: PlanSource;
  /** Max event time seen on this input partition. */
  maxTs: number;
  /** Wall-clock time of the last record (or of task start). */
  lastSeen: number;
  /** Repartition inputs: the watermark of each upstream task, and how many upstream tasks there are. */
  upstream?: { expected: number; since: number; tasks: Map<string, { wm: number; seen: number }> };
}

type Target = (rec: StreamRecord) => void;

const NEG_INF = Number.NEGATIVE_INFINITY;

/**
 * Watermark propagation through repartition topics (as Flink propagates watermarks between
 * operators): every record a task writes to a repartition topic carries the writing task's id and
 * watermark in these headers, and the runner also sends watermark-only markers (no value) to every
 * partition of the topic when a task's watermark advances. A downstream task's watermark for that
 * input is the minimum over the upstream tasks, so records regrouped from several upstream tasks
 * are never late merely because another upstream task ran ahead.
 */
export const WATERMARK_HEADER = 'vigil.wm';
export const WATERMARK_TASK_HEADER = 'vigil.wm.task';
export const CONTROL_HEADER = 'vigil.control';

/** For each repartition topic of a plan: how many upstream tasks write it (their watermarks are merged). */
export function upstreamTaskCounts(subs: readonly SubTopology[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const sub of subs) for (const sink of sub.sinks) if (sink.internal) out.set(sink.topic, sub.partitions);
  return out;
}

/** Name of the changelog topic that backs a task's runtime metadata (timers, stream time). */
export function metaChangelogTopic(topology: string, subtopology: number): string {
  return `${topology}-subtopology-${subtopology}-meta-changelog`;
}

class NodeRuntime implements OperatorContext {
  readonly counters: NodeCounters = { in: 0, out: 0, errors: 0, custom: new Map() };
  instance!: OperatorInstance;
  targets: Target[] = [];
  readonly stores = new Map<string, ManagedStore>();

  constructor(
    readonly name: string,
    private readonly task: Task,
  ) {}

  get taskId(): string {
    return this.task.id;
  }
  get partition(): number {
    return this.task.partition;
  }

  forward(record: StreamRecord): void {
    this.counters.out++;
    const t = this.targets;
    for (let i = 0; i < t.length; i++) t[i]!(record);
  }

  kv<V>(store: string): KeyValueStore<V> {
    const s = this.stores.get(store);
    if (!(s instanceof MemoryKeyValueStore)) throw new Error(`operator '${this.name}' has no key-value store '${store}'`);
    return s as MemoryKeyValueStore<V>;
  }

  windows<V>(store: string): WindowStore<V> {
    const s = this.stores.get(store);
    if (!(s instanceof MemoryWindowStore)) throw new Error(`operator '${this.name}' has no window store '${store}'`);
    return s as MemoryWindowStore<V>;
  }

  schedule(timer: Timer): void {
    this.task.timers.schedule(this.name, timer);
  }

  cancel(kind: Timer['kind'], key: string): void {
    this.task.timers.cancel(this.name, kind, key);
  }

  watermark(): number {
    return this.task.watermark;
  }

  now(): number {
    return this.task.hooks.now();
  }

  deadLetter(reason: string, detail?: string): void {
    this.task.hooks.deadLetter({ stage: 'operator', reason, detail, node: this.name, input: this.task.current });
  }

  count(metric: string, by = 1): void {
    this.counters.custom.set(metric, (this.counters.custom.get(metric) ?? 0) + by);
  }

  /** Calls the operator on one record; a throw dead-letters the input record. */
  deliver(rec: StreamRecord): void {
    this.counters.in++;
    try {
      const r = this.instance.process(rec, this);
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
        const input = this.task.current;
        this.task.pending.push((r as Promise<void>).catch((err: unknown) => this.fail(err, input)));
      }
    } catch (err) {
      this.fail(err, this.task.current);
    }
  }

  fail(err: unknown, input: InputRef | undefined): void {
    this.counters.errors++;
    this.task.hooks.deadLetter({
      stage: 'operator',
      reason: 'operator-error',
      detail: err instanceof Error ? err.message : String(err),
      node: this.name,
      input,
    });
  }
}

export class Task {
  readonly id: string;
  readonly nodes = new Map<string, NodeRuntime>();
  /** Every store of the task, including the runtime's metadata store. */
  readonly stores: ManagedStore[] = [];
  /** The operators' stores (every store but the metadata store). */
  readonly operatorStores: ManagedStore[] = [];
  readonly timers: TimerQueue;
  readonly meta: MemoryKeyValueStore<number | { at: number; data?: unknown }>;
  /** The input record being processed (undefined while timers fire). */
  current: InputRef | undefined;
  /** Promises of asynchronous operators for the current input record. */
  pending: Promise<void>[] = [];
  watermark = NEG_INF;
  private readonly inputs = new Map<string, InputState>();
  private readonly entry = new Map<string, Target[]>();
  private readonly watermarkNodes: NodeRuntime[] = [];

  constructor(
    readonly topology: string,
    readonly sub: SubTopology,
    readonly partition: number,
    readonly hooks: TaskHooks,
    create: (node: SubTopology['nodes'][number]) => OperatorInstance,
    /** upstreamTaskCounts(plan.subtopologies): repartition inputs take their watermark from upstream tasks. */
    upstreamTasks: ReadonlyMap<string, number> = new Map(),
  ) {
    this.id = `${sub.id}_${partition}`;
    this.meta = new MemoryKeyValueStore(`__meta`, metaChangelogTopic(topology, sub.id));
    this.stores.push(this.meta);
    this.timers = new TimerQueue(this.meta);

    for (const n of sub.nodes) {
      const rt = new NodeRuntime(n.name, this);
      for (const s of n.stores) {
        const store = s.kind === 'kv' ? new MemoryKeyValueStore(s.name, s.changelogTopic) : new MemoryWindowStore(s.name, s.changelogTopic);
        rt.stores.set(s.name, store);
        this.stores.push(store);
        this.operatorStores.push(store);
      }
      this.nodes.set(n.name, rt);
    }
    const sinks = new Map(sub.sinks.map((s) => [s.name, s]));
    const targetOf = (name: string): Target => {
      const node = this.nodes.get(name);
      if (node) return (rec) => node.deliver(rec);
      const sink = sinks.get(name);
      if (sink) return (rec) => this.hooks.sink(sink, rec, this.current);
      throw new Error(`plan error: '${name}' is neither a node nor a sink of sub-topology ${sub.id}`);
    };
    for (const n of sub.nodes) this.nodes.get(n.name)!.targets = n.downstream.map(targetOf);
    for (const s of sub.sources) {
      this.entry.set(s.topic, s.downstream.map(targetOf));
      const expected = upstreamTasks.get(s.topic);
      const now = hooks.now();
      this.inputs.set(s.topic, {
        source: s,
        maxTs: NEG_INF,
        lastSeen: now,
        ...(expected !== undefined ? { upstream: { expected, since: now, tasks: new Map() } } : {}),
      });
    }
    // Instances are created last, so a constructor may already look at its stores.
    for (const n of sub.nodes) {
      const rt = this.nodes.get(n.name)!;
      rt.instance = create(n);
      if (rt.instance.onWatermark) this.watermarkNodes.push(rt);
    }
  }

  /** Called once restore has filled the stores: rebuilds timers and stream time from the metadata store. */
  afterRestore(): void {
    this.timers.reload();
    const now = this.hooks.now();
    for (const [k, v] of this.meta.entries()) {
      if (typeof v !== 'number') continue;
      if (k.startsWith('w\u0000')) {
        const input = this.inputs.get(k.slice(2));
        if (input) input.maxTs = v;
      } else if (k.startsWith('u\u0000')) {
        const [, topic, upstream] = k.split('\u0000');
        this.inputs.get(topic!)?.upstream?.tasks.set(upstream!, { wm: v, seen: now });
      }
    }
    this.watermark = this.computeWatermark();
  }

  /** Event time of a record from a source: the declared field, else the Kafka timestamp. */
  eventTime(source: PlanSource, value: Record<string, unknown>, kafkaTs: number): number {
    if (!source.timestampField) return kafkaTs;
    const v = value[source.timestampField];
    return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : v instanceof Date ? v.getTime() : kafkaTs;
  }

  /**
   * Processes one decoded input record: the operators see it with the watermark as it was
   * before the record; then stream time advances and due event-time timers fire.
   */
  process(topic: string, record: StreamRecord, input: InputRef | undefined): void | Promise<void> {
    const targets = this.entry.get(topic);
    const state = this.inputs.get(topic);
    if (!targets || !state) throw new Error(`task ${this.id} has no input topic '${topic}'`);
    this.current = input;
    for (let i = 0; i < targets.length; i++) targets[i]!(record);
    state.lastSeen = this.hooks.now();
    if (state.upstream && input) this.observeHeaders(state, topic, input.headers);
    if (record.timestamp > state.maxTs) {
      state.maxTs = record.timestamp;
      this.meta.put(`w\u0000${topic}`, record.timestamp);
    }
    if (this.pending.length > 0) return this.settle();
    this.current = undefined;
    this.advance();
  }

  private async settle(): Promise<void> {
    const p = this.pending;
    this.pending = [];
    await Promise.all(p);
    this.current = undefined;
    this.advance();
  }

  /** A watermark-only marker from an upstream task (a record with no value on a repartition topic). */
  watermarkMarker(topic: string, headers: Record<string, string>): void {
    const state = this.inputs.get(topic);
    if (!state?.upstream) return;
    state.lastSeen = this.hooks.now();
    this.observeHeaders(state, topic, headers);
    this.advance();
  }

  private observeHeaders(state: InputState, topic: string, headers: Record<string, string>): void {
    const from = headers[WATERMARK_TASK_HEADER];
    const wm = Number(headers[WATERMARK_HEADER]);
    if (from === undefined || Number.isNaN(wm)) return;
    const known = state.upstream!.tasks.get(from);
    if (known && known.wm >= wm) {
      known.seen = state.lastSeen;
      return;
    }
    state.upstream!.tasks.set(from, { wm, seen: state.lastSeen });
    this.meta.put(`u\u0000${topic}\u0000${from}`, wm);
  }

  /** Re-evaluates the watermark (also called by the runner's wall-clock tick for idle inputs). */
  advance(): void {
    const wm = this.computeWatermark();
    if (wm <= this.watermark) return;
    this.watermark = wm;
    this.timers.fireDue('event', wm, (node, timer) => this.fire(node, timer));
    for (const n of this.watermarkNodes) n.instance.onWatermark!(wm, n);
  }

  /** Fires wall-clock timers due at `now`. */
  tick(now: number): void {
    this.timers.fireDue('wall', now, (node, timer) => this.fire(node, timer));
    this.advance();
  }

  private fire(nodeName: string, timer: Timer): void {
    const node = this.nodes.get(nodeName);
    if (!node?.instance.onTimer) return;
    this.current = undefined;
    try {
      node.instance.onTimer(timer, node);
    } catch (err) {
      node.fail(err, undefined);
    }
  }

  /**
   * min over the task's input partitions of (max event time - allowed out-of-orderness); with
   * several inputs, one silent for longer than its idle timeout stops holding the others back.
   */
  private computeWatermark(): number {
    let min = Number.POSITIVE_INFINITY;
    let max = NEG_INF;
    const now = this.hooks.now();
    for (const s of this.inputs.values()) {
      const wm = s.upstream ? this.upstreamWatermark(s.upstream, s.source.idleTimeoutMs, now) : s.maxTs === NEG_INF ? NEG_INF : s.maxTs - s.source.maxOutOfOrderMs;
      if (wm > max) max = wm;
      const idle = this.inputs.size > 1 && now - s.lastSeen >= s.source.idleTimeoutMs;
      if (!idle && wm < min) min = wm;
    }
    // All inputs idle: let the most advanced one drive stream time rather than stall forever.
    return min === Number.POSITIVE_INFINITY ? max : min;
  }

  /**
   * The minimum over the upstream tasks' watermarks. Until every upstream task has reported, the
   * input waits (for at most the idle timeout); an upstream task silent for longer than the idle
   * timeout stops holding the others back.
   */
  private upstreamWatermark(u: NonNullable<InputState['upstream']>, idleMs: number, now: number): number {
    if (u.tasks.size < u.expected && now - u.since < idleMs) return NEG_INF;
    let min = Number.POSITIVE_INFINITY;
    let max = NEG_INF;
    for (const t of u.tasks.values()) {
      if (t.wm > max) max = t.wm;
      if (now - t.seen < idleMs && t.wm < min) min = t.wm;
    }
    return min === Number.POSITIVE_INFINITY ? max : min;
  }

  counters(): Map<string, NodeCounters> {
    const out = new Map<string, NodeCounters>();
    for (const [name, n] of this.nodes) out.set(name, n.counters);
    return out;
  }

  async close(): Promise<void> {
    for (const n of this.nodes.values()) await n.instance.close?.();
  }
}
