// Config parsing from a component's ConfigSpec (Benthos-style): one spec drives parsing and
// validation (here), the JSON Schema of the topology file and the reference docs (topology/spec-docs.ts).
//
// parseConfig never throws for bad input: it returns the parsed config (defaults applied,
// durations in ms) and a list of issues, each with a path relative to the parsed object.
import type { RecordSchema } from './schema.ts';
import { FORBIDDEN_KEYS, ExpressionError, didYouMean, suggestion } from './diagnostics.ts';
import type { DiagnosticCode } from './diagnostics.ts';
import { checkExpressionSyntax, compileExpression } from './expr.ts';
import { describeTy, isNumeric, isStringLike, nonNull, recordTy } from './avro-types.ts';
import type { Ty } from './avro-types.ts';

export type FieldKind =
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  /** "500ms", "30s", "5m", "2h", "1d" or a number of milliseconds; parsed to milliseconds. */
  | 'duration'
  /** An expression of the safe expression language, checked against the input schema. */
  | 'expression'
  /** The name of a field of the operator's input record (dotted path allowed), checked. */
  | 'field'
  | 'enum'
  | 'array'
  | 'map'
  | 'object'
  /** The fullname of a record schema known to the topology (schemas/*.avsc or the file's `schemas:`). */
  | 'schema'
  /** A relative file path that must stay inside the topology file's directory (no `..`, no URL). */
  | 'path'
  /**
   * An http(s) URL template whose host (and port) must be on the topology's `allowed_hosts`;
   * `{expression}` placeholders may appear after the host.
   */
  | 'url';

export interface FieldSpec {
  kind: FieldKind;
  description: string;
  /** Required unless a default is given or optional is true. */
  optional?: boolean;
  default?: unknown;
  examples?: unknown[];
  /** enum: the allowed values. */
  values?: readonly string[];
  /** array: the spec of each item; map: the spec of each value. */
  items?: FieldSpec;
  /** object: the nested fields. */
  fields?: Record<string, FieldSpec>;
  /** integer/number/duration bounds (inclusive); array: bounds on the number of items. */
  min?: number;
  max?: number;
  /** string: a regular expression (source) the whole value must match, e.g. '^[a-z]+$'. */
  pattern?: string;
  /**
   * string: allow values that look like a URL or a file path. Off by default: topology files only
   * take paths in `path` fields, so a stray `http://...` or `../x` elsewhere is refused.
   */
  freeText?: boolean;
  /** expression: the type the expression must produce. */
  returns?: 'boolean' | 'number' | 'string';
  /**
   * expression, field: the named input whose records they are checked against (multi-input
   * operators, e.g. a join's `left`); inherited by items of arrays, maps and objects. Default:
   * the operator's only (or first) input.
   */
  input?: string;
}

export type ConfigSpec = Record<string, FieldSpec>;

/** A problem found while checking an operator's config; path is relative to the operator's config. */
export interface ConfigIssue {
  path: (string | number)[];
  message: string;
  /** Stable diagnostic code (topology/diagnostics.ts); default INVALID_VALUE. */
  code?: string;
  /** For problems inside a string value (an expression): character offset within the string. */
  offset?: number;
  /** Point at the key of `path` rather than at its value (e.g. an unknown or badly named field). */
  at?: 'key' | 'value';
}

export interface SpecContext {
  /** Names the thing being configured in messages, e.g. "filter operator 'hot'". */
  what: string;
  /** Input record schema: `expression` and `field` values are checked against it when given. */
  schema?: RecordSchema;
  /** Multi-input operators: each input's schema by input name, for fields that name their `input`. */
  inputs?: ReadonlyMap<string, RecordSchema>;
  /** Looks up record schemas by fullname for `schema` values. */
  resolveSchema?(fullname: string): RecordSchema | undefined;
  /** All known record schema fullnames (for did-you-mean). */
  schemaNames?(): Iterable<string>;
  /** Keys handled by the caller (name, type, from): accepted and not reported as unknown. */
  reserved?: readonly string[];
  /** The topology's `allowed_hosts`: the only hosts `url` values may name. */
  allowedHosts?: readonly string[];
}

export interface ParseResult<C> {
  config: C;
  issues: ConfigIssue[];
}

type Path = (string | number)[];

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** Source of the JSON-Schema pattern of duration strings. */
export const DURATION_PATTERN = '^(\\d+(\\.\\d+)?(ms|s|m|h|d))+$';

