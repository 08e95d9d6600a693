// A resolved model of Avro types (Ty) used by the expression compiler, the operators' schema
// derivation and the loader's compatibility checks; conversions from and to Avro schema JSON.
//
// Values are assumed to be in avsc's in-memory representation with unwrapped unions: ints, longs,
// floats and doubles are numbers, enums are their symbol strings, maps are plain objects, a
// ["null", T] union holds null or a T.
import type { AvroField, AvroType, RecordSchema } from './schema.ts';

export type NumericKind = 'int' | 'long' | 'float' | 'double';
type Attrs = Readonly<Record<string, unknown>>;

export interface NullTy { readonly k: 'null' }
export interface BooleanTy { readonly k: 'boolean' }
export interface NumericTy { readonly k: NumericKind; readonly attrs?: Attrs }
/** `consts`: when known, the finite set of values the string can take (literals, enum symbols). */
export interface StringTy { readonly k: 'string'; readonly consts?: readonly string[]; readonly attrs?: Attrs }
export interface BytesTy { readonly k: 'bytes'; readonly attrs?: Attrs }
export interface EnumTy {
  readonly k: 'enum';
  readonly fullname: string;
  readonly symbols: readonly string[];
  readonly attrs?: Attrs;
}
export interface FixedTy { readonly k: 'fixed'; readonly fullname: string; readonly size: number; readonly attrs?: Attrs }
export interface RecordTyField {
  readonly name: string;
  readonly ty: Ty;
  readonly doc?: string;
  readonly hasDefault: boolean;
  readonly default?: unknown;
  readonly attrs?: Attrs;
}
export interface RecordTy {
  readonly k: 'record';
  readonly fullname: string;
  readonly doc?: string;
  readonly fields: RecordTyField[];
  readonly byName: Map<string, RecordTyField>;
  readonly attrs?: Attrs;
}
export interface ArrayTy { readonly k: 'array'; readonly items: Ty }
export interface MapTy { readonly k: 'map'; readonly values: Ty }
/** ["null", T] or [T, "null"]: null or a T. */
export interface NullableTy { readonly k: 'nullable'; readonly inner: Ty; readonly nullFirst: boolean }
/** Any other union: opaque to expressions (passed through, compared for compatibility only). */
export interface UnionTy { readonly k: 'union'; readonly branches: readonly Ty[] }

export type Ty =
  | NullTy | BooleanTy | NumericTy | StringTy | BytesTy | EnumTy | FixedTy | RecordTy | ArrayTy | MapTy | NullableTy | UnionTy;

export const T_NULL: NullTy = { k: 'null' };
export const T_BOOLEAN: BooleanTy = { k: 'boolean' };
export const T_INT: NumericTy = { k: 'int' };
export const T_LONG: NumericTy = { k: 'long' };
export const T_FLOAT: NumericTy = { k: 'float' };
export const T_DOUBLE: NumericTy = { k: 'double' };
export const T_STRING: StringTy = { k: 'string' };
export const T_BYTES: BytesTy = { k: 'bytes' };

const PRIMITIVE: Record<string, Ty> = {
  null: T_NULL, boolean: T_BOOLEAN, int: T_INT, long: T_LONG, float: T_FLOAT, double: T_DOUBLE, string: T_STRING, bytes: T_BYTES,
};
const NUMERIC_RANK: Record<string, number> = { int: 1, long: 2, float: 3, double: 4 };

export class SchemaTypeError extends Error {}

