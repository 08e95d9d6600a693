// Avro schema text as the registry sees it: validation (avsc), a canonical form that decides
// schema identity, and compatibility checks built on avsc's resolver.
//
// Canonical form: compact JSON in which named types carry their full name (no `namespace`
// key), references to named types are full names, `{"type": "string"}` is written "string",
// keys appear in a fixed order (type, name, doc, aliases, fields, symbols, items, values, size,
// default, order, logicalType, precision, scale, then the rest alphabetically) and default
// values have sorted object keys. Unlike Avro's Parsing Canonical Form it keeps docs, defaults,
// logical types and custom attributes: they matter to users and a changed default is a new
// schema. Whitespace, key order and namespace spelling do not create new ids.
import avro from 'avsc';
import type { Type } from 'avsc';

type AvscSchema = Parameters<typeof avro.Type.forSchema>[0];

export type CompatibilityLevel =
  | 'NONE'
  | 'BACKWARD'
  | 'BACKWARD_TRANSITIVE'
  | 'FORWARD'
  | 'FORWARD_TRANSITIVE'
  | 'FULL'
  | 'FULL_TRANSITIVE';

export const COMPATIBILITY_LEVELS: readonly CompatibilityLevel[] = [
  'NONE',
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
];

export const DEFAULT_COMPATIBILITY: CompatibilityLevel = 'BACKWARD';

export function parseCompatibilityLevel(value: unknown): CompatibilityLevel | undefined {
  if (typeof value !== 'string') return undefined;
  const up = value.toUpperCase();
  return (COMPATIBILITY_LEVELS as readonly string[]).includes(up) ? (up as CompatibilityLevel) : undefined;
}

/** A schema the registry accepted: its compiled type and its canonical text. */
export interface ParsedSchema {
  type: Type;
  canonical: string;
}

export class InvalidAvroSchemaError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidAvroSchemaError';
  }
}

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);
const NAMED = new Set(['record', 'error', 'enum', 'fixed']);
const SCHEMA_KEY_ORDER = [
  'type',
  'name',
  'doc',
  'aliases',
  'fields',
  'symbols',
  'items',
  'values',
  'size',
  'default',
  'order',
  'logicalType',
  'precision',
  'scale',
];
const FIELD_KEY_ORDER = ['name', 'type', 'doc', 'default', 'order', 'aliases'];

/** Parses schema text (as POSTed to the registry), validates it and computes its canonical form. */
export function parseSchemaText(text: string): ParsedSchema {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    // Avro allows a bare primitive name as the whole schema text, e.g. `string`.
    if (typeof text === 'string' && PRIMITIVES.has(text.trim())) json = text.trim();
    else throw new InvalidAvroSchemaError(`Invalid schema: not JSON (${(err as Error).message})`, { cause: err });
  }
  return parseSchemaJson(json);
}

