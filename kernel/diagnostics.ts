// Error codes of the topology language (loader, expressions, planner) in one table, and the
// error classes that carry them. Codes are stable: tests, tools and docs may rely on them.

export const diagnosticCodes = {
  FILE_READ: 'The topology file or a schema file cannot be read.',
  YAML_SYNTAX: 'The file is not well-formed YAML (or holds several documents).',
  YAML_TAG: 'A YAML tag was used (!!js/function, !!binary, !custom, ...): topology files are plain data.',
  YAML_ALIAS: 'An anchor, alias or merge key (<<) was used: topology files are plain data, write values out.',
  YAML_KEY: 'A mapping key is not a plain string.',
  FORBIDDEN_KEY: '__proto__, constructor or prototype used as a key.',
  ENV_NOT_ALLOWED: '${NAME} names a variable that is not on the allowlist of the operator running Vigil.',
  ENV_UNSET: '${NAME} names an allowed variable that is not set and has no default (${NAME:-default}).',
  ENV_SYNTAX: 'A malformed ${...} reference.',
  PATH_NOT_ALLOWED: 'A path is absolute, escapes the topology directory or is a URL, or a path/URL is given where none is taken.',
  VERSION: 'The topology file version is not supported.',
  MISSING_FIELD: 'A required field is missing.',
  UNKNOWN_FIELD: 'A field that the component does not take.',
  INVALID_VALUE: 'A value of the wrong kind, out of range, or not one of the allowed values.',
  UNKNOWN_OPERATOR: 'An operator type that is not registered.',
  UNKNOWN_SCHEMA: 'A schema fullname that no schema file defines (or that is not a record).',
  SCHEMA_INVALID: 'An .avsc file that is not valid Avro.',
  DUPLICATE_NAME: 'Two sources, operators or sinks with the same name.',
  UNKNOWN_INPUT: '`from` names no source or operator.',
  INPUT_COUNT: 'An operator has fewer or more inputs than it takes.',
  CYCLE: 'Operators feed each other in a cycle.',
  UNUSED_SOURCE: 'A source that nothing reads.',
  TOPIC_CONFLICT: 'A topic used with schemas that cannot be reconciled (sink vs source, or two sinks).',
  SINK_SCHEMA: "A sink's schema cannot be filled from the records reaching it.",
  OPERATOR_CHECK: "An operator's own semantic check failed.",
  EXPR_SYNTAX: 'An expression that does not parse.',
  EXPR_UNKNOWN_FIELD: 'An expression or a field reference names a field the input record does not have.',
  EXPR_TYPE: 'An expression whose operand types do not fit (e.g. "abc" * 2, a possibly-null value in arithmetic).',
  EXPR_FUNCTION: 'An unknown function, or a function called with the wrong number or kind of arguments.',
  EXPR_FORBIDDEN: 'An expression path through __proto__, constructor or prototype.',
  COPARTITION: "A sub-topology's input topics have different partition counts.",
  TOPIC_NAME: 'A topic name Kafka refuses (`.`, `..`, or one colliding with another as `a.b` and `a_b` do), or an internal topic name that is too long or collides with a topic of the file.',
} as const;

export type DiagnosticCode = keyof typeof diagnosticCodes;

/** A problem located in a file; line and column are 1-based. */
export interface Diagnostic {
  file: string;
  line: number;
  column: number;
  code: DiagnosticCode;
  message: string;
}

/** Base class of Vigil's topology errors: every instance carries a stable code. */
export class VigilError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A compile-time error in an expression; `offset` is the 0-based character offset in its source. */
export class ExpressionError extends VigilError {
  override readonly code: DiagnosticCode;
  readonly offset: number;
  constructor(code: DiagnosticCode, message: string, offset: number) {
    super(code, message);
    this.code = code;
    this.offset = offset;
  }
}

/** A topology file (or plan) with one or more problems; all are collected, not only the first. */
export class TopologyError extends VigilError {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[]) {
    const sorted = [...diagnostics].sort(compareDiagnostics);
    super('TOPOLOGY_INVALID', `${sorted.length} problem${sorted.length === 1 ? '' : 's'} in topology:\n${formatDiagnostics(sorted)}`);
    this.diagnostics = sorted;
  }

  /** One `file:line:column: message` line per diagnostic. */
  format(): string {
    return formatDiagnostics(this.diagnostics);
  }
}

/** The longest message printed; values quoted in messages could be megabytes. */
const MAX_MESSAGE = 1000;

/**
 * Text safe for a terminal: control characters (escape sequences that could forge output, NUL,
 * line breaks inside a value) shown as \u escapes, and cut at `max` characters.
 */
export function printable(s: string, max = MAX_MESSAGE): string {
  const cut = s.length > max ? `${s.slice(0, max)}… (${s.length - max} more characters)` : s;
  return cut.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${printable(d.file, 300)}:${d.line}:${d.column}: ${printable(d.message)}`;
}

export function formatDiagnostics(ds: readonly Diagnostic[]): string {
  return ds.map(formatDiagnostic).join('\n');
}

function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return a.line - b.line || a.column - b.column;
}

/** Words longer than this get no "did you mean". */
const MAX_SUGGESTED = 200;

/** "did you mean 'x'?" by edit distance; undefined when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  // Edit distance costs |word| x |candidate|: a huge word gets no suggestion (nothing is close to it anyway).
  if (word.length > MAX_SUGGESTED) return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = word.toLowerCase();
  for (const c of candidates) {
    if (c.length > MAX_SUGGESTED) continue;
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(1, Math.floor(Math.max(word.length, best.length) / 3));
  return bestDistance <= limit ? best : undefined;
}

/** `; did you mean 'x'?` or '' */
export function suggestion(word: string, candidates: Iterable<string>): string {
  const s = didYouMean(word, candidates);
  return s === undefined ? '' : `; did you mean '${s}'?`;
}

function editDistance(a: string, b: string): number {
  // Optimal string alignment (Damerau-Levenshtein with adjacent transpositions).
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[(i - 1) * cols + j] + 1, d[i * cols + j - 1] + 1, d[(i - 1) * cols + j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[(i - 2) * cols + j - 2] + 1);
      d[i * cols + j] = v;
    }
  }
  return d[rows * cols - 1];
}

/** Keys that must never be read or written through plain property access. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** A field name of an Avro schema (at any depth) that is a forbidden key, if any. */
export function forbiddenFieldName(schema: unknown, depth = 0): string | undefined {
  if (depth > 200 || schema === null || typeof schema !== 'object') return undefined;
  const items = Array.isArray(schema) ? schema : Object.values(schema as Record<string, unknown>);
  if (!Array.isArray(schema)) {
    const fields = (schema as { fields?: unknown }).fields;
    if (Array.isArray(fields)) for (const f of fields) if (f !== null && typeof f === 'object' && typeof (f as { name?: unknown }).name === 'string' && FORBIDDEN_KEYS.has((f as { name: string }).name)) return (f as { name: string }).name;
  }
  for (const x of items) {
    const r = forbiddenFieldName(x, depth + 1);
    if (r !== undefined) return r;
  }
  return undefined;
}