export function isNumeric(t: Ty): t is NumericTy {
  return t.k === 'int' || t.k === 'long' || t.k === 'float' || t.k === 'double';
}
export function isIntegral(t: Ty): boolean {
  return t.k === 'int' || t.k === 'long';
}
/** Strings and enum symbols: both are JS strings at run time. */
export function isStringLike(t: Ty): t is StringTy | EnumTy {
  return t.k === 'string' || t.k === 'enum';
}
export function isScalar(t: Ty): boolean {
  return t.k === 'boolean' || isNumeric(t) || isStringLike(t);
}
export function mayBeNull(t: Ty): boolean {
  return t.k === 'null' || t.k === 'nullable' || (t.k === 'union' && t.branches.some(mayBeNull));
}
export function nonNull(t: Ty): Ty {
  return t.k === 'nullable' ? t.inner : t;
}
export function nullable(t: Ty): Ty {
  return t.k === 'null' || t.k === 'nullable' ? t : { k: 'nullable', inner: t, nullFirst: true };
}
export function widerNumeric(a: NumericTy, b: NumericTy): NumericTy {
  const k = NUMERIC_RANK[a.k] >= NUMERIC_RANK[b.k] ? a.k : b.k;
  return PRIMITIVE[k] as NumericTy;
}
/** The plain (attribute-free, const-free) version of a primitive type. */
export function plain(t: Ty): Ty {
  return (t.k in PRIMITIVE ? PRIMITIVE[t.k] : t) as Ty;
}

export function fullnameOf(name: string, namespace: string | undefined): string {
  if (name.includes('.')) return name;
  return namespace ? `${namespace}.${name}` : name;
}
function namespaceOf(fullname: string): string {
  const i = fullname.lastIndexOf('.');
  return i < 0 ? '' : fullname.slice(0, i);
}
function shortName(fullname: string): string {
  return fullname.slice(fullname.lastIndexOf('.') + 1);
}

// ---------------------------------------------------------------------------------------------
// Avro JSON -> Ty

/** Resolves named-type references that are not defined inline (raw definitions by fullname). */
export type NamedLookup = (fullname: string) => AvroType | undefined;

class Converter {
  private readonly named = new Map<string, Ty>();
  constructor(private readonly lookup: NamedLookup | undefined) {}

  convert(schema: AvroType, ns: string): Ty {
    if (typeof schema === 'string') return this.ref(schema, ns);
    if (Array.isArray(schema)) return this.union(schema, ns);
    if (schema === null || typeof schema !== 'object') throw new SchemaTypeError(`not an Avro type: ${JSON.stringify(schema)}`);
    const s = schema as Record<string, unknown>;
    const type = s.type;
    if (typeof type !== 'string') return this.convert(type as AvroType, ns);
    switch (type) {
      case 'record':
      case 'error':
        return this.record(s, ns);
      case 'enum': {
        const fullname = this.named_(s, ns);
        const symbols = s.symbols;
        if (!Array.isArray(symbols) || !symbols.every((x) => typeof x === 'string')) throw new SchemaTypeError(`enum ${fullname}: symbols must be strings`);
        const t: EnumTy = { k: 'enum', fullname, symbols, attrs: pick(s, ['doc', 'default', 'aliases']) };
        this.named.set(fullname, t);
        return t;
      }
      case 'fixed': {
        const fullname = this.named_(s, ns);
        const t: FixedTy = { k: 'fixed', fullname, size: Number(s.size), attrs: extra(s, ['type', 'name', 'namespace', 'size']) };
        this.named.set(fullname, t);
        return t;
      }
      case 'array':
        return { k: 'array', items: this.convert(s.items as AvroType, ns) };
      case 'map':
        return { k: 'map', values: this.convert(s.values as AvroType, ns) };
      default: {
        const p = PRIMITIVE[type];
        if (p === undefined) return this.ref(type, ns);
        const attrs = extra(s, ['type']);
        return attrs === undefined ? p : ({ k: p.k, attrs } as Ty);
      }
    }
  }

  private named_(s: Record<string, unknown>, ns: string): string {
    if (typeof s.name !== 'string') throw new SchemaTypeError('named type without a name');
    const fullname = fullnameOf(s.name, typeof s.namespace === 'string' ? s.namespace : ns);
    return fullname;
  }