export function parseSchemaJson(json: unknown): ParsedSchema {
  try {
    avro.Type.forSchema(json as AvscSchema);
  } catch (err) {
    throw new InvalidAvroSchemaError(`Invalid schema: ${avroProblem((err as Error).message)}`, { cause: err });
  }
  const canonicalJson = canonicalize(json, '');
  const canonical = JSON.stringify(canonicalJson);
  let type: Type;
  try {
    type = avro.Type.forSchema(canonicalJson as AvscSchema);
  } catch (err) {
    // The canonical form must describe the same schema; failing here is a Vigil bug.
    throw new InvalidAvroSchemaError(`Invalid schema after canonicalization: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { type, canonical };
}

function fullName(name: string, namespace: string): string {
  if (name.includes('.')) return name;
  return namespace ? `${namespace}.${name}` : name;
}

function namespaceOf(fullname: string): string {
  const i = fullname.lastIndexOf('.');
  return i < 0 ? '' : fullname.slice(0, i);
}

function sortedValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedValue);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortedValue((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

function ordered(
  src: Record<string, unknown>,
  order: readonly string[],
  map: (key: string, value: unknown) => unknown,
  skip: ReadonlySet<string>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of order) {
    if (k in src && !skip.has(k) && src[k] !== undefined) out[k] = map(k, src[k]);
  }
  for (const k of Object.keys(src).sort()) {
    if (!(k in out) && !skip.has(k) && !order.includes(k) && src[k] !== undefined) out[k] = map(k, src[k]);
  }
  return out;
}

const SKIP_NAMESPACE = new Set(['namespace']);
const SKIP_NONE = new Set<string>();

function canonicalize(node: unknown, ns: string): unknown {
  if (typeof node === 'string') return PRIMITIVES.has(node) ? node : fullName(node, ns);
  if (Array.isArray(node)) return node.map((b) => canonicalize(b, ns));
  if (node === null || typeof node !== 'object') return node;
  const obj = node as Record<string, unknown>;
  const t = obj.type;
  if (typeof t !== 'string') return canonicalize(t, ns); // {"type": {...}} wrapper
  if (NAMED.has(t)) {
    const name = fullName(String(obj.name), typeof obj.namespace === 'string' ? obj.namespace : ns);
    const inner = namespaceOf(name);
    return ordered(
      obj,
      SCHEMA_KEY_ORDER,
      (k, v) => {
        if (k === 'name') return name;
        if (k === 'aliases' && Array.isArray(v)) return v.map((a) => fullName(String(a), inner));
        if (k === 'fields' && Array.isArray(v)) return v.map((f) => canonicalField(f, inner));
        return sortedValue(v);
      },
      SKIP_NAMESPACE,
    );
  }
  if (t === 'array' || t === 'map') {
    return ordered(
      obj,
      SCHEMA_KEY_ORDER,
      (k, v) => (k === 'items' || k === 'values' ? canonicalize(v, ns) : sortedValue(v)),
      SKIP_NONE,
    );
  }
  if (PRIMITIVES.has(t)) {
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
    if (keys.length === 1) return t;
    return ordered(obj, SCHEMA_KEY_ORDER, (_k, v) => sortedValue(v), SKIP_NONE);
  }
  // {"type": "some.Named"}: a reference to a named type, possibly with attributes.
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
  if (keys.length === 1) return fullName(t, ns);
  return ordered(obj, SCHEMA_KEY_ORDER, (k, v) => (k === 'type' ? fullName(t, ns) : sortedValue(v)), SKIP_NONE);
}

function canonicalField(field: unknown, ns: string): unknown {
  if (field === null || typeof field !== 'object') return field;
  return ordered(
    field as Record<string, unknown>,
    FIELD_KEY_ORDER,
    (k, v) => (k === 'type' ? canonicalize(v, ns) : sortedValue(v)),
    SKIP_NONE,
  );
}

// ---------------------------------------------------------------------------------------------
// Compatibility

/** One earlier version a new schema is checked against. */
export interface PriorSchema {
  version: number;
  id: number;
  type: Type;
}

/** Why `reader` cannot read data written with `writer`, or undefined when it can. */
export function readProblem(reader: Type, writer: Type): string | undefined {
  try {
    reader.createResolver(writer);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Checks a new schema against a subject's live versions (oldest first) under a level.
 * Returns one message per incompatibility; empty means compatible.
 */
export function checkCompatibility(
  level: CompatibilityLevel,
  candidate: Type,
  prior: readonly PriorSchema[],
): string[] {
  if (level === 'NONE' || prior.length === 0) return [];
  const transitive = level.endsWith('_TRANSITIVE');
  const against = transitive ? prior : prior.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const problems: string[] = [];
  for (const p of against) {
    if (backward) {
      const why = readProblem(candidate, p.type);
      if (why) problems.push(`${level}: the new schema cannot read data written with version ${p.version} (id ${p.id}): ${why}`);
    }
    if (forward) {
      const why = readProblem(p.type, candidate);
      if (why) problems.push(`${level}: version ${p.version} (id ${p.id}) cannot read data written with the new schema: ${why}`);
    }
  }
  return problems;
}

/** avsc's message about a schema, in the words of the Avro specification (no JavaScript `undefined`). */
export function avroProblem(message: string): string {
  const rules: Array<[RegExp, (m: RegExpExecArray) => string]> = [
    [/^non-array record fields: (.*)$/, (m) => `a record needs a "fields" array${m[1] === 'undefined' ? '' : ` (got ${m[1]})`}`],
    [/^invalid enum symbols: (.*)$/, (m) => `an enum needs a "symbols" array of names${m[1] === 'undefined' ? '' : ` (got ${m[1]})`}`],
    [/^missing array items: (.*)$/, () => 'an array needs "items"'],
    [/^missing map values: (.*)$/, () => 'a map needs "values"'],
    [/^invalid (\S+) size$/, (m) => `fixed ${m[1]} needs a positive integer "size"`],
    [/^missing name property in schema: (.*)$/, () => 'a named type (record, enum, fixed) needs a "name"'],
    [/^undefined type name: (.*)$/, (m) => `unknown type "${m[1]}"`],
    [/^unknown type: (.*)$/, (m) => `unknown type ${m[1]!.startsWith('"') ? m[1] : `"${m[1]}"`}`],
  ];
  for (const [re, text] of rules) {
    const m = re.exec(message);
    if (m) return text(m);
  }
  return message.replace(/\bundefined\b/g, '(missing)');
}
