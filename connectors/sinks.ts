// Sink types: one definition each, registered here (the loader validates `sinks:` entries by their
// `type`, default `kafka`); the receivers (connectors/receivers.ts) deliver outside Kafka.
import type { SinkDefinition } from '../kernel/sink.ts';
import type { ConfigIssue } from '../kernel/spec.ts';
import type { RecordSchema } from '../kernel/schema.ts';
import { describeTy, fits, isNumeric, recordTy, schemaFullname } from '../kernel/avro-types.ts';
import { receiverSinks } from './receivers.ts';

export interface KafkaSinkConfig {
  topic: string;
  schema?: string;
  key?: string;
  partitions?: number;
}

const TOPIC_PATTERN = '^[a-zA-Z0-9._-]{1,249}$';

/** Problems when `sink`'s fields cannot be filled from `upstream` records. */
export function schemaFillIssues(upstream: RecordSchema, sink: RecordSchema, from: string, what: string): ConfigIssue[] {
  const up = recordTy(upstream);
  const to = recordTy(sink);
  const issues: ConfigIssue[] = [];
  const produced = up.fields.map((f) => f.name).join(', ');
  for (const f of to.fields) {
    const w = up.byName.get(f.name);
    if (w === undefined) {
      if (!f.hasDefault)
        issues.push({ path: ['schema'], code: 'SINK_SCHEMA', message: `${what}: field '${f.name}' (${describeTy(f.ty)}) of ${to.fullname} has no default and '${from}' does not produce it (it produces: ${produced})` });
      continue;
    }
    const why = fits(w.ty, f.ty);
    if (why !== undefined) {
      const hint = f.ty.k === 'enum' || (isNumeric(w.ty) && isNumeric(f.ty)) ? `; a map with schema: ${to.fullname} converts it` : '';
      issues.push({ path: ['schema'], code: 'SINK_SCHEMA', message: `${what}: field '${f.name}' of ${to.fullname} is ${describeTy(f.ty)} but '${from}' produces ${describeTy(w.ty)}: ${why}${hint}` });
    }
  }
  return issues;
}

export const kafkaSink: SinkDefinition<KafkaSinkConfig> = {
  type: 'kafka',
  summary: 'Writes records to a Kafka topic, Avro-encoded in the Confluent wire format.',
  config: {
    topic: { kind: 'string', pattern: TOPIC_PATTERN, description: 'Kafka topic to write.' },
    schema: {
      kind: 'schema',
      optional: true,
      description:
        'Fullname of the writer schema. The records reaching the sink must fill it: every field without a default must be produced, with a fitting type. ' +
        'Default: the schema of the records reaching the sink (e.g. an aggregate\'s generated `vigil.generated.*` schema), registered under `<topic>-value`.',
      examples: ['vigil.alerting.Alert'],
    },
    key: { kind: 'field', optional: true, description: 'Field of the written record used as the Kafka key. Default: keep the record\'s key.', examples: ['entity'] },
    partitions: { kind: 'integer', optional: true, min: 1, max: 10_000, description: 'Partition count when Vigil creates the topic. Default: the largest partition count of the sources feeding it.' },
  },
  compile(config, ctx) {
    const declared = config.schema === undefined ? undefined : ctx.resolveSchema(config.schema);
    if (config.schema !== undefined && declared === undefined) return { ok: false, issues: [{ path: ['schema'], code: 'UNKNOWN_SCHEMA', message: `unknown schema '${config.schema}'` }] };
    if (declared !== undefined) {
      const issues = schemaFillIssues(ctx.input.schema, declared, ctx.from, `sink '${ctx.name}'`);
      if (issues.length > 0) return { ok: false, issues };
    }
    const schema = declared ?? ctx.input.schema;
    return {
      ok: true,
      sink: {
        kind: 'topic',
        topic: config.topic,
        schemaName: config.schema ?? schemaFullname(schema),
        schema,
        ...(config.key !== undefined ? { keyField: config.key } : {}),
        partitions: config.partitions ?? ctx.partitions,
      },
    };
  },
};

/** Every sink type, once, in the order of the docs. */
export const sinkDefinitions: readonly SinkDefinition<any>[] = [kafkaSink, ...receiverSinks];

/** `type:` name -> definition. */
export const sinkRegistry: ReadonlyMap<string, SinkDefinition<any>> = new Map(sinkDefinitions.map((d) => [d.type, d]));
