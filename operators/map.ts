// map (alias transform): builds a new record from expressions over the input record.
//
// The output schema is derived once from the expressions' inferred types, or is a named schema
// (`schema:`) whose fields the expressions must fill. Per record, the operator runs one closure
// per output field and allocates the output value and record: no spreads, no JSON.
//
// The plan (evaluators, output schema) is built once, by the compile step.
import type { ConfigIssue, OperatorDefinition, RecordSchema } from '../kernel/operator.ts';
import { DEFAULT_OUTPUT, compiled, refused } from '../kernel/operator.ts';
import { generatedSchemaName } from '../kernel/names.ts';
import { badFieldName } from './lib/fields.ts';
import { compileExpressionAt } from '../kernel/expr.ts';
import { suggestion } from '../kernel/diagnostics.ts';
import { avroFromTy, describeTy, fits, nonNull, recordTy, schemaFullname, stripConsts } from '../kernel/avro-types.ts';
import type { RecordTy, RecordTyField, Ty } from '../kernel/avro-types.ts';

export interface MapConfig {
  /** Output field name -> expression over the input record. */
  fields?: Record<string, string>;
  keep_input: boolean;
  drop?: string[];
  /** Fullname of a record schema the output must conform to. */
  schema?: string;
}

type Ev = (v: Record<string, unknown>) => unknown;

interface OutField {
  name: string;
  ty: Ty;
  doc?: string;
  hasDefault: boolean;
  default?: unknown;
  ev: Ev;
}

interface MapPlan {
  fields: OutField[];
  schema: RecordSchema;
  issues: ConfigIssue[];
}

const hasOwn = Object.hasOwn;

function passthrough(name: string): Ev {
  return (v) => (hasOwn(v, name) ? (v[name] ?? null) : null);
}

function constantOf(value: unknown): Ev {
  const v = value === undefined ? null : value;
  if (v !== null && typeof v === 'object') deepFreeze(v);
  return () => v;
}

function deepFreeze(o: object): void {
  Object.freeze(o);
  for (const v of Object.values(o)) if (v !== null && typeof v === 'object') deepFreeze(v);
}

/** Checked conversions applied when a `schema:` field cannot be proven to fit statically. */
function converted(ev: Ev, from: Ty, to: Ty, field: string): Ev | undefined {
  const target = nonNull(to);
  if (from.k === 'string' && target.k === 'enum') {
    const symbols = new Set(target.symbols);
    const name = target.fullname;
    return (v) => {
      const x = ev(v);
      if (typeof x === 'string' && symbols.has(x)) return x;
      if (x === null && to.k === 'nullable') return null;
      throw new Error(`map: field '${field}': '${String(x)}' is not a symbol of ${name}`);
    };
  }
  if (from.k === 'long' && target.k === 'int') {
    return (v) => {
      const x = ev(v) as number;
      if (x >= -2147483648 && x <= 2147483647) return x;
      throw new Error(`map: field '${field}': ${x} is out of the int range`);
    };
  }
  return undefined;
}

function compileField(src: string, input: RecordSchema, path: (string | number)[], issues: ConfigIssue[]): { ty: Ty; ev: Ev } | undefined {
  const c = compileExpressionAt(src, input, path, issues);
  return c === undefined ? undefined : { ty: c.ty, ev: c.evaluate };
}

