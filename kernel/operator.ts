// The contract between operators and the rest of Vigil.
//
// Operators never import kafkajs or avsc: they see decoded records, a context (forward, stores,
// timers, tables, time) and their own validated config. One operator = one file under operators/
// exporting an OperatorDefinition, plus one line in operators/registry.ts. The definition's config
// spec drives parsing, `vigil validate` and the reference docs; its compile step runs once per
// operator of a topology and yields everything else: checks, output schemas, partitioning, stores,
// tables and the factory of per-task instances.
import type { ConfigIssue, ConfigSpec } from './spec.ts';
import type { RecordSchema } from './schema.ts';
import type { StreamRecord } from './record.ts';
import type { StoreDecl, StoreKind, StoreOfKind, TableView } from './store.ts';

export type { ConfigIssue, ConfigSpec, FieldKind, FieldSpec } from './spec.ts';
export type { AvroField, AvroType, RecordSchema } from './schema.ts';
export type { StreamRecord } from './record.ts';
export type { BufferEntry, BufferStore, KeyValueStore, StoreDecl, StoreKind, TableView, WindowStore } from './store.ts';

/** The name of an operator's input and output when it has only one. */
export const DEFAULT_INPUT = 'in';
export const DEFAULT_OUTPUT = 'out';

// ---------------------------------------------------------------------------------------------
// Time

export interface Timer {
  /** 'event': fires when the operator's input watermark reaches `at`; 'wall': when the wall clock does. */
  kind: 'event' | 'wall';
  at: number;
  /** Identifies the timer within the operator; scheduling the same kind+key again replaces it. */
  key: string;
  /** Small payload kept with the timer (persisted). */
  data?: string;
}

// ---------------------------------------------------------------------------------------------
// Running

export interface OperatorContext {
  /** "<subtopology>_<partition>", stable across restarts. */
  readonly taskId: string;
  readonly partition: number;
  /** Sends a record to every downstream node of the default (first) output. */
  forward(record: StreamRecord): void;
  /** Sends a record to every downstream node of a named output. */
  emit(output: string, record: StreamRecord): void;
  /** A store the operator declared, as its kind's interface. */
  store<K extends StoreKind, V>(name: string, kind: K): StoreOfKind<V>[K];
  kv<V>(name: string): StoreOfKind<V>['kv'];
  windows<V>(name: string): StoreOfKind<V>['window'];
  buffer<V>(name: string): StoreOfKind<V>['buffer'];
  /** A table source the operator declared (CompiledOperator.tables), partitioned or global. */
  table<V = Record<string, unknown>>(name: string): TableView<V>;
  /** Timers are persisted with the task's state and survive restarts and rebalances. */
  schedule(timer: Timer): void;
  cancel(kind: Timer['kind'], key: string): void;
  /**
   * This operator's input watermark (ms): the minimum of what its upstreams pass on; for an
   * operator reading sources directly, the task's max event time minus max_out_of_order.
   */
  watermark(): number;
  /** Wall clock in ms (the test driver controls it). */
  now(): number;
  /** Sends the record being processed to the dead-letter topic with a reason (e.g. 'late'). */
  deadLetter(reason: string, detail?: string): void;
  /** Increments a per-operator counter exported as a metric (vigil_operator_events_total). */
  count(metric: string, by?: number): void;
  /** Records a duration in seconds (vigil_operator_duration_seconds{what}). */
  observe(what: string, seconds: number): void;
  /** Sets a per-task gauge (vigil_operator_state{name}). */
  gauge(name: string, value: number): void;
  /**
   * Asynchronous work for the record being processed (an HTTP lookup): `then` runs with the
   * result once `work` settles, and its forwards and dead letters belong to that record. The task
   * commits no offset before all deferred work of what it covers has finished; a rejection of
   * `work` or a throw in `then` dead-letters the record (reason operator-error). Ordering between
   * deferred records is the operator's own concern.
   */
  defer<T>(work: Promise<T>, then: (result: T, ctx: OperatorContext) => void): void;
}

