// The shapes a topology file becomes: a validated logical graph (Topology), then a physical
// plan (Plan) of sub-topologies and internal topics that the runtime executes.
import type { CompiledOperator, OperatorDefinition, OutputDecl, StoreDecl } from '../kernel/operator.ts';
import type { RecordSchema } from '../kernel/schema.ts';

export type Guarantee = 'at_least_once' | 'exactly_once';

/** Where a construct was written: for error messages and docs. */
export interface Position {
  file: string;
  line: number;
  column: number;
}

export interface SourceDef {
  name: string;
  topic: string;
  /** Full name of the reader schema, e.g. vigil.telemetry.MetricSample. */
  schemaName: string;
  schema: RecordSchema;
  /** A table (a compacted topic read as the latest value per key) rather than a stream. */
  table: boolean;
  /** Fields the producers key records by (the topic's partitioning), if declared. */
  keyFields?: string[];
  /** Field holding event time (epoch ms); absent = the Kafka record timestamp. */
  timestampField?: string;
  /** Allowed out-of-orderness (ms): watermark = max event time - this. */
  maxOutOfOrderMs: number;
  /** A partition with no record for this long (wall clock) stops holding the watermark back. */
  idleTimeoutMs: number;
  /** Partition count used when Vigil creates the topic. */
  partitions: number;
  /** Where the group starts reading without a committed offset. */
  start: 'earliest' | 'latest';
  at: Position;
}

/**
 * What an operator or sink reads: a source, or an operator's output. `output` undefined = the
 * default output (a source's records, an operator's first output). Written `name` or `name.output`.
 */
export interface Ref {
  name: string;
  output?: string;
}

export function refText(r: Ref): string {
  return r.output === undefined ? r.name : `${r.name}.${r.output}`;
}

export interface NodeInput {
  /** The input's name in the operator (DEFAULT_INPUT, or e.g. left/right). */
  name: string;
  from: Ref;
  schema: RecordSchema;
}

export interface NodeDef {
  name: string;
  type: string;
  def: OperatorDefinition<any>;
  /** Parsed config: defaults applied, durations in ms. */
  config: Record<string, unknown>;
  inputs: NodeInput[];
  /** The compile step's result: outputs, partitioning, stores, tables, instance factory. */
  compiled: CompiledOperator;
  at: Position;
}

export interface SinkDef {
  name: string;
  from: Ref;
  /** The sink type (`kafka`, or a type that delivers outside Kafka). */
  type: string;
  /** The topic written: the file's (kafka), or the sink's internal outbox topic (deliver). */
  topic: string;
  schemaName: string;
  schema: RecordSchema;
  /** Field (dotted path) of the output record used as the Kafka key; absent = keep the record key. */
  keyField?: string;
  partitions: number;
  /** Sinks outside Kafka: the operator that delivers the outbox topic's records. */
  deliver?: { compiled: CompiledOperator; description: string };
  at: Position;
}

export interface Topology {
  file: string;
  /** Topology id: consumer group id, prefix of internal topics and transactional ids. */
  name: string;
  guarantee: Guarantee;
  deadLetterTopic: string;
  /** How often the runtime commits (ms). */
  commitIntervalMs: number;
  sources: SourceDef[];
  /** Operators in a topological order. */
  nodes: NodeDef[];
  sinks: SinkDef[];
}

/** The output of a node (or source) a Ref names. */
export function outputOf(t: Topology, r: Ref): { schema: RecordSchema; keyFields: readonly string[] | undefined } | undefined {
  const s = t.sources.find((x) => x.name === r.name);
  if (s !== undefined) return r.output === undefined ? { schema: s.schema, keyFields: s.keyFields } : undefined;
  const n = t.nodes.find((x) => x.name === r.name);
  const o: OutputDecl | undefined = r.output === undefined ? n?.compiled.outputs[0] : n?.compiled.outputs.find((x) => x.name === r.output);
  return o === undefined ? undefined : { schema: o.schema, keyFields: o.keyFields };
}

// ---------------------------------------------------------------------------------------------
// Physical plan

export interface InternalTopic {
  name: string;
  /** repartition and outbox topics are read by the topology itself and purged once committed. */
  kind: 'repartition' | 'changelog' | 'outbox';
  partitions: number;
  /** Topic configs, e.g. { 'cleanup.policy': 'compact' } for changelogs. */
  configs: Record<string, string>;
}

/** Where records go inside a sub-topology: an input of a node, or a sink. */
export type Target = { node: string; input: string } | { sink: string };

export interface PlanStore extends StoreDecl {
  /** Compacted topic backing the store: <topology>-<node>-<store>-changelog. */
  changelogTopic: string;
}

export interface PlanSource {
  /** Source name (input sources and tables) or, for a repartition topic, the writing node's ref. */
  name: string;
  topic: string;
  /** A stream source read from the latest offset when its group has none committed (default: earliest). */
  startLatest?: boolean;
  /** Keyed by producers trusted to place keys by murmur2: the runtime counts records that are not. */
  checkKeyPlacement?: boolean;
  kind: 'stream' | 'table';
  schemaName: string;
  schema: RecordSchema;
  timestampField?: string;
  maxOutOfOrderMs: number;
  idleTimeoutMs: number;
  /** Streams: what the records feed. Tables: nothing (operators read them through their context). */
  downstream: Target[];
}

export interface PlanOutput {
  name: string;
  schema: RecordSchema;
  downstream: Target[];
}

/** A table an operator reads, as planned. */
export interface PlanTable {
  /** The table source's name. */
  table: string;
  topic: string;
  /** partitioned: a table source of this sub-topology; global: Plan.globalTables. */
  mode: 'partitioned' | 'global';
  watch: boolean;
}

export interface PlanNode {
  name: string;
  /** The operator's type (or `sink:<type>` for a sink's delivery operator). */
  type: string;
  config: Record<string, unknown>;
  compiled: CompiledOperator;
  /** Input names in order, and the upstreams (node names; sources feed through `sources`). */
  inputs: Array<{ name: string; schema: RecordSchema; from: Ref }>;
  outputs: PlanOutput[];
  stores: PlanStore[];
  tables: PlanTable[];
}

export interface PlanSink {
  name: string;
  topic: string;
  schemaName: string;
  schema: RecordSchema;
  keyField?: string;
  /**
   * Repartition sinks: the fields (dotted paths) the key is built from, in order. keyField is also
   * set when there is exactly one; with several, the key is their JSON array (kernel/keys.ts).
   */
  keyFields?: string[];
  /** Repartition sinks feed another sub-topology through an internal topic. */
  internal: boolean;
}

export interface SubTopology {
  id: number;
  sources: PlanSource[];
  nodes: PlanNode[];
  sinks: PlanSink[];
  /** Partition count of this sub-topology's (co-partitioned) input topics = its task count. */
  partitions: number;
}

/** A table every instance holds whole (Kafka Streams' GlobalKTable). */
export interface GlobalTable {
  name: string;
  topic: string;
  schemaName: string;
  schema: RecordSchema;
}

export interface Plan {
  topology: Topology;
  subtopologies: SubTopology[];
  internalTopics: InternalTopic[];
  globalTables: GlobalTable[];
}
