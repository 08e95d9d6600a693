// The documentation side of config specs: JSON Schema and Markdown tables, derived from the same
// specs that drive parsing (kernel/spec.ts), for topology/REFERENCE.md and editors.
import type { ConfigSpec, FieldSpec } from '../kernel/spec.ts';
import { DURATION_PATTERN, formatDuration } from '../kernel/spec.ts';
import type { OperatorDefinition } from '../kernel/operator.ts';
import { DEFAULT_OUTPUT } from '../kernel/operator.ts';

export type JsonSchema = Record<string, unknown>;

export function fieldToJsonSchema(fs: FieldSpec): JsonSchema {
  let s: JsonSchema;
  switch (fs.kind) {
    case 'string':
      s = { type: 'string', ...(fs.pattern !== undefined ? { pattern: fs.pattern } : {}) };
      break;
    case 'integer':
    case 'number':
      s = { type: fs.kind, ...(fs.min !== undefined ? { minimum: fs.min } : {}), ...(fs.max !== undefined ? { maximum: fs.max } : {}) };
      break;
    case 'boolean':
      s = { type: 'boolean' };
      break;
    case 'duration':
      s = { oneOf: [{ type: 'string', pattern: DURATION_PATTERN }, { type: 'integer', minimum: 0 }] };
      break;
    case 'expression':
      s = { type: ['string', 'number', 'boolean'] };
      break;
    case 'field':
    case 'schema':
    case 'path':
    case 'url':
      s = { type: 'string' };
      break;
    case 'enum':
      s = { enum: [...(fs.values ?? [])] };
      break;
    case 'array': {
      const item = fieldToJsonSchema(fs.items ?? { kind: 'string', description: '' });
      const arr: JsonSchema = { type: 'array', items: item };
      if (fs.min !== undefined) arr.minItems = fs.min;
      if (fs.max !== undefined) arr.maxItems = fs.max;
      s = fs.min === undefined || fs.min <= 1 ? { anyOf: [item, arr] } : arr;
      break;
    }
    case 'map':
      s = { type: 'object', additionalProperties: fieldToJsonSchema(fs.items ?? { kind: 'string', description: '' }) };
      break;
    case 'object':
      s = specToJsonSchema(fs.fields ?? {});
      break;
  }
  s.description = fs.description;
  if (fs.default !== undefined) s.default = fs.default;
  if (fs.examples !== undefined) s.examples = fs.examples;
  return s;
}

/** JSON Schema (draft 2020-12 vocabulary) of an object described by a spec. */
export function specToJsonSchema(spec: ConfigSpec, extraProperties: Record<string, JsonSchema> = {}): JsonSchema {
  const properties: Record<string, JsonSchema> = { ...extraProperties };
  const required: string[] = [];
  for (const [key, fs] of Object.entries(spec)) {
    properties[key] = fieldToJsonSchema(fs);
    if (!fs.optional && fs.default === undefined) required.push(key);
  }
  return { type: 'object', properties, ...(required.length > 0 ? { required } : {}), additionalProperties: false };
}

// ---------------------------------------------------------------------------------------------
// Markdown

export function describeKind(fs: FieldSpec): string {
  switch (fs.kind) {
    case 'enum':
      return `enum: ${(fs.values ?? []).map((v) => `\`${v}\``).join(', ')}`;
    case 'expression':
      return fs.returns === undefined ? 'expression' : `expression (${fs.returns})`;
    case 'array':
      return `list of ${describeKind(fs.items ?? { kind: 'string', description: '' })}`;
    case 'map':
      return `map of ${describeKind(fs.items ?? { kind: 'string', description: '' })}`;
    case 'schema':
      return 'schema fullname';
    default:
      return fs.kind;
  }
}

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n+/g, ' ');
}

function mdValue(v: unknown): string {
  return `\`${typeof v === 'string' ? v : JSON.stringify(v)}\``;
}

/** A Markdown table of a spec's fields (nested objects and map items flattened with dots). */
export function specTable(spec: ConfigSpec): string {
  const rows: string[] = ['| Field | Kind | Required | Default | Description |', '| --- | --- | --- | --- | --- |'];
  const add = (prefix: string, s: ConfigSpec): void => {
    for (const [key, fs] of Object.entries(s)) {
      const name = `${prefix}${key}`;
      const required = !fs.optional && fs.default === undefined ? 'yes' : 'no';
      const dflt = fs.default === undefined ? '' : mdValue(fs.default);
      let desc = fs.description;
      if (fs.min !== undefined || fs.max !== undefined) {
        const unit = fs.kind === 'array' ? ' items' : '';
        const fmt = (n: number): string => (fs.kind === 'duration' ? formatDuration(n) : String(n));
        desc += ` (${fs.min !== undefined ? `min ${fmt(fs.min)}${unit}` : ''}${fs.min !== undefined && fs.max !== undefined ? ', ' : ''}${fs.max !== undefined ? `max ${fmt(fs.max)}${unit}` : ''})`;
      }
      if (fs.examples !== undefined && fs.examples.length > 0) desc += ` Examples: ${fs.examples.map(mdValue).join(', ')}.`;
      rows.push(`| \`${name}\` | ${mdCell(describeKind(fs))} | ${required} | ${mdCell(dflt)} | ${mdCell(desc)} |`);
      if (fs.kind === 'object' && fs.fields !== undefined) add(`${name}.`, fs.fields);
      if (fs.kind === 'array' && fs.items?.kind === 'object' && fs.items.fields !== undefined) add(`${name}[].`, fs.items.fields);
      if (fs.kind === 'map' && fs.items?.kind === 'object' && fs.items.fields !== undefined) add(`${name}.<key>.`, fs.items.fields);
    }
  };
  add('', spec);
  return rows.join('\n');
}

/** The reference section of one operator: summary, fields table, examples. */
export function specToMarkdown(def: OperatorDefinition<any>): string {
  const out: string[] = [];
  out.push(`### \`${def.type}\``, '');
  const meta = [`Category: ${def.category}`];
  if (def.aliases !== undefined && def.aliases.length > 0) meta.push(`aliases: ${def.aliases.map((a) => `\`${a}\``).join(', ')}`);
  meta.push(def.inputs === undefined ? 'inputs: 1' : `inputs: ${def.inputs.map((i) => `\`${i.name}\``).join(', ')}`);
  const outputs = def.outputs?.map((o) => o.name) ?? [DEFAULT_OUTPUT];
  if (def.outputs !== undefined) meta.push(`outputs: ${outputs.map((o) => `\`${o}\``).join(', ')}`);
  out.push(`${meta.join(' · ')}`, '', def.summary, '');
  if (def.description !== undefined) out.push(def.description.trim(), '');
  if (def.inputs !== undefined) {
    out.push('Inputs (`from:` lists them in this order, or maps their names to sources and operators):', '');
    for (const i of def.inputs) out.push(`- \`${i.name}\`: ${i.description}`);
    out.push('');
  }
  if (def.outputs !== undefined) {
    out.push(`Outputs (\`from: <operator>\` reads the first, \`from: <operator>.<output>\` any):`, '');
    for (const o of def.outputs) out.push(`- \`${o.name}\`: ${o.description}`);
    out.push('');
  }
  out.push('Fields (besides `name`, `type` and `from`):', '', specTable(def.config), '');
  for (const ex of def.examples ?? []) {
    out.push(`#### Example: ${ex.title}`, '', '```yaml', ex.yaml.trimEnd(), '```', '');
  }
  return out.join('\n');
}