export interface OperatorInstance {
  /** Called once per task after its state is restored, before any record or timer. */
  open?(ctx: OperatorContext): void;
  /**
   * Handles one record of the named input (DEFAULT_INPUT for single-input operators). Throwing
   * sends the input record to the dead-letter topic.
   */
  process(record: StreamRecord, ctx: OperatorContext, input: string): void;
  /**
   * Called when the operator's input watermark advanced, after its due event-time timers fired.
   * Returns the watermark it passes on downstream (default: the input watermark): an operator
   * that may still emit records older than its input watermark holds it back (an aggregate, by its
   * grace), so operators after it see none of its output as late. The runtime never passes on
   * more than the input watermark, and never less than it passed on before.
   */
  onWatermark?(watermark: number, ctx: OperatorContext): number | void;
  onTimer?(timer: Timer, ctx: OperatorContext): void;
  /** Updates of tables declared with `watch: true`, as they are applied (value null: deleted). */
  onTableUpdate?(table: string, key: string, value: Record<string, unknown> | null, ctx: OperatorContext): void;
  close?(): void | Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Compiling

/** One input of an operator, as the compile step sees it. */
export interface CompileInput {
  /** The input's name (DEFAULT_INPUT, or the definition's: left, right). */
  name: string;
  schema: RecordSchema;
  /** The fields the upstream's records are keyed (partitioned) by; undefined = unknown. */
  keyFields: readonly string[] | undefined;
}

/** A table source of the topology (a compacted topic, latest value per key). */
export interface TableInfo {
  name: string;
  topic: string;
  schema: RecordSchema;
  /** The fields the table's Kafka key is made of (its `key:`), if declared. */
  keyFields: readonly string[] | undefined;
}

export interface CompileContext {
  /** The operator's name in the topology (names generated schemas). */
  name: string;
  /** The inputs, in the definition's order. */
  inputs: readonly CompileInput[];
  /** Looks up a record schema by fullname among the topology's schemas (self-contained copy). */
  resolveSchema(fullname: string): RecordSchema | undefined;
  /** Looks up a table source by name. */
  table(name: string): TableInfo | undefined;
  /** Names of the topology's table sources (for suggestions). */
  tableNames(): string[];
}

export interface OutputDecl {
  name: string;
  schema: RecordSchema;
  /** The fields this output's records are keyed by, if known (the planner avoids repartitions). */
  keyFields?: readonly string[];
}

/** A table an operator reads. */
export interface TableUse {
  /** The table source's name. */
  table: string;
  /**
   * partitioned: each task holds its partition of the table (the input is repartitioned by
   * `keyFields` when needed; partition counts must match). global: every instance holds the whole
   * table. auto: partitioned when the input is already keyed by `keyFields` and partition counts
   * match, else global.
   */
  mode: 'partitioned' | 'global' | 'auto';
  /** The input whose records look rows up, and the fields of it that form the table's key. */
  input: string;
  keyFields: readonly string[];
  /** Deliver the table's updates to onTableUpdate (needs a partitioned table). */
  watch?: boolean;
}

export interface CompiledOperator {
  /** Outputs; the first is the default (`from: op`), others are read with `from: op.<name>`. */
  outputs: readonly OutputDecl[];
  /** Per input name: the fields its records must be partitioned by (the planner repartitions). */
  partitionBy?: Readonly<Record<string, readonly string[]>>;
  /**
   * Inputs whose records must all reach one task (an operator that relates any record to any other,
   * e.g. incident without a scope): the planner repartitions them into a topic of one partition,
   * unless everything upstream already has one.
   */
  gather?: readonly string[];
  stores?: readonly StoreDecl[];
  tables?: readonly TableUse[];
  /** One instance per task; `open(ctx)` gives it its stores once they are restored. */
  create(): OperatorInstance;
}

export type CompileResult = { ok: true; compiled: CompiledOperator } | { ok: false; issues: ConfigIssue[] };

/** Helpers for compile functions: `return compiled({...})` or `return refused(issues)`. */
export function compiled(c: CompiledOperator): CompileResult {
  return { ok: true, compiled: c };
}
export function refused(issues: ConfigIssue[]): CompileResult {
  return { ok: false, issues };
}

// ---------------------------------------------------------------------------------------------
// Defining

export interface InputSpec {
  name: string;
  description: string;
}

export interface OperatorExample {
  title: string;
  /** A topology fragment (sources, operators, sinks); validated by the tests. */
  yaml: string;
}

export interface OperatorDefinition<C = Record<string, unknown>> {
  /** The `type:` users write in the topology file. */
  type: string;
  /** Other `type:` names accepted for this operator (e.g. map's `transform`). */
  aliases?: readonly string[];
  category: 'collection' | 'processing' | 'analysis' | 'alerting' | 'response';
  summary: string;
  description?: string;
  config: ConfigSpec;
  /** Topology-file snippets shown in the docs; each is validated by the tests. */
  examples?: OperatorExample[];
  /**
   * Named inputs, in order (`from: [a, b]` or `from: {left: a, right: b}`). Default: one input,
   * DEFAULT_INPUT.
   */
  inputs?: readonly InputSpec[];
  /**
   * The outputs, for the docs; the first is the default. Absent: one output, DEFAULT_OUTPUT. The
   * compile step declares the same names, with their schemas.
   */
  outputs?: readonly { name: string; description: string }[];
  /** Checks the config against the inputs and derives everything the plan and the runtime need. */
  compile(config: C, ctx: CompileContext): CompileResult;
}