function buildPlan(config: MapConfig, input: RecordSchema, name: string, resolveSchema: (fullname: string) => RecordSchema | undefined): MapPlan {
  const issues: ConfigIssue[] = [];
  const inTy = recordTy(input);
  const exprs = config.fields ?? {};
  const drop = new Set(config.drop ?? []);
  if (config.fields === undefined && !config.keep_input) {
    issues.push({ path: [], message: "map needs 'fields' (or keep_input: true)", code: 'MISSING_FIELD' });
  }
  if (drop.size > 0 && !config.keep_input) {
    issues.push({ path: ['drop'], message: "'drop' only applies with keep_input: true", code: 'INVALID_VALUE' });
  }
  for (const name of Object.keys(exprs)) {
    const bad = badFieldName(name, ['fields', name]);
    if (bad !== undefined) issues.push(bad);
    if (drop.has(name)) issues.push({ path: ['fields', name], at: 'key', code: 'INVALID_VALUE', message: `'${name}' is both dropped and set` });
  }

  if (config.schema !== undefined) {
    const target = resolveSchema(config.schema);
    if (target === undefined) {
      issues.push({ path: ['schema'], message: `unknown schema '${config.schema}'`, code: 'UNKNOWN_SCHEMA' });
      return { fields: [], schema: input, issues };
    }
    return targetPlan(config, input, inTy, target, exprs, issues);
  }

  const fields: OutField[] = [];
  const index = new Map<string, number>();
  if (config.keep_input) {
    for (const f of inTy.fields) {
      if (drop.has(f.name)) continue;
      index.set(f.name, fields.length);
      fields.push({ name: f.name, ty: f.ty, doc: f.doc, hasDefault: f.hasDefault, default: f.default, ev: passthrough(f.name) });
    }
  }
  for (const [name, src] of Object.entries(exprs)) {
    const c = compileField(src, input, ['fields', name], issues);
    if (c === undefined) continue;
    const out: OutField = { name, ty: c.ty, hasDefault: false, ev: c.ev };
    const at = index.get(name);
    if (at === undefined) {
      index.set(name, fields.length);
      fields.push(out);
    } else {
      fields[at] = out;
    }
  }
  const rec: RecordTy = {
    k: 'record',
    fullname: generatedSchemaName(name),
    doc: `Output of map '${name}'.`,
    fields: fields.map((f) => ({ name: f.name, ty: stripConsts(f.ty), doc: f.doc, hasDefault: f.hasDefault, default: f.default })),
    byName: new Map(),
  };
  return { fields, schema: avroFromTy(rec) as RecordSchema, issues };
}

function targetPlan(config: MapConfig, input: RecordSchema, inTy: RecordTy, target: RecordSchema, exprs: Record<string, string>, issues: ConfigIssue[]): MapPlan {
  const tTy = recordTy(target);
  const tname = schemaFullname(target);
  const names = tTy.fields.map((f) => f.name);
  for (const name of Object.keys(exprs)) {
    if (!tTy.byName.has(name)) {
      issues.push({ path: ['fields', name], at: 'key', code: 'INVALID_VALUE', message: `${tname} has no field '${name}'${suggestion(name, names)} (it has: ${names.join(', ')})` });
    }
  }
  const fields: OutField[] = [];
  for (const f of tTy.fields) {
    const out = targetField(config, input, inTy, f, exprs, issues, tname);
    if (out !== undefined) fields.push(out);
  }
  return { fields, schema: target, issues };
}

