// The shapes a topology file becomes: a validated logical graph (Topology), then a physical
// plan (Plan) of sub-topologies and internal topics that the runtime executes.
import type { OperatorDefinition, RecordSchema } from '../operators/types.ts';

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
  at: Position;
}

export interface NodeDef {
  name: string;
  type: string;
  def: OperatorDefinition<any>;
  /** Parsed config: defaults applied, durations in ms. */
  config: Record<string, unknown>;
  /** Upstream names: sources or nodes. */
  from: string[];
  inputSchemas: RecordSchema[];
  outputSchema: RecordSchema;
  at: Position;
}

export interface SinkDef {
  name: string;
  from: string;
  topic: string;
  schemaName: string;
  schema: RecordSchema;
  /** Field (dotted path) of the output record used as the Kafka key; absent = keep the record key. */
  keyField?: string;
  partitions: number;
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

// ---------------------------------------------------------------------------------------------
// Physical plan

export interface InternalTopic {
  name: string;
  kind: 'repartition' | 'changelog';
  partitions: number;
  /** Topic configs, e.g. { 'cleanup.policy': 'compact' } for changelogs. */
  configs: Record<string, string>;
}

export interface PlanStore {
  /** Store name as the operator declared it. */
  name: string;
  kind: 'kv' | 'window';
  retentionMs?: number;
  /** Compacted topic backing the store: <topology>-<node>-<store>-changelog. */
  changelogTopic: string;
}

export interface PlanSource {
  /** Source name (for input sources) or the repartition topic's producing node. */
  name: string;
  topic: string;
  schemaName: string;
  schema: RecordSchema;
  timestampField?: string;
  maxOutOfOrderMs: number;
  idleTimeoutMs: number;
  /** Node and sink names fed by this source. */
  downstream: string[];
}

export interface PlanNode {
  name: string;
  type: string;
  def: OperatorDefinition<any>;
  config: Record<string, unknown>;
  inputSchemas: RecordSchema[];
  outputSchema: RecordSchema;
  stores: PlanStore[];
  /** Node names, sink names, in this sub-topology. */
  downstream: string[];
}

export interface PlanSink {
  name: string;
  topic: string;
  schemaName: string;
  schema: RecordSchema;
  keyField?: string;
  /**
   * Repartition sinks: the fields (dotted paths) the key is built from, in order. keyField is also
   * set when there is exactly one; with several, the runtime derives one key string from them.
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

export interface Plan {
  topology: Topology;
  subtopologies: SubTopology[];
  internalTopics: InternalTopic[];
}
