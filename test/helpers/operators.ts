// Compiling one operator outside a topology file, and a one-operator plan around it, for operator
// unit tests: the config is parsed by the operator's own spec and compiled as the loader does.
import type { CompileResult, CompiledOperator, OperatorDefinition, TableInfo } from '../../kernel/operator.ts';
import { DEFAULT_INPUT } from '../../kernel/operator.ts';
import type { RecordSchema } from '../../kernel/schema.ts';
import { parseConfig } from '../../kernel/spec.ts';
import { schemaFullname } from '../../kernel/avro-types.ts';
import { loadSchemaCatalog } from '../../schemas/serde.ts';
import type { Plan, PlanNode } from '../../topology/types.ts';

export interface TestInput {
  schema: RecordSchema;
  keyFields?: string[];
}

const catalog = loadSchemaCatalog();

/** Parses and compiles a raw config; returns the result (ok or the issues). */
export function tryCompile<C>(def: OperatorDefinition<C>, raw: Record<string, unknown>, inputs: TestInput[], name = 'op', tables: TableInfo[] = []): CompileResult & { config?: C } {
  const names = (def.inputs ?? [{ name: DEFAULT_INPUT }]).map((i) => i.name);
  const parsed = parseConfig<C>(def.config, raw, { what: `${def.type} operator '${name}'`, schema: inputs[0]!.schema, inputs: new Map(inputs.map((x, i) => [names[i]!, x.schema])) });
  if (parsed.issues.length > 0) return { ok: false, issues: parsed.issues };
  const result = def.compile(parsed.config, {
    name,
    inputs: inputs.map((x, i) => ({ name: names[i]!, schema: x.schema, keyFields: x.keyFields })),
    resolveSchema: (n) => catalog.get(n),
    table: (n) => tables.find((t) => t.name === n),
    tableNames: () => tables.map((t) => t.name),
  });
  return { ...result, config: parsed.config };
}

/** Parses and compiles a raw config; throws the issues. */
export function compileOperator<C>(def: OperatorDefinition<C>, raw: Record<string, unknown>, inputs: TestInput[], name = 'op'): CompiledOperator & { config: C } {
  const r = tryCompile(def, raw, inputs, name);
  if (!r.ok) throw new Error(r.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'));
  return { ...r.compiled, config: r.config! };
}

export interface PlanOptions {
  name?: string;
  maxOutOfOrderMs?: number;
  partitions?: number;
  idleTimeoutMs?: number;
  /** Source field with the event time (default `timestamp`). */
  timestampField?: string;
}

/** A one-operator plan: source 'in' -> operator -> sink 'out' (its default output). */
export function singleOperatorPlan<C>(def: OperatorDefinition<C>, raw: Record<string, unknown>, schema: RecordSchema, opts: PlanOptions = {}): Plan {
  const name = opts.name ?? 'op';
  const c = compileOperator(def, raw, [{ schema }], name);
  const out = c.outputs[0]!.schema;
  const node: PlanNode = {
    name,
    type: def.type,
    config: c.config as unknown as Record<string, unknown>,
    compiled: c,
    inputs: [{ name: DEFAULT_INPUT, schema, from: { name: 'in' } }],
    outputs: c.outputs.map((o, i) => ({ name: o.name, schema: o.schema, downstream: i === 0 ? [{ sink: 'out' }] : [] })),
    stores: (c.stores ?? []).map((s) => ({ ...s, changelogTopic: `app-${name}-${s.name}-changelog` })),
    tables: [],
  };
  return {
    topology: { file: 'test.yaml', name: 'app', guarantee: 'at_least_once', deadLetterTopic: 'app.dlq', commitIntervalMs: 1000, sources: [], nodes: [], sinks: [] },
    internalTopics: [],
    globalTables: [],
    subtopologies: [
      {
        id: 0,
        partitions: opts.partitions ?? 1,
        sources: [
          {
            name: 'in',
            topic: 'in',
            kind: 'stream',
            schemaName: schemaFullname(schema),
            schema,
            timestampField: opts.timestampField ?? 'timestamp',
            maxOutOfOrderMs: opts.maxOutOfOrderMs ?? 0,
            idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
            downstream: [{ node: name, input: DEFAULT_INPUT }],
          },
        ],
        nodes: [node],
        sinks: [{ name: 'out', topic: 'out', schemaName: schemaFullname(out), schema: out, internal: false }],
      },
    ],
  };
}