/** The longest duration a topology may give: 100 years (event times are epoch milliseconds). */
export const MAX_DURATION_MS = 36_500 * 86_400_000;

/** "500ms", "30s", "5m", "2h", "1d", "1m30s", or a number of ms -> milliseconds; a string on error. */
export function parseDuration(v: unknown): number | { error: string } {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) return { error: `a duration in milliseconds must be a whole number >= 0, got ${v}` };
    if (v > MAX_DURATION_MS) return { error: `a duration of ${v} ms is beyond any date: at most ${MAX_DURATION_MS / 86_400_000} days` };
    return v;
  }
  if (typeof v !== 'string') return { error: `expected a duration like 500ms, 30s, 5m, 2h, 1d, got ${describeValue(v)}` };
  const s = v.trim();
  if (s === '0') return 0;
  let total = 0;
  let i = 0;
  DURATION_PART.lastIndex = 0;
  while (i < s.length) {
    DURATION_PART.lastIndex = i;
    const m = DURATION_PART.exec(s);
    if (m === null) return { error: `invalid duration '${v}': use a number and a unit (ms, s, m, h, d), e.g. 500ms, 30s, 5m, 1h30m` };
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    i = DURATION_PART.lastIndex;
  }
  if (s.length === 0) return { error: 'empty duration' };
  const ms = Math.round(total * 1000) / 1000;
  if (!Number.isFinite(ms) || ms > MAX_DURATION_MS) return { error: `duration '${String(v).slice(0, 40)}' is beyond any date: at most ${MAX_DURATION_MS / 86_400_000}d` };
  if (!Number.isInteger(ms)) return { error: `duration '${v}' is not a whole number of milliseconds` };
  return ms;
}

/** Formats milliseconds the way users write them: 1500 -> "1500ms", 30000 -> "30s". */
export function formatDuration(ms: number): string {
  for (const [unit, n] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms !== 0 && ms % n === 0) return `${ms / n}${unit}`;
  }
  return `${ms}ms`;
}

/** A URL (scheme://...) or something that looks like a file path (/x, ./x, ../x, ~/x, C:\x). */
export function looksLikePathOrUrl(s: string): boolean {
  return /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(s) || /^(\/|\.\.?[/\\]|~[/\\]|[a-zA-Z]:[\\/]|\\\\)/.test(s) || /^file:/i.test(s);
}

/**
 * Checks a URL template: http or https, a literal host (no placeholder, no user info) that one of
 * `allowed` names (`host`, `host:port`, or `*.domain` for any subdomain; a pattern without a port
 * allows the scheme's default port only). Returns an error or undefined.
 */
