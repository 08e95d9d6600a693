// lookup: enriches each record with fields of the matching row of a table (a compacted topic read
// as the latest value per key), e.g. the owning team and tier of a host from a CMDB topic.
import type { ConfigIssue, OperatorDefinition } from '../kernel/operator.ts';
import { DEFAULT_INPUT, DEFAULT_OUTPUT, compiled, refused } from '../kernel/operator.ts';
import { compileExpressionAt } from '../kernel/expr.ts';
import { describeTy, extendRecord, fits, nullable, recordTy, unify } from '../kernel/avro-types.ts';
import { computedFields, unknownTable } from './lib/fields.ts';
import type { ComputedField } from './lib/fields.ts';
import { checkFieldPath } from '../kernel/spec.ts';
import { keyOfRecord, splitPaths } from '../kernel/keys.ts';
import { generatedSchemaName } from '../kernel/names.ts';
import { recordExtender } from '../kernel/record.ts';

export interface LookupConfig {
  table: string;
  key?: string[];
  fields: Record<string, string>;
  on_miss: 'keep' | 'default' | 'drop' | 'dead_letter';
  defaults?: Record<string, string>;
  mode: 'auto' | 'partitioned' | 'global';
}

type Ev = (v: Record<string, unknown>) => unknown;

export const lookupOperator: OperatorDefinition<LookupConfig> = {
  type: 'lookup',
  category: 'processing',
  summary: 'Adds fields of the matching row of a table (a compacted topic, latest value per key) to each record.',
  description: [
    'The table is a source declared with `table: true`: the latest value per Kafka key of a compacted topic, where a',
    'record with a null value deletes its key. Each record looks up the row whose key is made of its `key` fields (one',
    'field: its value as a string; several: the JSON array of their values, the same key format Vigil writes), and gets',
    'the `fields` computed from that row. The output is the input record with those fields added',
    '(`vigil.generated.<OperatorName>`); its key, timestamp and headers are unchanged.',
    '',
    '**Where the table lives.** `partitioned`: every task holds its own partition of the table, read from the table\'s',
    'topic as an input beside the stream (the stream is repartitioned by `key` when needed, and both topics must have',
    'the same partition count, checked at start). `global`: every instance holds the whole table (Kafka Streams\'',
    'GlobalKTable), loaded before processing starts and kept current by a consumer of its own. `auto` (default):',
    'partitioned when the input is already keyed by `key` and the partition counts match, else global.',
    '',
    '**Timing.** A table update is visible to the records processed after it, not to records by event time: a',
    'partitioned table is read in order with the stream from the same task (as Kafka Streams does without',
    '`max.task.idle.ms`); a global table is updated as its consumer reads it, independently of the stream. After a',
    'restart a partitioned table is restored from its own topic up to the committed offset (no extra changelog topic);',
    'a global table is loaded whole again.',
    '',
    '**On a miss** (no row for the key): `keep` forwards the record with the added fields null (they are nullable);',
    '`default` fills them from `defaults` (expressions over the input record); `drop` drops the record; `dead_letter`',
    'sends it to the dead-letter topic with reason `lookup-miss`. Hits and misses are counted',
    '(`vigil_operator_events_total{event="hit"|"miss"}`).',
  ].join('\n'),
  config: {
    table: { kind: 'string', description: 'The table source (a source with `table: true`).', examples: ['cmdb'] },
    key: {
      kind: 'array',
      optional: true,
      items: { kind: 'field', description: 'An input field.' },
      description: "Input fields whose values form the table key, in the order of the table's `key:`. Default: the table's key fields, by name.",
      examples: [['host']],
    },
    fields: {
      kind: 'map',
      min: 1,
      items: { kind: 'string', freeText: true, description: 'An expression over the table row.' },
      description: 'Output field name -> expression over the matching table row (its fields by name), e.g. `team`, `tier ?? "unknown"`.',
      examples: [{ team: 'team', tier: 'tier' }],
    },
    on_miss: {
      kind: 'enum',
      values: ['keep', 'default', 'drop', 'dead_letter'],
      default: 'keep',
      description: 'What happens when the table has no row for the key: keep (added fields null), default (from `defaults`), drop, or dead_letter.',
    },
    defaults: {
      kind: 'map',
      optional: true,
      items: { kind: 'expression', description: 'Expression over the input record.' },
      description: 'With on_miss: default, one expression over the input record per field of `fields`, e.g. `"unowned"`.',
      examples: [{ team: '"unowned"' }],
    },
    mode: {
      kind: 'enum',
      values: ['auto', 'partitioned', 'global'],
      default: 'auto',
      description: 'partitioned: each task holds its partition of the table; global: every instance holds all of it; auto: partitioned when possible without a repartition.',
    },
  },
  examples: [
    {
      title: 'Owning team and tier of a host from a CMDB topic',
      yaml: `sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
    key: [host]
  - name: cmdb
    topic: cmdb.entities
    schema: vigil.inventory.Entity
    table: true
    key: [entity]
operators:
  - name: owner
    type: lookup
    table: cmdb
    key: [host]
    fields:
      team: team ?? "unowned"
      tier: tier ?? "unknown"
    on_miss: default
    defaults:
      team: '"unowned"'
      tier: '"unknown"'
`,
    },
  ],
  compile(config, ctx) {
    const input = ctx.inputs[0]!;
    const issues: ConfigIssue[] = [];
    const table = ctx.table(config.table);
    if (table === undefined) return refused([unknownTable(ctx, config.table, ['table'])]);
    let key = config.key;
    if (key === undefined) {
      if (table.keyFields === undefined) return refused([{ path: ['table'], code: 'MISSING_FIELD', message: `table '${table.name}' declares no key: give 'key' (the input fields that make its Kafka key)` }]);
      for (const f of table.keyFields) {
        const err = checkFieldPath(f, input.schema);
        if (err !== undefined) return refused([{ path: ['table'], code: 'MISSING_FIELD', message: `the input has no field '${f}' (a key field of table '${table.name}'): give 'key', the input fields that make the table's key` }]);
      }
      key = [...table.keyFields];
    } else if (table.keyFields !== undefined && table.keyFields.length !== key.length) {
      issues.push({ path: ['key'], message: `table '${table.name}' is keyed by ${table.keyFields.length} field(s) (${table.keyFields.join(', ')}), but 'key' has ${key.length}` });
    }
    const inTy = recordTy(input.schema);
    const added: Array<ComputedField & { def?: Ev }> = computedFields(config.fields, table.schema, issues, (name) =>
      inTy.byName.has(name) ? `the input already has a field '${name}': choose another name for the looked-up one` : undefined,
    );
    const defaults = config.defaults ?? {};
    if (config.on_miss === 'default') {
      for (const f of added) {
        if (!Object.hasOwn(defaults, f.name)) {
          issues.push({ path: ['defaults'], code: 'MISSING_FIELD', message: `on_miss: default needs a default for '${f.name}'` });
          continue;
        }
        const d = compileExpressionAt(defaults[f.name]!, input.schema, ['defaults', f.name], issues);
        if (d === undefined) continue;
        const ty = unify(f.ty, d.ty);
        if (ty === undefined || fits(d.ty, ty) !== undefined) {
          issues.push({ path: ['defaults', f.name], code: 'EXPR_TYPE', offset: 0, message: `the default of '${f.name}' is ${describeTy(d.ty)}, but the looked-up value is ${describeTy(f.ty)}` });
          continue;
        }
        f.ty = ty;
        f.def = d.evaluate;
      }
    }
    for (const name of Object.keys(defaults))
      if (config.on_miss !== 'default') issues.push({ path: ['defaults', name], at: 'key', message: "'defaults' only applies with on_miss: default" });
      else if (!Object.hasOwn(config.fields, name)) issues.push({ path: ['defaults', name], at: 'key', message: `'${name}' is not one of 'fields'` });
    if (issues.length > 0) return refused(issues);

    const schema = extendRecord(
      generatedSchemaName(ctx.name),
      input.schema,
      added.map((f) => ({ name: f.name, ty: config.on_miss === 'keep' ? nullable(f.ty) : f.ty, doc: `Looked up in table '${table.name}': ${config.fields[f.name]}.` })),
      `Output of lookup '${ctx.name}': the input with fields of table '${table.name}'.`,
    );
    const paths = splitPaths(key);
    const names = added.map((f) => f.name);
    const extend = recordExtender(recordTy(input.schema).fields.map((f) => f.name), names);
    const evs = added.map((f) => f.ev);
    const defs = added.map((f) => f.def);
    const onMiss = config.on_miss;
    const tableName = table.name;
    return compiled({
      outputs: [{ name: DEFAULT_OUTPUT, schema, keyFields: input.keyFields }],
      ...(config.mode === 'partitioned' ? { partitionBy: { [DEFAULT_INPUT]: key } } : {}),
      tables: [{ table: table.name, mode: config.mode, input: DEFAULT_INPUT, keyFields: key }],
      create() {
        return {
          process(record, ctx) {
            const k = keyOfRecord(record.value, paths);
            const found = k === null ? undefined : ctx.table(tableName).get(k);
            const values = new Array<unknown>(names.length);
            if (found !== undefined) {
              ctx.count('hit');
              for (let i = 0; i < names.length; i++) values[i] = evs[i]!(found);
            } else {
              ctx.count('miss');
              if (onMiss === 'drop') return;
              if (onMiss === 'dead_letter') {
                ctx.deadLetter('lookup-miss', `table '${tableName}' has no row for key ${k === null ? 'null' : JSON.stringify(k)}`);
                return;
              }
              for (let i = 0; i < names.length; i++) values[i] = onMiss === 'default' ? defs[i]!(record.value) : null;
            }
            ctx.forward({ key: record.key, value: extend(record.value, values), timestamp: record.timestamp, headers: record.headers });
          },
        };
      },
    });
  },
};
