// Shared by the aggregate tests: an input schema and a hand-built Plan with one aggregate node,
// its config parsed by the operator's own spec (topology/spec.ts), checked and schema-derived
// as the loader does.
import type { RecordSchema } from '../../operators/types.ts';
import type { Plan, PlanNode } from '../../topology/types.ts';
import { aggregateOperator } from '../../operators/aggregate.ts';
import type { AggregateConfig } from '../../operators/aggregate.ts';
import { parseConfig } from '../../topology/spec.ts';

export const sampleSchema: RecordSchema = {
  type: 'record',
  name: 'Sample',
  namespace: 'test',
  fields: [
    { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'host', type: 'string' },
    { name: 'name', type: 'string' },
    { name: 'value', type: 'double' },
    { name: 'lat', type: ['null', 'double'], default: null },
    { name: 'status', type: ['null', 'string'], default: null },
    { name: 'code', type: 'int', default: 0 },
    { name: 'tags', type: { type: 'map', values: 'string' }, default: {} },
  ],
};

export type Sample = {
  timestamp: number;
  host: string;
  name: string;
  value: number;
  lat: number | null;
  status: string | null;
  code: number;
  tags: Record<string, string>;
};

export function sample(timestamp: number, host: string, value: number, extra: Partial<Sample> = {}): Sample {
  return { timestamp, host, name: 'cpu', value, lat: null, status: null, code: 0, tags: {}, ...extra };
}

/** Parses and checks a raw `type: aggregate` config the way the loader does; throws on any issue. */
export function parseAggregate(raw: Record<string, unknown>, name = 'agg', schema: RecordSchema = sampleSchema): AggregateConfig {
  const parsed = parseConfig<AggregateConfig>(aggregateOperator.config, raw, { what: `aggregate operator '${name}'`, schema });
  if (parsed.issues.length > 0) throw new Error(parsed.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'));
  const issues = aggregateOperator.check!(parsed.config, { input: schema, inputs: [schema], name });
  if (issues.length > 0) throw new Error(issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'));
  return parsed.config;
}

export interface PlanOptions {
  name?: string;
  maxOutOfOrderMs?: number;
  partitions?: number;
  idleTimeoutMs?: number;
}

/** A one-node plan: source 'in' (event time from `timestamp`) -> aggregate -> sink 'out'. */
export function aggregatePlan(raw: Record<string, unknown>, opts: PlanOptions = {}): Plan {
  const name = opts.name ?? 'agg';
  const config = parseAggregate(raw, name);
  const ctx = { input: sampleSchema, inputs: [sampleSchema], name };
  const out = aggregateOperator.outputSchema(config, ctx);
  const node: PlanNode = {
    name,
    type: 'aggregate',
    def: aggregateOperator,
    config: config as unknown as Record<string, unknown>,
    inputSchemas: [sampleSchema],
    outputSchema: out,
    stores: (aggregateOperator.stores?.(config) ?? []).map((s) => ({ ...s, changelogTopic: `app-${name}-${s.name}-changelog` })),
    downstream: ['out'],
  };
  return {
    topology: { file: 'test.yaml', name: 'app', guarantee: 'at_least_once', deadLetterTopic: 'app.dlq', commitIntervalMs: 1000, sources: [], nodes: [], sinks: [] },
    internalTopics: [],
    subtopologies: [
      {
        id: 0,
        partitions: opts.partitions ?? 1,
        sources: [
          {
            name: 'in',
            topic: 'in',
            schemaName: 'test.Sample',
            schema: sampleSchema,
            timestampField: 'timestamp',
            maxOutOfOrderMs: opts.maxOutOfOrderMs ?? 0,
            idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
            downstream: [name],
          },
        ],
        nodes: [node],
        sinks: [{ name: 'out', topic: 'out', schemaName: `${out.namespace}.${out.name}`, schema: out, internal: false }],
      },
    ],
  };
}
