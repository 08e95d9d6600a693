// validate: checks records against rules beyond their Avro schema; a record that breaks a rule
// goes to the dead-letter topic with the rule's reason, never silently dropped.
import type { OperatorDefinition } from './types.ts';
import { compileExpression } from '../topology/expr.ts';

export interface ValidateConfig {
  rules: Array<{ check: string; reason: string }>;
}

export const validateOperator: OperatorDefinition<ValidateConfig> = {
  type: 'validate',
  category: 'collection',
  summary: 'Passes records that satisfy every rule; dead-letters the others with the broken rule as the reason.',
  description:
    'Records are already checked against their Avro schema when they are decoded (a record that does not decode goes to the ' +
    'dead-letter topic with the decode error). `validate` adds semantic rules: each rule is a boolean expression, checked in ' +
    'order; the first rule that is false (or null) sends the record to the dead-letter topic with `vigil.error.reason: ' +
    'validation-failed` and `vigil.error.message: <reason>`. Passing records are forwarded unchanged.',
  config: {
    rules: {
      kind: 'array',
      min: 1,
      description: 'Rules every record must satisfy, checked in order.',
      items: {
        kind: 'object',
        description: 'One rule.',
        fields: {
          check: { kind: 'expression', returns: 'boolean', description: 'Condition a valid record satisfies.', examples: ['value >= 0'] },
          reason: { kind: 'string', description: 'Why a record breaking the rule is rejected, written to the dead letter.', examples: ['negative value'] },
        },
      },
    },
  },
  examples: [
    {
      title: 'Reject impossible samples',
      yaml: `sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
operators:
  - name: sane
    type: validate
    rules:
      - check: value >= 0
        reason: negative measurement
      - check: name != ""
        reason: metric without a name
`,
    },
  ],
  keyFields: (_config, inputs) => (inputs[0] === undefined ? undefined : [...inputs[0]]),
  outputSchema: (_config, schema) => schema.input,
  create(config, schema) {
    const checks = config.rules.map((r) => compileExpression(r.check, schema.input).evaluate);
    const reasons = config.rules.map((r) => r.reason);
    return {
      process(record, ctx) {
        for (let i = 0; i < checks.length; i++)
          if (checks[i]!(record.value) !== true) {
            ctx.count('invalid');
            ctx.deadLetter('validation-failed', reasons[i]);
            return;
          }
        ctx.forward(record);
      },
    };
  },
};