  private record(s: Record<string, unknown>, ns: string): RecordTy {
    const fullname = this.named_(s, ns);
    const fields: RecordTyField[] = [];
    const byName = new Map<string, RecordTyField>();
    const t: RecordTy = { k: 'record', fullname, doc: typeof s.doc === 'string' ? s.doc : undefined, fields, byName, attrs: extra(s, ['type', 'name', 'namespace', 'doc', 'fields']) };
    this.named.set(fullname, t);
    const inner = namespaceOf(fullname);
    if (!Array.isArray(s.fields)) throw new SchemaTypeError(`record ${fullname}: fields must be a list`);
    for (const f of s.fields as AvroField[]) {
      const hasDefault = Object.hasOwn(f, 'default');
      const field: RecordTyField = {
        name: f.name,
        ty: this.convert(f.type, inner),
        doc: f.doc,
        hasDefault,
        default: hasDefault ? f.default : undefined,
        attrs: extra(f as unknown as Record<string, unknown>, ['name', 'type', 'doc', 'default']),
      };
      fields.push(field);
      byName.set(f.name, field);
    }
    return t;
  }

  private union(branches: AvroType[], ns: string): Ty {
    const tys = branches.map((b) => this.convert(b, ns));
    if (tys.length === 2) {
      if (tys[0].k === 'null' && tys[1].k !== 'null') return { k: 'nullable', inner: tys[1], nullFirst: true };
      if (tys[1].k === 'null' && tys[0].k !== 'null') return { k: 'nullable', inner: tys[0], nullFirst: false };
    }
    return { k: 'union', branches: tys };
  }

  private ref(name: string, ns: string): Ty {
    const p = PRIMITIVE[name];
    if (p !== undefined) return p;
    const candidates = name.includes('.') ? [name] : ns ? [`${ns}.${name}`, name] : [name];
    for (const c of candidates) {
      const t = this.named.get(c);
      if (t !== undefined) return t;
    }
    for (const c of candidates) {
      const raw = this.lookup?.(c);
      if (raw !== undefined) return this.convert(raw, namespaceOf(c));
    }
    throw new SchemaTypeError(`unknown Avro type name '${name}'`);
  }
}

function extra(s: Record<string, unknown>, known: string[]): Attrs | undefined {
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(s)) {
    if (known.includes(k)) continue;
    (out ??= {})[k] = s[k];
  }
  return out;
}
function pick(s: Record<string, unknown>, keys: string[]): Attrs | undefined {
  let out: Record<string, unknown> | undefined;
  for (const k of keys) if (Object.hasOwn(s, k)) (out ??= {})[k] = s[k];
  return out;
}

/** Converts Avro JSON to a Ty; references to types not defined inline go through `lookup`. */
export function tyFromAvro(schema: AvroType, lookup?: NamedLookup, namespace = ''): Ty {
  return new Converter(lookup).convert(schema, namespace);
}

const recordTyCache = new WeakMap<object, RecordTy>();