export function checkUrlTemplate(t: string, allowed: readonly string[]): string | undefined {
  const m = /^(https?):\/\/([^/?#]*)(.*)$/s.exec(t);
  if (m === null) return `'${t.slice(0, 80)}' is not an http(s) URL`;
  const [, scheme, authority] = m as unknown as [string, string, string];
  if (authority.includes('{')) return 'the host of a URL cannot be computed: put placeholders in the path or the query';
  if (authority.includes('@')) return 'URLs with user info (user:password@) are not allowed: pass credentials in headers from an allowed environment variable';
  let host: string;
  let port: string;
  try {
    const u = new URL(`${scheme}://${authority}/`);
    host = u.hostname.toLowerCase();
    port = u.port === '' ? (scheme === 'https' ? '443' : '80') : u.port;
  } catch {
    return `'${authority}' is not a valid host`;
  }
  const ok = allowed.some((a) => {
    const [h, p] = a.toLowerCase().split(':') as [string, string | undefined];
    const portOk = (p ?? (scheme === 'https' ? '443' : '80')) === port;
    const hostOk = h.startsWith('*.') ? host.endsWith(h.slice(1)) && host.length > h.length - 1 : host === h;
    return portOk && hostOk;
  });
  if (!ok) return `host '${host}:${port}' is not in the topology's allowed_hosts${allowed.length === 0 ? ' (there are none: add it to allowed_hosts at the top of the file)' : ` (${allowed.join(', ')})`}`;
  return undefined;
}

/** Checks a relative path's shape (the loader checks where it resolves to). Returns an error or undefined. */
export function checkRelativePath(p: string): string | undefined {
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(p) && !/^[a-zA-Z]:[\\/]/.test(p)) return `'${p}' is a URL: only relative file paths inside the topology's directory are allowed`;
  if (p.startsWith('/') || p.startsWith('\\') || /^[a-zA-Z]:[\\/]/.test(p) || p.startsWith('~')) return `'${p}' is an absolute path: use a path relative to the topology file`;
  if (p.includes('\0')) return 'the path contains a NUL character';
  if (p.split(/[\\/]/).includes('..')) return `'${p}' escapes the topology's directory ('..' is not allowed)`;
  if (p.trim() === '') return 'empty path';
  return undefined;
}

export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string '${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;
  return `${typeof v} ${String(v)}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

class SpecParser {
  readonly issues: ConfigIssue[] = [];
  constructor(private readonly cx: SpecContext) {}

  private issue(path: Path, message: string, code: DiagnosticCode = 'INVALID_VALUE', extra: Partial<ConfigIssue> = {}): undefined {
    this.issues.push({ path, message, code, ...extra });
    return undefined;
  }

  object(spec: ConfigSpec, raw: unknown, path: Path, what: string, reserved: readonly string[] = [], input?: string): Record<string, unknown> | undefined {
    if (!isPlainObject(raw)) return this.issue(path, `${what} must be a mapping of fields, got ${describeValue(raw)}`);
    const out: Record<string, unknown> = {};
    const known = Object.keys(spec);
    /** Fields an unknown key was probably meant to be: not reported missing as well. */
    const meant = new Set<string>();
    for (const key of Object.keys(raw)) {
      if (FORBIDDEN_KEYS.has(key)) {
        this.issue([...path, key], `'${key}' is not allowed as a key`, 'FORBIDDEN_KEY', { at: 'key' });
        continue;
      }
      if (reserved.includes(key)) continue;
      if (!Object.hasOwn(spec, key)) {
        const guess = didYouMean(key, [...known, ...reserved]);
        if (guess !== undefined) meant.add(guess);
        this.issue([...path, key], `unknown field '${key}' in ${what}${guess === undefined ? '' : `; did you mean '${guess}'?`}`, 'UNKNOWN_FIELD', { at: 'key' });
      }
    }
    for (const key of known) {
      const fs = spec[key];
      const v = Object.hasOwn(raw, key) ? raw[key] : undefined;
      if (v === undefined || v === null) {
        if (fs.default !== undefined) {
          const d = this.value(fs, structuredClone(fs.default), [...path, key], key, input);
          if (d !== undefined) out[key] = d;
        } else if (!fs.optional && !meant.has(key)) {
          // The path names the missing field; a loader locates it at the nearest existing ancestor.
          this.issue([...path, key], v === null ? `field '${key}' of ${what} has no value` : `missing required field '${key}' in ${what}`, 'MISSING_FIELD');
        }
        continue;
      }
      const parsed = this.value(fs, v, [...path, key], key, input);
      if (parsed !== undefined) out[key] = parsed;
    }
    return out;
  }

  value(fs: FieldSpec, v: unknown, path: Path, name: string, inherited?: string): unknown {
    const input = fs.input ?? inherited;
    const bad = (expected: string): undefined => this.issue(path, `'${name}' must be ${expected}, got ${describeValue(v)}`);
    switch (fs.kind) {
      case 'string': {
        if (typeof v !== 'string') return bad('a string');
        if (!fs.freeText && looksLikePathOrUrl(v)) {
          return this.issue(path, `'${name}' does not take file paths or URLs, got '${v}'`, 'PATH_NOT_ALLOWED');
        }
        if (fs.pattern !== undefined && !new RegExp(fs.pattern).test(v)) return this.issue(path, `'${name}' must match ${fs.pattern}, got '${v}'`);
        return v;
      }
      case 'integer':
        if (typeof v !== 'number' || !Number.isSafeInteger(v)) return bad('a whole number');
        return this.bounds(fs, v, path, name, String(v));
      case 'number':
        if (typeof v !== 'number' || !Number.isFinite(v)) return bad('a number');
        return this.bounds(fs, v, path, name, String(v));
      case 'boolean':
        if (typeof v !== 'boolean') return bad('true or false');
        return v;
      case 'duration': {
        const d = parseDuration(v);
        if (typeof d !== 'number') return this.issue(path, `'${name}': ${d.error}`);
        return this.bounds(fs, d, path, name, formatDuration(d), formatDuration);
      }
      case 'enum': {
        const values = fs.values ?? [];
        if (typeof v !== 'string' || !values.includes(v)) {
          const hint = typeof v === 'string' ? suggestion(v, values) : '';
          return this.issue(path, `'${name}' must be one of ${values.join(', ')}, got ${describeValue(v)}${hint}`);
        }
        return v;
      }
      case 'expression':
        return this.expression(fs, v, path, name, input);
      case 'field':
        return this.fieldRef(v, path, name, input);
      case 'schema': {
        if (typeof v !== 'string') return bad('a schema fullname (e.g. vigil.alerting.Alert)');
        if (this.cx.resolveSchema !== undefined && this.cx.resolveSchema(v) === undefined) {
          const hint = schemaSuggestion(v, [...(this.cx.schemaNames?.() ?? [])]);
          return this.issue(path, `unknown schema '${v}'${hint} (schemas are named by fullname, namespace included)`, 'UNKNOWN_SCHEMA');
        }
        return v;
      }
      case 'url': {
        if (typeof v !== 'string') return bad('an http(s) URL');
        const err = checkUrlTemplate(v, this.cx.allowedHosts ?? []);
        if (err !== undefined) return this.issue(path, err, 'PATH_NOT_ALLOWED');
        return v;
      }
      case 'path': {
        if (typeof v !== 'string') return bad('a relative file path');
        const err = checkRelativePath(v);
        if (err !== undefined) return this.issue(path, err, 'PATH_NOT_ALLOWED');
        return v;
      }
      case 'array': {
        const items = Array.isArray(v) ? v : [v];
        const itemSpec = fs.items ?? { kind: 'string', description: '' };
        if (fs.min !== undefined && items.length < fs.min) return this.issue(path, `'${name}' needs at least ${fs.min} item${fs.min === 1 ? '' : 's'}`);
        if (fs.max !== undefined && items.length > fs.max) return this.issue(path, `'${name}' takes at most ${fs.max} item${fs.max === 1 ? '' : 's'}`);
        const out: unknown[] = [];
        let ok = true;
        items.forEach((item, i) => {
          const p = Array.isArray(v) ? [...path, i] : path;
          if (item === null || item === undefined) {
            ok = false;
            this.issue(p, `'${name}' has an empty item`);
            return;
          }
          const x = this.value(itemSpec, item, p, `${name}[${i}]`, input);
          if (x === undefined) ok = false;
          else out.push(x);
        });
        return ok ? out : undefined;
      }
      case 'map': {
        if (!isPlainObject(v)) return bad('a mapping');
        const itemSpec = fs.items ?? { kind: 'string', description: '' };
        const out: Record<string, unknown> = {};
        let ok = true;
        for (const key of Object.keys(v)) {
          if (FORBIDDEN_KEYS.has(key)) {
            ok = false;
            this.issue([...path, key], `'${key}' is not allowed as a key`, 'FORBIDDEN_KEY', { at: 'key' });
            continue;
          }
          const item = v[key];
          if (item === null || item === undefined) {
            ok = false;
            this.issue([...path, key], `'${name}.${key}' has no value`);
            continue;
          }
          const x = this.value(itemSpec, item, [...path, key], `${name}.${key}`, input);
          if (x === undefined) ok = false;
          else out[key] = x;
        }
        if (fs.min !== undefined && Object.keys(out).length < fs.min && ok) return this.issue(path, `'${name}' needs at least ${fs.min} entr${fs.min === 1 ? 'y' : 'ies'}`);
        return ok ? out : undefined;
      }
      case 'object':
        return this.object(fs.fields ?? {}, v, path, `'${name}'`, [], input);
    }
  }

  private bounds(fs: FieldSpec, v: number, path: Path, name: string, shown: string, fmt: (n: number) => string = String): number | undefined {
    if (fs.min !== undefined && v < fs.min) return this.issue(path, `'${name}' must be at least ${fmt(fs.min)}, got ${shown}`);
    if (fs.max !== undefined && v > fs.max) return this.issue(path, `'${name}' must be at most ${fmt(fs.max)}, got ${shown}`);
    return v;
  }

  /** The schema `field` and `expression` values are checked against: the named input's, else the default. */
  private schemaFor(input: string | undefined): RecordSchema | undefined {
    if (input === undefined) return this.cx.schema;
    return this.cx.inputs?.get(input);
  }

  private expression(fs: FieldSpec, v: unknown, path: Path, name: string, input: string | undefined): string | undefined {
    let src: string;
    if (typeof v === 'string') src = v;
    else if (typeof v === 'number' || typeof v === 'boolean') src = String(v);
    else return this.issue(path, `'${name}' must be an expression (a string), got ${describeValue(v)}`);
    try {
      const schema = this.schemaFor(input);
      if (schema === undefined) {
        checkExpressionSyntax(src);
        return src;
      }
      const c = compileExpression(src, schema);
      const want = fs.returns;
      if (want !== undefined && !returnsOk(want, c.ty)) {
        const nullHint = want === 'boolean' && nonNull(c.ty).k === 'boolean' ? ' (it may be null: add ?? false)' : '';
        return this.issue(path, `'${name}' must be a ${want} expression, but '${src}' is ${describeTy(c.ty)}${nullHint}`, 'EXPR_TYPE', { offset: 0 });
      }
      return src;
    } catch (e) {
      if (e instanceof ExpressionError) return this.issue(path, `${e.message}`, e.code, { offset: e.offset });
      throw e;
    }
  }

  private fieldRef(v: unknown, path: Path, name: string, input: string | undefined): string | undefined {
    if (typeof v !== 'string' || v === '') return this.issue(path, `'${name}' must be a field name, got ${describeValue(v)}`);
    const err = checkFieldPath(v, this.schemaFor(input));
    if (err !== undefined) return this.issue(path, err.message, err.code, { offset: err.offset });
    return v;
  }
}

/** `Alert` -> 'vigil.alerting.Alert'; typos are compared within a namespace (`vigil.alerting.Alrt`). */
function schemaSuggestion(v: string, names: string[]): string {
  const bySuffix = names.filter((n) => n.endsWith(`.${v}`));
  if (bySuffix.length === 1) return `; did you mean '${bySuffix[0]}'?`;
  const i = v.lastIndexOf('.');
  if (i < 0) return suggestion(v, names);
  const ns = v.slice(0, i + 1);
  const same = names.filter((n) => n.startsWith(ns) && !n.slice(ns.length).includes('.'));
  const s = didYouMean(v.slice(i + 1), same.map((n) => n.slice(ns.length)));
  if (s !== undefined) return `; did you mean '${ns}${s}'?`;
  return same.length === 0 ? suggestion(v, names) : '';
}

function returnsOk(want: 'boolean' | 'number' | 'string', ty: Ty): boolean {
  if (want === 'boolean') return ty.k === 'boolean';
  if (want === 'number') return isNumeric(ty);
  return isStringLike(ty);
}

/** Checks a dotted field path against a record schema (records, then at most one map key). */
export function checkFieldPath(p: string, schema: RecordSchema | undefined): { message: string; code: DiagnosticCode; offset: number } | undefined {
  const parts = p.split('.');
  let offset = 0;
  for (const part of parts) {
    if (FORBIDDEN_KEYS.has(part)) return { message: `'${part}' cannot be used as a field name`, code: 'EXPR_FORBIDDEN', offset };
    if (part === '') return { message: `'${p}' is not a field path (empty part)`, code: 'INVALID_VALUE', offset };
    offset += part.length + 1;
  }
  if (schema === undefined) return undefined;
  let t: Ty = recordTy(schema);
  offset = 0;
  for (const part of parts) {
    const base = nonNull(t);
    if (base.k === 'record') {
      const f = base.byName.get(part);
      if (f === undefined) {
        const names = base.fields.map((x) => x.name);
        return { message: `unknown field '${part}'${suggestion(part, names)} (${base.fullname} has: ${names.join(', ')})`, code: 'EXPR_UNKNOWN_FIELD', offset };
      }
      t = f.ty;
    } else if (base.k === 'map') {
      t = base.values;
    } else {
      return { message: `'${p.slice(0, Math.max(0, offset - 1))}' is ${describeTy(t)}: it has no field '${part}'`, code: 'EXPR_UNKNOWN_FIELD', offset };
    }
    offset += part.length + 1;
  }
  return undefined;
}

/**
 * Parses a raw config against a spec: applies defaults, converts durations to ms, checks kinds,
 * enum values, bounds, unknown keys (with did-you-mean), and expressions/fields against the
 * input schema when `cx.schema` is given.
 */
export function parseConfig<C = Record<string, unknown>>(spec: ConfigSpec, raw: unknown, cx: SpecContext): ParseResult<C> {
  const p = new SpecParser(cx);
  const config = p.object(spec, raw ?? {}, [], cx.what, cx.reserved ?? []) ?? {};
  return { config: config as C, issues: p.issues };
}
