// A task runs one sub-topology for one partition: its own operator instances, stores, timers,
// tables and event-time watermarks. It knows nothing of Kafka: the runner (runtime/runner.ts) and
// the in-process test driver (runtime/test-driver.ts) feed it decoded records and take its outputs
// through TaskHooks, so both exercise exactly the same processing code.
//
// Watermarks (as in Flink): the task's watermark is the minimum over its stream inputs of (max
// event time - max_out_of_order), or for a repartition input the minimum over the upstream tasks'.
// Each operator has an input watermark, the minimum of what its upstreams pass on (the task's for
// an operator reading a source), and passes on its own output watermark, which it may hold back
// (OperatorInstance.onWatermark). When the task's watermark advances, operators are visited in
// topological order: each fires its due event-time timers (their output reaching downstream
// operators that still have their old watermark), then passes its new watermark on. So an
// operator never sees as late what an upstream operator emitted on time.
import type { OperatorContext, OperatorInstance, Timer } from '../kernel/operator.ts';
import type { StreamRecord } from '../kernel/record.ts';
import type { BufferStore, KeyValueStore, StoreKind, StoreOfKind, TableView, WindowStore } from '../kernel/store.ts';
import type { ConsumedRecord } from '../connectors/kafka-client.ts';
import type { PlanNode, PlanSink, PlanSource, SubTopology, Target } from '../topology/types.ts';
import { MemoryKeyValueStore, avroCodec, createStore } from './stores.ts';
import type { ManagedStore } from './stores.ts';
import { TimerQueue, timerStore } from './timers.ts';

/** Stream time at the end of bounded input: 8.64e15 ms, the latest time a JavaScript Date holds. */
const END_OF_TIME = 8.64e15;

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
  /**
   * A record for a sink. `watermark`: the output watermark of what emitted it (the operator's, or
   * the task's for a source), which repartition topics carry downstream.
   */
  sink(sink: PlanSink, record: StreamRecord, input: InputRef | undefined, watermark: number): void;
  deadLetter(dl: DeadLetter): void;
  /** Wall clock (ms). */
  now(): number;
  /** A global table by source name (the runner's or the test driver's replica). */
  globalTable?(name: string): TableView;
  /** Sees every record an operator emits, per output (the test driver records them). */
  tap?(node: string, output: string, record: StreamRecord): void;
}

export interface NodeCounters {
  in: number;
  out: number;
  errors: number;
  custom: Map<string, number>;
  /** Durations (seconds) observed since the last export, per what. */
  durations: Map<string, number[]>;
  /** Current gauge values. */
  gauges: Map<string, number>;
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

type Deliver = (rec: StreamRecord) => void;

const NEG_INF = Number.NEGATIVE_INFINITY;

/**
 * Watermark propagation through repartition topics: every record a task writes to a repartition
 * topic carries the writer's id and the watermark of what emitted it in these headers, and the
 * runner also sends watermark-only markers (no value) to every partition of the topic when that
 * watermark advances. A downstream task's watermark for that input is the minimum over the
 * upstream tasks, so records regrouped from several upstream tasks are never late merely because
 * another upstream task ran ahead.
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

/** Name of the changelog topic that backs a task's stream time (watermarks). */
export function metaChangelogTopic(topology: string, subtopology: number): string {
  return `${topology}-subtopology-${subtopology}-meta-changelog`;
}

/** Name of the changelog topic that backs a task's timers. */
export function timersChangelogTopic(topology: string, subtopology: number): string {
  return `${topology}-subtopology-${subtopology}-timers-changelog`;
}

const LONG_CODEC = avroCodec<number>('long');

class NodeRuntime implements OperatorContext {
  readonly counters: NodeCounters = { in: 0, out: 0, errors: 0, custom: new Map(), durations: new Map(), gauges: new Map() };
  instance!: OperatorInstance;
  /** Targets of the default output. */
  targets: Deliver[] = [];
  readonly outputs = new Map<string, Deliver[]>();
  readonly stores = new Map<string, { kind: string; store: ManagedStore }>();
  readonly tables = new Map<string, TableView>();
  /** Upstream operators; null = a source of the task (the task's watermark). */
  readonly upstreams: (NodeRuntime | null)[] = [];
  inputWm = NEG_INF;
  outputWm = NEG_INF;