function targetField(
  config: MapConfig,
  input: RecordSchema,
  inTy: RecordTy,
  f: RecordTyField,
  exprs: Record<string, string>,
  issues: ConfigIssue[],
  tname: string,
): OutField | undefined {
  const base = { name: f.name, ty: f.ty, doc: f.doc, hasDefault: f.hasDefault, default: f.default };
  if (hasOwn(exprs, f.name)) {
    const path = ['fields', f.name];
    const c = compileField(exprs[f.name], input, path, issues);
    if (c === undefined) return undefined;
    const why = fits(c.ty, f.ty);
    if (why === undefined) return { ...base, ev: c.ev };
    // Values known at compile time (literals) must fit now; others are checked per record.
    const conv = c.ty.k === 'string' && c.ty.consts !== undefined ? undefined : converted(c.ev, c.ty, f.ty, f.name);
    if (conv !== undefined) return { ...base, ev: conv };
    issues.push({ path, code: 'EXPR_TYPE', offset: 0, message: `field '${f.name}' of ${tname} is ${describeTy(f.ty)}, but the expression is ${describeTy(c.ty)}: ${why}` });
    return undefined;
  }
  const own = config.keep_input && !(config.drop ?? []).includes(f.name) ? inTy.byName.get(f.name) : undefined;
  if (own !== undefined && fits(own.ty, f.ty) === undefined) return { ...base, ev: passthrough(f.name) };
  if (f.hasDefault) return { ...base, ev: constantOf(structuredClone(f.default)) };
  issues.push({
    path: ['fields'],
    code: 'MISSING_FIELD',
    message: `field '${f.name}' of ${tname} (${describeTy(f.ty)}) has no default: set it in 'fields'${own !== undefined ? ` (the input's '${f.name}' is ${describeTy(own.ty)})` : ''}`,
  });
  return undefined;
}

/** The output's key fields: the input's, renamed, when every one passes through unchanged. */
function outputKeyFields(config: MapConfig, inputKey: readonly string[] | undefined): string[] | undefined {
  if (inputKey === undefined || inputKey.length === 0) return undefined;
  const exprs = config.fields ?? {};
  const drop = new Set(config.drop ?? []);
  const out: string[] = [];
  for (const k of inputKey) {
    // The key field survives if an output field is exactly that input field.
    let renamed: string | undefined;
    if (config.keep_input && !drop.has(k) && (!hasOwn(exprs, k) || exprs[k].trim() === k)) renamed = k;
    if (renamed === undefined) {
      for (const [name, src] of Object.entries(exprs)) {
        if (src.trim() === k) {
          renamed = name;
          break;
        }
      }
    }
    if (renamed === undefined) return undefined;
    out.push(renamed);
  }
  return out;
}

export const mapOperator: OperatorDefinition<MapConfig> = {
  type: 'map',
  aliases: ['transform'],
  category: 'processing',
  summary: 'Builds a new record from expressions over the input record.',
  description: [
    'Each entry of `fields` is an output field name and the expression that computes it. The output record has exactly',
    'those fields, in that order, with the types inferred from the expressions (its schema is named',
    '`vigil.generated.<OperatorName>`). With `keep_input: true` the output starts from the input fields (minus `drop`)',
    'and `fields` overrides or adds fields.',
    '',
    'With `schema:` the output is a record of that schema instead: every field of it must be set by `fields`, kept',
    'from the input (`keep_input`), or have a default. Each expression must fit its field: numbers widen',
    '(int to long to double), string literals must be symbols of enum fields. A string that is not a literal is checked',
    'per record against the enum\'s symbols, and a long against the int range; a record that fails goes to the',
    'dead-letter topic.',
    '',
    'String literals are quoted inside the expression, so quote the YAML value too: `rule: \'"cpu-hot"\'`.',
    'Record keys, timestamps and headers pass through unchanged.',
  ].join('\n'),
  config: {
    fields: {
      kind: 'map',
      optional: true,
      items: { kind: 'expression', description: 'Expression computing the field.' },
      description: 'Output field name -> expression. Required unless keep_input is true.',
      examples: [{ id: 'host + ":" + name', observed: 'value' }],
    },
    keep_input: {
      kind: 'boolean',
      default: false,
      description: 'Start from the input record\'s fields (in their order) and override or add `fields`.',
    },
    drop: {
      kind: 'array',
      optional: true,
      items: { kind: 'field', description: 'An input field to leave out.' },
      description: 'With keep_input: input fields to leave out.',
    },
    schema: {
      kind: 'schema',
      optional: true,
      description: 'Fullname of a record schema the output must conform to (e.g. `vigil.alerting.Alert`).',
    },
  },
  examples: [
    {
      title: 'Derive fields',
      yaml: `sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
operators:
  - name: enrich
    type: map
    fields:
      series: host + "/" + name
      timestamp: timestamp
      value: round(value, 2)
      region: tags.region ?? "unknown"
`,
    },
    {
      title: 'Build an alert',
      yaml: `sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
operators:
  - name: to-alert
    type: map
    schema: vigil.alerting.Alert
    fields:
      id: '"cpu-hot:" + host'
      timestamp: timestamp
      rule: '"cpu-hot"'
      entity: host
      category: '"PERFORMANCE"'
      severity: 'value > 95 ? "CRITICAL" : "WARNING"'
      summary: '"CPU at " + string(round(value, 1)) + "% on " + host'
      value: value
      threshold: 90
      labels: '{"metric": name, "region": tags.region ?? "unknown"}'
`,
    },
    {
      title: 'Keep the input, drop a field and add one',
      yaml: `sources:
  - name: logs
    topic: telemetry.logs
    schema: vigil.telemetry.LogLine
operators:
  - name: slim
    type: transform
    keep_input: true
    drop: [attributes]
    fields:
      short: 'len(message) > 80 ? "long" : "short"'
`,
    },
  ],
  compile(config, ctx) {
    const input = ctx.inputs[0]!;
    const p = buildPlan(config, input.schema, ctx.name, ctx.resolveSchema);
    if (p.issues.length > 0) return refused(p.issues);
    const names = p.fields.map((f) => f.name);
    const evs = p.fields.map((f) => f.ev);
    const n = names.length;
    return compiled({
      outputs: [{ name: DEFAULT_OUTPUT, schema: p.schema, keyFields: outputKeyFields(config, input.keyFields) }],
      create: () => ({
        process(record, c) {
          const v = record.value;
          const out: Record<string, unknown> = {};
          for (let i = 0; i < n; i++) out[names[i]!] = evs[i]!(v);
          c.forward({ key: record.key, value: out, timestamp: record.timestamp, headers: record.headers });
        },
      }),
    });
  },
};
