// filter: keeps the records for which a boolean expression is true.
import type { OperatorDefinition } from '../kernel/operator.ts';
import { DEFAULT_OUTPUT, compiled } from '../kernel/operator.ts';
import { compileExpression } from '../kernel/expr.ts';

export interface FilterConfig {
  where: string;
}

export const filterOperator: OperatorDefinition<FilterConfig> = {
  type: 'filter',
  category: 'processing',
  summary: 'Keeps the records for which an expression is true and drops the others.',
  description:
    'The output has the input schema; records pass through unchanged (same object, key, timestamp and headers). ' +
    'The expression must be a boolean; a value that may be null must be given a default, e.g. `(tags.env ?? "") == "prod"`.',
  config: {
    where: {
      kind: 'expression',
      returns: 'boolean',
      description: 'Condition a record must satisfy to be kept.',
      examples: ['value > 90 && name == "cpu.utilization"', 'level in ["ERROR", "FATAL"]'],
    },
  },
  examples: [
    {
      title: 'High CPU samples',
      yaml: `sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
operators:
  - name: hot
    type: filter
    where: name == "cpu.utilization" && value > 90
`,
    },
    {
      title: 'Errors of one region',
      yaml: `sources:
  - name: logs
    topic: telemetry.logs
    schema: vigil.telemetry.LogLine
operators:
  - name: errors
    type: filter
    where: level in ["ERROR", "FATAL"] && (attributes.region ?? "") == "eu-west-1"
`,
    },
  ],
  compile(config, ctx) {
    const input = ctx.inputs[0]!;
    const where = compileExpression(config.where, input.schema).evaluate;
    return compiled({
      outputs: [{ name: DEFAULT_OUTPUT, schema: input.schema, keyFields: input.keyFields }],
      create: () => ({
        process(record, c) {
          if (where(record.value) === true) c.forward(record);
        },
      }),
    });
  },
};