  constructor(
    readonly plan: PlanNode,
    private readonly task: Task,
  ) {}

  get name(): string {
    return this.plan.name;
  }
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

  emit(output: string, record: StreamRecord): void {
    const t = this.outputs.get(output);
    if (t === undefined) throw new Error(`operator '${this.name}' has no output '${output}'`);
    this.counters.out++;
    for (let i = 0; i < t.length; i++) t[i]!(record);
  }

  store<K extends StoreKind, V>(name: string, kind: K): StoreOfKind<V>[K] {
    const s = this.stores.get(name);
    if (s === undefined || s.kind !== kind) throw new Error(`operator '${this.name}' has no ${kind} store '${name}'`);
    return s.store as unknown as StoreOfKind<V>[K];
  }
  kv<V>(name: string): KeyValueStore<V> {
    return this.store<'kv', V>(name, 'kv');
  }
  windows<V>(name: string): WindowStore<V> {
    return this.store<'window', V>(name, 'window');
  }
  buffer<V>(name: string): BufferStore<V> {
    return this.store<'buffer', V>(name, 'buffer');
  }

  table<V = Record<string, unknown>>(name: string): TableView<V> {
    const t = this.tables.get(name);
    if (t === undefined) throw new Error(`operator '${this.name}' declared no table '${name}'`);
    return t as TableView<V>;
  }

  schedule(timer: Timer): void {
    this.task.timers.schedule(this.name, timer);
  }

  cancel(kind: Timer['kind'], key: string): void {
    this.task.timers.cancel(this.name, kind, key);
  }

  watermark(): number {
    return this.inputWm;
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

  observe(what: string, seconds: number): void {
    let list = this.counters.durations.get(what);
    if (list === undefined) this.counters.durations.set(what, (list = []));
    list.push(seconds);
  }

  gauge(name: string, value: number): void {
    this.counters.gauges.set(name, value);
  }

  defer<T>(work: Promise<T>, then: (result: T, ctx: OperatorContext) => void): void {
    const input = this.task.current;
    this.task.pending.push(
      work.then(
        (result) => this.task.within(input, () => {
          try {
            then(result, this);
          } catch (err) {
            this.fail(err, input);
          }
        }),
        (err: unknown) => this.fail(err, input),
      ),
    );
  }

  /** Calls the operator on one record of an input; a throw dead-letters the input record. */
  deliver(rec: StreamRecord, input: string): void {
    this.counters.in++;
    try {
      this.instance.process(rec, this, input);
    } catch (err) {
      this.fail(err, this.task.current);
    }
  }

  fail(err: unknown, input: InputRef | undefined): void {
    this.counters.errors++;
    // An error may name its own reason (an expression over its evaluation budget: over-budget).
    const own = err instanceof Error ? (err as { reason?: unknown }).reason : undefined;
    this.task.hooks.deadLetter({
      stage: 'operator',
      reason: typeof own === 'string' ? own : 'operator-error',
      detail: err instanceof Error ? err.message : String(err),
      node: this.name,
      input,
    });
  }
}

export class Task {
  readonly id: string;
  readonly nodes = new Map<string, NodeRuntime>();
  /** Operators in topological order (the plan's order). */
  private readonly order: NodeRuntime[] = [];
  /** Every changelogged store of the task, including the runtime's meta and timer stores. */
  readonly stores: ManagedStore[] = [];
  /** The operators' stores. */
  readonly operatorStores: ManagedStore[] = [];
  /** Partitioned tables, by topic: restored from, and updated by, the table's own topic. */
  readonly tableStores = new Map<string, { source: PlanSource; store: MemoryKeyValueStore<Record<string, unknown>>; watchers: NodeRuntime[] }>();
  readonly timers: TimerQueue;
  readonly meta: MemoryKeyValueStore<number>;
  /** The input record being processed (undefined while timers fire). */
  current: InputRef | undefined;
  /** Deferred work of operators (OperatorContext.defer) not yet settled. */
  pending: Promise<void>[] = [];
  /** The task's watermark: over its stream inputs (see the top of this file). */
  watermark = NEG_INF;
  private readonly inputs = new Map<string, InputState>();
  private readonly entry = new Map<string, Deliver[]>();
  /** Repartition and other sinks: what emits into them (null = a source of the task). */
  private readonly sinkEmitters = new Map<string, NodeRuntime | null>();

