// validate: checks records against rules beyond their Avro schema; a record that breaks a rule
// goes to the dead-letter topic with the rule's reason, never silently dropped.
import type { OperatorDefinition } from '../kernel/operator.ts';
import { DEFAULT_OUTPUT, compiled } from '../kernel/operator.ts';
import { compileExpression } from '../kernel/expr.ts';

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
  compile(config, ctx) {
    const input = ctx.inputs[0]!;
    const checks = config.rules.map((r) => compileExpression(r.check, input.schema).evaluate);
    const reasons = config.rules.map((r) => r.reason);
    return compiled({
      outputs: [{ name: DEFAULT_OUTPUT, schema: input.schema, keyFields: input.keyFields }],
      create: () => ({
        process(record, c) {
          for (let i = 0; i < checks.length; i++)
            if (checks[i]!(record.value) !== true) {
              c.count('invalid');
              c.deadLetter('validation-failed', reasons[i]);
              return;
            }
          c.forward(record);
        },
      }),
    });
  },
};
