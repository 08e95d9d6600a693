// Shared by the aggregate tests: an input schema and a one-operator Plan around an aggregate, its
// config parsed by the operator's own spec and compiled as the loader does.
import type { RecordSchema } from '../../kernel/operator.ts';
import type { Plan } from '../../topology/types.ts';
import { aggregateOperator } from '../../operators/aggregate.ts';
import type { AggregateConfig } from '../../operators/aggregate.ts';
import { compileOperator, singleOperatorPlan } from '../helpers/operators.ts';
import type { PlanOptions } from '../helpers/operators.ts';

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

/** Parses and compiles a raw `type: aggregate` config the way the loader does; throws on any issue. */
export function parseAggregate(raw: Record<string, unknown>, name = 'agg', schema: RecordSchema = sampleSchema): AggregateConfig {
  return compileOperator(aggregateOperator, raw, [{ schema }], name).config;
}

export type { PlanOptions };

/** A one-node plan: source 'in' (event time from `timestamp`) -> aggregate -> sink 'out'. */
export function aggregatePlan(raw: Record<string, unknown>, opts: PlanOptions = {}): Plan {
  return singleOperatorPlan(aggregateOperator, raw, sampleSchema, { name: 'agg', ...opts });
}