  constructor(
    readonly topology: string,
    readonly sub: SubTopology,
    readonly partition: number,
    readonly hooks: TaskHooks,
    /** upstreamTaskCounts(plan.subtopologies): repartition inputs take their watermark from upstream tasks. */
    upstreamTasks: ReadonlyMap<string, number> = new Map(),
  ) {
    this.id = `${sub.id}_${partition}`;
    this.meta = new MemoryKeyValueStore<number>('__meta', metaChangelogTopic(topology, sub.id), LONG_CODEC);
    const timers = timerStore(timersChangelogTopic(topology, sub.id));
    this.stores.push(this.meta, timers);
    this.timers = new TimerQueue(timers);

    for (const s of sub.sources) {
      if (s.kind !== 'table') continue;
      const store = new MemoryKeyValueStore<Record<string, unknown>>(s.name, s.topic, avroCodec(s.schema), false);
      this.tableStores.set(s.topic, { source: s, store, watchers: [] });
    }
    const tableByName = new Map([...this.tableStores.values()].map((t) => [t.source.name, t]));
    for (const n of sub.nodes) {
      const rt = new NodeRuntime(n, this);
      for (const s of n.stores) {
        const store = createStore(s, s.changelogTopic);
        rt.stores.set(s.name, { kind: s.kind, store });
        this.stores.push(store);
        this.operatorStores.push(store);
      }
      for (const t of n.tables) {
        if (t.mode === 'partitioned') {
          const local = tableByName.get(t.table);
          if (local === undefined) throw new Error(`plan error: table '${t.table}' of '${n.name}' is not a source of sub-topology ${sub.id}`);
          rt.tables.set(t.table, local.store);
          if (t.watch) local.watchers.push(rt);
        } else {
          const global = hooks.globalTable?.(t.table);
          if (global === undefined) throw new Error(`no replica of global table '${t.table}'`);
          rt.tables.set(t.table, global);
        }
      }
      this.nodes.set(n.name, rt);
      this.order.push(rt);
    }
    const sinks = new Map(sub.sinks.map((s) => [s.name, s]));
    const deliverTo = (t: Target, from: NodeRuntime | null): Deliver => {
      if ('sink' in t) {
        const sink = sinks.get(t.sink);
        if (!sink) throw new Error(`plan error: '${t.sink}' is no sink of sub-topology ${sub.id}`);
        this.sinkEmitters.set(sink.name, from);
        return from === null
          ? (rec) => this.hooks.sink(sink, rec, this.current, this.watermark)
          : (rec) => this.hooks.sink(sink, rec, this.current, from.outputWm);
      }
      const node = this.nodes.get(t.node);
      if (!node) throw new Error(`plan error: '${t.node}' is no operator of sub-topology ${sub.id}`);
      node.upstreams.push(from);
      const input = t.input;
      return (rec) => node.deliver(rec, input);
    };
    const tap = hooks.tap;
    for (const n of sub.nodes) {
      const rt = this.nodes.get(n.name)!;
      for (const o of n.outputs) {
        const targets = o.downstream.map((t) => deliverTo(t, rt));
        if (tap !== undefined) targets.push((rec) => tap(n.name, o.name, rec));
        rt.outputs.set(o.name, targets);
      }
      rt.targets = rt.outputs.get(n.outputs[0]?.name ?? '') ?? [];
    }
    const now = hooks.now();
    for (const s of sub.sources) {
      if (s.kind === 'table') continue;
      this.entry.set(s.topic, s.downstream.map((t) => deliverTo(t, null)));
      const expected = upstreamTasks.get(s.topic);
      this.inputs.set(s.topic, {
        source: s,
        maxTs: NEG_INF,
        lastSeen: now,
        ...(expected !== undefined ? { upstream: { expected, since: now, tasks: new Map() } } : {}),
      });
    }
    // Instances are created last; they get their context (stores, tables) in open().
    for (const rt of this.order) rt.instance = rt.plan.compiled.create();
  }