/** The RecordTy of a self-contained record schema (cached per schema object). */
export function recordTy(schema: RecordSchema): RecordTy {
  let t = recordTyCache.get(schema);
  if (t === undefined) {
    const c = tyFromAvro(schema as AvroType);
    if (c.k !== 'record') throw new SchemaTypeError('not a record schema');
    t = c;
    recordTyCache.set(schema, t);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Ty -> Avro JSON

/** Emits Avro JSON; each named type is defined at its first use and referenced by fullname after. */
export function avroFromTy(ty: Ty, defined: Set<string> = new Set(), ns = ''): AvroType {
  switch (ty.k) {
    case 'null':
      return 'null';
    case 'boolean':
    case 'int':
    case 'long':
    case 'float':
    case 'double':
    case 'string':
    case 'bytes': {
      const attrs = (ty as NumericTy).attrs;
      return attrs === undefined ? ty.k : ({ type: ty.k, ...attrs } as AvroType);
    }
    case 'nullable': {
      const inner = avroFromTy(ty.inner, defined, ns);
      return ty.nullFirst ? ['null', inner] : [inner, 'null'];
    }
    case 'union':
      return ty.branches.map((b) => avroFromTy(b, defined, ns));
    case 'array':
      return { type: 'array', items: avroFromTy(ty.items, defined, ns) };
    case 'map':
      return { type: 'map', values: avroFromTy(ty.values, defined, ns) };
    case 'enum':
    case 'fixed':
    case 'record': {
      if (defined.has(ty.fullname)) return ty.fullname;
      defined.add(ty.fullname);
      const own = namespaceOf(ty.fullname);
      const head: Record<string, unknown> = { type: ty.k, name: shortName(ty.fullname) };
      if (own !== '' || ns !== '') head.namespace = own;
      if (ty.k === 'enum') return { ...head, symbols: [...ty.symbols], ...ty.attrs } as AvroType;
      if (ty.k === 'fixed') return { ...head, size: ty.size, ...ty.attrs } as unknown as AvroType;
      if (ty.doc !== undefined) head.doc = ty.doc;
      head.fields = ty.fields.map((f) => avroField(f, defined, own));
      return { ...head, ...ty.attrs } as AvroType;
    }
  }
}

function avroField(f: RecordTyField, defined: Set<string>, ns: string): AvroField {
  const out: AvroField = { name: f.name, type: avroFromTy(f.ty, defined, ns) };
  if (f.doc !== undefined) out.doc = f.doc;
  if (f.hasDefault) out.default = f.default;
  if (f.attrs !== undefined) Object.assign(out, f.attrs);
  return out;
}

/** The type of a value once stored: a string of known constants is a plain string. */
export function stripConsts(t: Ty): Ty {
  if (t.k === 'string' && t.consts !== undefined) return T_STRING;
  if (t.k === 'nullable') return nullable(stripConsts(t.inner));
  return t;
}

/**
 * A record schema with the fields of `base` (kept as they are: docs, defaults) followed by
 * `extra`, named `fullname`. Names in `extra` must not be fields of `base`.
 */
export function extendRecord(fullname: string, base: RecordSchema, extra: ReadonlyArray<{ name: string; ty: Ty; doc?: string }>, doc?: string): RecordSchema {
  const t: RecordTy = {
    k: 'record',
    fullname,
    doc,
    fields: [...recordTy(base).fields, ...extra.map((f) => generatedField(f.name, stripConsts(f.ty), f.doc))],
    byName: new Map(),
  };
  return avroFromTy(t) as RecordSchema;
}

/** A record schema from fields (names and types), named `fullname`. */
export function recordSchemaOf(fullname: string, fields: ReadonlyArray<{ name: string; ty: Ty; doc?: string }>, doc?: string): RecordSchema {
  const t: RecordTy = {
    k: 'record',
    fullname,
    doc,
    fields: fields.map((f) => generatedField(f.name, f.ty, f.doc)),
    byName: new Map(),
  };
  return avroFromTy(t) as RecordSchema;
}

/**
 * A field of a generated schema. A nullable one (null first) defaults to null, so that a field
 * added to an output (an aggregation added in a topology upgrade) keeps its subject's schemas
 * compatible both ways.
 */
function generatedField(name: string, ty: Ty, doc: string | undefined): RecordTy['fields'][number] {
  return ty.k === 'nullable' && ty.nullFirst ? { name, ty, doc, hasDefault: true, default: null } : { name, ty, doc, hasDefault: false };
}

/** The fullname of a record schema. */
export function schemaFullname(s: { name: string; namespace?: string }): string {
  return fullnameOf(s.name, s.namespace);
}

// ---------------------------------------------------------------------------------------------
// Describing, unifying and checking compatibility

export function describeTy(t: Ty): string {
  switch (t.k) {
    case 'nullable':
      return `${describeTy(t.inner)} | null`;
    case 'union':
      return t.branches.map(describeTy).join(' | ');
    case 'array':
      return `array<${describeTy(t.items)}>`;
    case 'map':
      return `map<${describeTy(t.values)}>`;
    case 'enum':
    case 'fixed':
    case 'record':
      return `${t.k} ${t.fullname}`;
    default: {
      const logical = (t as NumericTy).attrs?.logicalType;
      return typeof logical === 'string' ? `${t.k} (${logical})` : t.k;
    }
  }
}

/** The common type of two branches (ternary, coalesce, list items); undefined when none. */
export function unify(a: Ty, b: Ty): Ty | undefined {
  if (a.k === 'null') return nullable(b);
  if (b.k === 'null') return nullable(a);
  if (a.k === 'nullable' || b.k === 'nullable') {
    const u = unify(nonNull(a), nonNull(b));
    return u === undefined ? undefined : nullable(u);
  }
  if (isNumeric(a) && isNumeric(b)) {
    if (a.k === b.k && sameAttrs(a.attrs, b.attrs)) return a;
    return widerNumeric(a, b);
  }
  if (a.k === 'enum' && b.k === 'enum' && a.fullname === b.fullname) return a;
  if (isStringLike(a) && isStringLike(b)) {
    const ca = constsOf(a);
    const cb = constsOf(b);
    if (ca === undefined || cb === undefined) return T_STRING;
    return { k: 'string', consts: [...new Set([...ca, ...cb])] };
  }
  if (a.k === 'boolean' && b.k === 'boolean') return a;
  if (a.k === 'bytes' && b.k === 'bytes') return a;
  if (a.k === 'array' && b.k === 'array') {
    const items = unify(a.items, b.items);
    return items === undefined ? undefined : { k: 'array', items };
  }
  if (a.k === 'map' && b.k === 'map') {
    const values = unify(a.values, b.values);
    return values === undefined ? undefined : { k: 'map', values };
  }
  if ((a.k === 'record' || a.k === 'fixed') && b.k === a.k && a.fullname === (b as RecordTy | FixedTy).fullname) return a;
  if (a.k === 'union' && b.k === 'union' && describeTy(a) === describeTy(b)) return a;
  return undefined;
}

function sameAttrs(a: Attrs | undefined, b: Attrs | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** Known values of a string-like type: literal sets or enum symbols. */
export function constsOf(t: Ty): readonly string[] | undefined {
  if (t.k === 'enum') return t.symbols;
  if (t.k === 'string') return t.consts;
  return undefined;
}

/**
 * Whether every value of `from` (in memory) is a valid value of `to`, so a record holding it can be
 * encoded with `to`'s schema. Returns undefined when it fits, else the reason.
 * Numbers widen (int -> long -> float -> double); enum symbols fit strings; a string fits an enum
 * only when all its known values are symbols; a possibly-null value never fits a non-null type.
 */
export function fits(from: Ty, to: Ty, seen: Set<string> = new Set()): string | undefined {
  if (to.k === 'union') {
    if (from.k === 'union' || from.k === 'nullable') {
      for (const b of from.k === 'union' ? from.branches : [T_NULL, from.inner]) {
        if (!to.branches.some((tb) => fits(b, tb, seen) === undefined)) return `${describeTy(b)} fits no branch of ${describeTy(to)}`;
      }
      return undefined;
    }
    return to.branches.some((tb) => fits(from, tb, seen) === undefined) ? undefined : `${describeTy(from)} fits no branch of ${describeTy(to)}`;
  }
  if (to.k === 'nullable') {
    if (from.k === 'null') return undefined;
    return fits(nonNull(from), to.inner, seen);
  }
  if (from.k === 'nullable' || (from.k === 'null' && to.k !== 'null')) return `the value may be null but ${describeTy(to)} is not nullable`;
  if (from.k === 'union') {
    for (const b of from.branches) {
      const r = fits(b, to, seen);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  const mismatch = `${describeTy(from)} does not fit ${describeTy(to)}`;
  switch (to.k) {
    case 'null':
    case 'boolean':
    case 'bytes':
      return from.k === to.k ? undefined : mismatch;
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return isNumeric(from) && NUMERIC_RANK[from.k] <= NUMERIC_RANK[to.k] ? undefined : mismatch;
    case 'string':
      return isStringLike(from) ? undefined : mismatch;
    case 'enum': {
      if (!isStringLike(from)) return mismatch;
      if (from.k === 'enum' && from.fullname === to.fullname) return undefined;
      const values = constsOf(from);
      if (values === undefined) return `${describeTy(from)} may hold values that are not symbols of ${describeTy(to)}`;
      const bad = values.filter((v) => !to.symbols.includes(v));
      return bad.length === 0 ? undefined : `'${bad[0]}' is not a symbol of ${describeTy(to)} (${to.symbols.join(', ')})`;
    }
    case 'fixed':
      return from.k === 'fixed' && from.size === to.size ? undefined : mismatch;
    case 'array':
      return from.k === 'array' ? prefix('items', fits(from.items, to.items, seen)) : mismatch;
    case 'map':
      return from.k === 'map' ? prefix('values', fits(from.values, to.values, seen)) : mismatch;
    case 'record': {
      if (from.k !== 'record') return mismatch;
      const key = `${from.fullname}->${to.fullname}`;
      if (seen.has(key)) return undefined;
      seen.add(key);
      for (const f of to.fields) {
        const w = from.byName.get(f.name);
        if (w === undefined) {
          if (!f.hasDefault) return `field '${f.name}' is missing and has no default`;
          continue;
        }
        const r = fits(w.ty, f.ty, seen);
        if (r !== undefined) return `field '${f.name}': ${r}`;
      }
      return undefined;
    }
  }
}

function prefix(what: string, r: string | undefined): string | undefined {
  return r === undefined ? undefined : `${what}: ${r}`;
}

// ---------------------------------------------------------------------------------------------
// Named types of schema files

/** Collects the named types (records, enums, fixed) defined anywhere in a schema, by fullname. */
export function collectNamedTypes(schema: unknown, ns: string, out: Map<string, AvroType>, duplicates: string[]): void {
  if (Array.isArray(schema)) {
    for (const s of schema) collectNamedTypes(s, ns, out, duplicates);
    return;
  }
  if (schema === null || typeof schema !== 'object') return;
  const s = schema as Record<string, unknown>;
  const type = s.type;
  if (typeof type === 'object') {
    collectNamedTypes(type, ns, out, duplicates);
    return;
  }
  if ((type === 'record' || type === 'error' || type === 'enum' || type === 'fixed') && typeof s.name === 'string') {
    const fullname = fullnameOf(s.name, typeof s.namespace === 'string' ? s.namespace : ns);
    if (out.has(fullname)) duplicates.push(fullname);
    else out.set(fullname, s as AvroType);
    if (Array.isArray(s.fields)) {
      for (const f of s.fields) collectNamedTypes((f as { type?: unknown }).type, namespaceOf(fullname), out, duplicates);
    }
    return;
  }
  if (type === 'array') collectNamedTypes(s.items, ns, out, duplicates);
  if (type === 'map') collectNamedTypes(s.values, ns, out, duplicates);
}

/**
 * A self-contained copy of the named type `fullname`: every named type it uses is defined inline
 * at its first use, so the schema stands alone (for avsc, the runtime and the expression compiler).
 */
export function selfContained(fullname: string, lookup: NamedLookup): AvroType | undefined {
  const raw = lookup(fullname);
  if (raw === undefined) return undefined;
  const ty = tyFromAvro(raw, lookup, namespaceOf(fullname));
  return avroFromTy(ty);
}
