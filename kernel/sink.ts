// The contract of sink types. A sink type is one definition (connectors/sinks.ts registers them):
// a config spec (beyond name, type and from) and a compile step, like an operator's.
//
// A sink writes either a Kafka topic of the file (`kafka`), or somewhere outside Kafka (an HTTP
// receiver). The latter compiles to a delivery operator: the plan writes the sink's records to an
// internal outbox topic `<topology>-<sink>-outbox` (inside the transaction under exactly_once) and
// runs the operator on it in a sub-topology of its own, so delivery is decoupled from processing,
// retried by the operator (ctx.defer), committed only once delivered (at least once: a receiver
// dedupes on a record's id), and dead-lettered when it fails for good.
import type { CompiledOperator } from './operator.ts';
import type { RecordSchema } from './schema.ts';
import type { ConfigIssue, ConfigSpec } from './spec.ts';

export interface SinkCompileContext {
  /** The sink's name in the topology. */
  name: string;
  /** The topology's name (outbox and other derived names). */
  topology: string;
  /** What the sink reads, as written (`op` or `op.output`), for messages. */
  from: string;
  /** The records reaching the sink. */
  input: { schema: RecordSchema; keyFields: readonly string[] | undefined };
  /** Partition count of what feeds the sink (the default for topics Vigil creates). */
  partitions: number;
  resolveSchema(fullname: string): RecordSchema | undefined;
}

export type CompiledSink =
  /** Records go to a Kafka topic of the file, encoded with `schema` (registered under `<topic>-value`). */
  | { kind: 'topic'; topic: string; schemaName: string; schema: RecordSchema; keyField?: string; partitions: number }
  /** Records go through an outbox topic to `deliver`, an operator with no output. */
  | { kind: 'deliver'; deliver: CompiledOperator; description: string };

export type SinkCompileResult = { ok: true; sink: CompiledSink } | { ok: false; issues: ConfigIssue[] };

export interface SinkDefinition<C = Record<string, unknown>> {
  /** The `type:` of a sink entry (default `kafka`). */
  type: string;
  summary: string;
  description?: string;
  config: ConfigSpec;
  examples?: { title: string; yaml: string }[];
  compile(config: C, ctx: SinkCompileContext): SinkCompileResult;
}

/** The outbox topic of a sink that delivers outside Kafka. */
export function outboxTopicName(topology: string, sink: string): string {
  return `${topology}-${sink}-outbox`;
}