  /** Called once restore has filled the stores: rebuilds timers and stream time, then opens the operators. */
  afterRestore(): void {
    this.timers.reload();
    const now = this.hooks.now();
    for (const [k, v] of this.meta.entries()) {
      if (k.startsWith('w\u0000')) {
        const input = this.inputs.get(k.slice(2));
        if (input) input.maxTs = v;
      } else if (k.startsWith('u\u0000')) {
        const [, topic, upstream] = k.split('\u0000');
        this.inputs.get(topic!)?.upstream?.tasks.set(upstream!, { wm: v, seen: now });
      }
    }
    this.watermark = this.computeWatermark();
    for (const n of this.order) {
      try {
        n.instance.open?.(n);
      } catch (err) {
        throw new Error(`operator '${n.name}' failed to open: ${(err as Error).message}`);
      }
    }
    // Operators' watermarks follow from the task's (they are not stored): the timers due at them
    // fired before the state was committed, and what an operator holds back it derives again.
    for (const n of this.order) this.propagate(n, true);
  }

  /** Event time of a record from a source: the declared field, else the Kafka timestamp. */
  eventTime(source: PlanSource, value: Record<string, unknown>, kafkaTs: number): number {
    if (!source.timestampField) return kafkaTs;
    const v = value[source.timestampField];
    return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : v instanceof Date ? v.getTime() : kafkaTs;
  }

  /** Whether `topic` is a table of this task (its records go to applyTable). */
  isTable(topic: string): boolean {
    return this.tableStores.has(topic);
  }

  /**
   * Processes one decoded input record: the operators see it with the watermarks as they were
   * before the record; then stream time advances and due event-time timers fire.
   */
  process(topic: string, record: StreamRecord, input: InputRef | undefined): void {
    const targets = this.entry.get(topic);
    const state = this.inputs.get(topic);
    if (!targets || !state) throw new Error(`task ${this.id} has no input topic '${topic}'`);
    this.current = input;
    for (let i = 0; i < targets.length; i++) targets[i]!(record);
    this.current = undefined;
    state.lastSeen = this.hooks.now();
    if (state.upstream && input) this.observeHeaders(state, topic, input.headers);
    if (record.timestamp > state.maxTs) {
      state.maxTs = record.timestamp;
      this.meta.put(`w\u0000${topic}`, record.timestamp);
    }
    this.advance();
  }

  /**
   * A table record: the latest value of `key` (null deletes it), visible to every record
   * processed after it. Watching operators are told; nothing else happens.
   */
  applyTable(topic: string, key: string, value: Record<string, unknown> | null, input: InputRef | undefined): void {
    const t = this.tableStores.get(topic);
    if (t === undefined) throw new Error(`task ${this.id} has no table topic '${topic}'`);
    t.store.apply(key, value);
    this.current = input;
    for (const w of t.watchers) {
      try {
        w.instance.onTableUpdate?.(t.source.name, key, value, w);
      } catch (err) {
        w.fail(err, input);
      }
    }
    this.current = undefined;
  }

