// The contract between operators and the rest of Vigil.
//
// Operators never import kafkajs or avsc: they see decoded records, a context (forward,
// stores, timers, time) and their own validated config. One operator = one file under
// operators/ exporting an OperatorDefinition, plus one line in operators/registry.ts.
// The definition's config spec drives parsing, `vigil validate` and the reference docs.

/** Avro schema JSON of a record type, as written in a .avsc file. */
export interface AvroField {
  name: string;
  type: AvroType;
  doc?: string;
  default?: unknown;
}
export type AvroType =
  | string
  | AvroType[]
  | { type: 'record'; name: string; namespace?: string; doc?: string; fields: AvroField[] }
  | { type: 'enum'; name: string; namespace?: string; symbols: string[]; default?: string }
  | { type: 'array'; items: AvroType }
  | { type: 'map'; values: AvroType }
  | { type: string; logicalType?: string; [k: string]: unknown };
export interface RecordSchema {
  type: 'record';
  name: string;
  namespace?: string;
  doc?: string;
  fields: AvroField[];
}

/** A decoded record flowing between operators. `value` is the Avro record as a plain object. */
export interface StreamRecord {
  key: string | null;
  value: Record<string, unknown>;
  /** Event time in epoch milliseconds (from the source's timestamp field or the Kafka timestamp). */
  timestamp: number;
  headers?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Config spec (Benthos-style): one object drives parsing, validation, lint and docs.

export type FieldKind =
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  /** "500ms", "30s", "5m", "2h", "1d" or a number of milliseconds; parsed to milliseconds. */
  | 'duration'
  /** An expression of the safe expression language, checked against the input schema. */
  | 'expression'
  /** The name of a field of the operator's input record (dotted path allowed), checked. */
  | 'field'
  | 'enum'
  | 'array'
  | 'map'
  | 'object'
  /** The fullname of a record schema known to the topology (schemas/*.avsc or the file's `schemas:`). */
  | 'schema'
  /** A relative file path that must stay inside the topology file's directory (no `..`, no URL). */
  | 'path';

export interface FieldSpec {
  kind: FieldKind;
  description: string;
  /** Required unless a default is given or optional is true. */
  optional?: boolean;
  default?: unknown;
  examples?: unknown[];
  /** enum: the allowed values. */
  values?: readonly string[];
  /** array: the spec of each item; map: the spec of each value. */
  items?: FieldSpec;
  /** object: the nested fields. */
  fields?: Record<string, FieldSpec>;
  /** integer/number/duration bounds (inclusive); array: bounds on the number of items. */
  min?: number;
  max?: number;
  /** string: a regular expression (source) the whole value must match, e.g. '^[a-z]+$'. */
  pattern?: string;
  /**
   * string: allow values that look like a URL or a file path. Off by default: topology files only
   * take paths in `path` fields, so a stray `http://...` or `../x` elsewhere is refused.
   */
  freeText?: boolean;
  /** expression: the type the expression must produce. */
  returns?: 'boolean' | 'number' | 'string';
}

export type ConfigSpec = Record<string, FieldSpec>;

/** A problem found while checking an operator's config; path is relative to the operator's config. */
export interface ConfigIssue {
  path: (string | number)[];
  message: string;
  /** Stable diagnostic code (topology/diagnostics.ts); default INVALID_VALUE. */
  code?: string;
  /** For problems inside a string value (an expression): character offset within the string. */
  offset?: number;
  /** Point at the key of `path` rather than at its value (e.g. an unknown or badly named field). */
  at?: 'key' | 'value';
}

// ---------------------------------------------------------------------------------------------
// State and time, as operators see them. The runtime owns the stores' lifecycle, their
// changelog topics and restore; an operator only declares them (OperatorDefinition.stores).

export interface StoreDecl {
  /** Unique within the operator; the runtime scopes it by topology, operator and partition. */
  name: string;
  kind: 'kv' | 'window';
  /**
   * Window stores: how long (ms) past a window's end its entries are retained before the
   * runtime may drop them. Key-value stores ignore it.
   */
  retentionMs?: number;
}

export interface KeyValueStore<V> {
  get(key: string): V | undefined;
  put(key: string, value: V): void;
  delete(key: string): void;
  has(key: string): boolean;
  entries(): IterableIterator<[string, V]>;
  readonly size: number;
}

export interface WindowStore<V> {
  get(key: string, windowStart: number): V | undefined;
  put(key: string, windowStart: number, value: V): void;
  delete(key: string, windowStart: number): void;
  /** Windows of one key whose start lies in [from, to], ascending by start. */
  fetch(key: string, from: number, to: number): Array<[number, V]>;
  /** Every (key, windowStart, value), ascending by window start. */
  all(): Array<[string, number, V]>;
  readonly size: number;
}

export interface Timer {
  /** 'event': fires when the task's watermark reaches `at`; 'wall': when the wall clock does. */
  kind: 'event' | 'wall';
  at: number;
  /** Identifies the timer within the operator; scheduling the same kind+key again replaces it. */
  key: string;
  data?: unknown;
}

export interface OperatorContext {
  /** "<subtopology>_<partition>", stable across restarts. */
  readonly taskId: string;
  readonly partition: number;
  /** Sends a record to every downstream node of this operator. */
  forward(record: StreamRecord): void;
  kv<V>(store: string): KeyValueStore<V>;
  windows<V>(store: string): WindowStore<V>;
  /** Timers are persisted with the operator's state and survive restarts and rebalances. */
  schedule(timer: Timer): void;
  cancel(kind: Timer['kind'], key: string): void;
  /** The task's event-time watermark (ms): max event time seen minus allowed out-of-orderness. */
  watermark(): number;
  /** Wall clock in ms (the test driver controls it). */
  now(): number;
  /** Sends the record being processed to the dead-letter topic with a reason (e.g. 'late'). */
  deadLetter(reason: string, detail?: string): void;
  /** Increments a per-operator counter exported as a metric. */
  count(metric: string, by?: number): void;
}

export interface OperatorInstance {
  /** Handles one record. Throwing sends the input record to the dead-letter topic. */
  process(record: StreamRecord, ctx: OperatorContext): void | Promise<void>;
  /** Called after the watermark advanced (after due event-time timers fired). */
  onWatermark?(watermark: number, ctx: OperatorContext): void;
  onTimer?(timer: Timer, ctx: OperatorContext): void;
  close?(): void | Promise<void>;
}

export interface SchemaContext {
  /** The schema of the operator's input record (first input for multi-input operators). */
  input: RecordSchema;
  /** All inputs' schemas, in the order of `from`. */
  inputs: RecordSchema[];
  /** The operator's name in the topology (used to name generated schemas). */
  name: string;
  /** Looks up a record schema by fullname among the topology's schemas (self-contained copy). */
  resolveSchema?(fullname: string): RecordSchema | undefined;
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
  examples?: { title: string; yaml: string }[];
  /** Number of upstream inputs allowed (default exactly 1). */
  inputs?: { min: number; max: number };
  /**
   * Fields the operator needs records partitioned by (e.g. an aggregation's group-by). When the
   * upstream is partitioned differently, the planner inserts a repartition topic.
   */
  partitionBy?(config: C): string[] | undefined;
  /**
   * The fields this operator's output records are keyed (partitioned) by, given each input's
   * (undefined = unknown). Default: partitionBy(config) when declared (the planner repartitions by
   * it), else unknown. Operators that keep the record key and the key fields (filter) return the
   * input's; map returns it renamed when the key fields pass through unchanged.
   */
  keyFields?(config: C, inputs: ReadonlyArray<readonly string[] | undefined>): string[] | undefined;
  stores?(config: C): StoreDecl[];
  /** Semantic checks beyond the spec (field types, expression types); paths are config-relative. */
  check?(config: C, schema: SchemaContext): ConfigIssue[];
  /** The schema of the records this operator forwards. */
  outputSchema(config: C, schema: SchemaContext): RecordSchema;
  create(config: C, schema: SchemaContext): OperatorInstance;
}