  /** Restores a partitioned table's row from its topic (no operator is told). */
  restoreTable(topic: string, key: string, value: Record<string, unknown> | null): void {
    this.tableStores.get(topic)?.store.apply(key, value);
  }

  /** Runs `fn` as if processing `input` (deferred work's continuations). */
  within(input: InputRef | undefined, fn: () => void): void {
    const prev = this.current;
    this.current = input;
    try {
      fn();
    } finally {
      this.current = prev;
    }
  }

  /** Waits for every piece of deferred work (and what it deferred in turn), then re-evaluates watermarks. */
  async settle(): Promise<void> {
    if (this.pending.length === 0) return;
    while (this.pending.length > 0) {
      const p = this.pending;
      this.pending = [];
      await Promise.all(p);
    }
    this.advance(true);
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

  /**
   * Re-evaluates the watermarks (also called by the runner's wall-clock tick for idle inputs).
   * `force`: re-ask every operator for its output watermark even if no input watermark moved
   * (after deferred work settled, an operator may hold back less).
   */
  advance(force = false): void {
    const wm = this.computeWatermark();
    if (wm > this.watermark) this.watermark = wm;
    else if (!force) return;
    for (const n of this.order) this.propagate(n, force);
  }

  /** The watermark an operator's upstreams pass on. */
  private inputWatermark(n: NodeRuntime): number {
    let w = Number.POSITIVE_INFINITY;
    for (const up of n.upstreams) {
      const x = up === null ? this.watermark : up.outputWm;
      if (x < w) w = x;
    }
    return w === Number.POSITIVE_INFINITY ? this.watermark : w;
  }

  private propagate(n: NodeRuntime, force: boolean): void {
    const win = this.inputWatermark(n);
    const moved = win > n.inputWm;
    if (!moved && !force) return;
    if (moved) {
      n.inputWm = win;
      this.timers.fireDue(n.name, 'event', win, (timer) => this.fire(n, timer));
    }
    let out = n.inputWm;
    if (n.instance.onWatermark) {
      try {
        const held = n.instance.onWatermark(n.inputWm, n);
        if (typeof held === 'number' && held < out) out = held;
      } catch (err) {
        n.fail(err, undefined);
      }
    }
    if (moved) for (const s of n.stores.values()) s.store.expire(n.inputWm);
    if (out > n.outputWm) n.outputWm = out;
  }

  /**
   * The end of a bounded input (a backtest): stream time moves past every record, so every window
   * closes and every event-time timer fires. Repartition inputs follow from their upstream tasks.
   */
  endOfInput(): void {
    // The last time a Date can hold (year 275760): past every record, and still a valid Avro long
    // (avsc refuses Number.MAX_SAFE_INTEGER) where the watermark is kept or sent on.
    for (const s of this.inputs.values()) if (!s.upstream) s.maxTs = END_OF_TIME;
    this.advance();
  }

  /** Fires wall-clock timers due at `now`, operator by operator. */
  tick(now: number): void {
    for (const n of this.order) this.timers.fireDue(n.name, 'wall', now, (timer) => this.fire(n, timer));
    this.advance();
  }

  private fire(node: NodeRuntime, timer: Timer): void {
    if (!node.instance.onTimer) return;
    this.current = undefined;
    try {
      node.instance.onTimer(timer, node);
    } catch (err) {
      node.fail(err, undefined);
    }
  }

  /** The watermark a sink's records carry: the output watermark of what feeds it. */
  sinkWatermark(sink: string): number {
    const from = this.sinkEmitters.get(sink);
    return from === undefined || from === null ? this.watermark : from.outputWm;
  }

  /**
   * min over the task's stream input partitions of (max event time - allowed out-of-orderness);
   * with several inputs, one silent for longer than its idle timeout stops holding the others back.
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
