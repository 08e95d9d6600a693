// The expression language of topology files: a hand-written tokenizer and Pratt parser, a static
// type checker against the input record's Avro schema, and a compiler to a tree of closures that is
// built once and then evaluated per record without further allocation (beyond the values the
// expression itself builds, such as a concatenated string or a map literal).
//
// No eval, no Function, no vm. Field and map-key lookups use own-property checks (Object.hasOwn),
// and paths through __proto__, constructor or prototype are refused at compile time.
//
//   expr    := cond
//   cond    := coalesce ('?' expr ':' cond)?
//   coalesce:= or ('??' or)*
//   or      := and ('||' and)*          and := eq ('&&' eq)*
//   eq      := rel (('=='|'!=') rel)*   rel := add (('<'|'<='|'>'|'>='|'in'|'not in') add)*
//   add     := mul (('+'|'-') mul)*     mul := unary (('*'|'/'|'%') unary)*
//   unary   := ('!'|'-') unary | postfix
//   postfix := primary ('.' name | '[' expr ']')*
//   primary := number | string | true | false | null | name | name '(' args ')' | '(' expr ')'
//            | '[' items ']' | '{' (key ':' expr),* '}'
import { linearRegex } from './regex.ts';
import type { LinearRegex } from './regex.ts';
import type { AvroType, RecordSchema } from './schema.ts';
import type { ConfigIssue } from './spec.ts';
import { ExpressionError, FORBIDDEN_KEYS, suggestion } from './diagnostics.ts';
import type { DiagnosticCode } from './diagnostics.ts';
import {
  T_BOOLEAN, T_DOUBLE, T_INT, T_LONG, T_NULL, T_STRING,
  avroFromTy, constsOf, describeTy, isIntegral, isNumeric, isScalar, isStringLike, mayBeNull, nonNull, nullable, plain,
  recordTy, stripConsts, unify, widerNumeric,
} from './avro-types.ts';
import type { EnumTy, NumericTy, RecordTy, Ty } from './avro-types.ts';

/** A compiled expression: evaluate it once per record. */
export interface CompiledExpression {
  /** The source text. */
  readonly source: string;
  /** Evaluates against a record value (the decoded Avro record). Returns null, never undefined. */
  evaluate(value: Record<string, unknown>): unknown;
  /** The Avro type of the result (self-contained). */
  readonly type: AvroType;
  /** The resolved type of the result (for schema derivation and compatibility checks). */
  readonly ty: Ty;
  /** Input fields read, as dotted paths in order of first use (`tags.region`, `host`). */
  readonly fields: string[];
  /** Set when the expression is just a top-level field reference (`host`): that field's name. */
  readonly field?: string;
  /** Set when the expression is a constant: its value. */
  readonly constant?: { value: unknown };
}

type Ev = (v: Record<string, unknown>) => unknown;

const MAX_DEPTH = 64;
const MAX_LENGTH = 10_000;

/**
 * Text one evaluation may scan (regex and substring searches, case changes), in UTF-16 code
 * units. Each of those is linear, but an expression may repeat them over a large value: past the
 * budget the evaluation throws, and the record goes to the dead-letter topic (reason
 * `over-budget`) instead of holding up its partition.
 */
export const EVALUATION_BUDGET = 1 << 24;
let scanned = 0;

export class EvaluationBudgetError extends Error {
  override name = 'EvaluationBudgetError';
  /** The dead-letter reason. */
  readonly reason = 'over-budget';
  constructor() {
    super(`expression evaluation over budget: it would scan more than ${EVALUATION_BUDGET} characters of text for one record`);
  }
}

function charge(n: number): void {
  scanned += n;
  if (scanned > EVALUATION_BUDGET) throw new EvaluationBudgetError();
}
const hasOwn = Object.hasOwn;
const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Tokenizer

type TokKind = 'num' | 'str' | 'name' | 'op' | 'eof';
interface Token {
  kind: TokKind;
  text: string;
  /** num: the number; str: the unescaped string. */
  value?: number | string;
  isInt?: boolean;
  start: number;
  end: number;
}

const OPS2 = ['==', '!=', '<=', '>=', '&&', '||', '??'];
const OPS1 = '<>+-*/%!?:()[],.{}';

function fail(code: DiagnosticCode, message: string, offset: number): never {
  throw new ExpressionError(code, message, offset);
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      i++;
      continue;
    }
    const start = i;
    if (c >= 48 && c <= 57) {
      while (i < n && isDigit(src.charCodeAt(i))) i++;
      let isInt = true;
      if (src[i] === '.' && isDigit(src.charCodeAt(i + 1))) {
        isInt = false;
        i++;
        while (i < n && isDigit(src.charCodeAt(i))) i++;
      }
      if (src[i] === 'e' || src[i] === 'E') {
        let j = i + 1;
        if (src[j] === '+' || src[j] === '-') j++;
        if (isDigit(src.charCodeAt(j))) {
          isInt = false;
          i = j;
          while (i < n && isDigit(src.charCodeAt(i))) i++;
        }
      }
      if (i < n && isNameChar(src.charCodeAt(i))) fail('EXPR_SYNTAX', `malformed number '${src.slice(start, i + 1)}'`, start);
      const text = src.slice(start, i);
      const value = Number(text);
      if (isInt && !Number.isSafeInteger(value)) fail('EXPR_SYNTAX', `integer ${text} is too large (max ${Number.MAX_SAFE_INTEGER})`, start);
      if (!Number.isFinite(value)) fail('EXPR_SYNTAX', `number ${text.length > 40 ? `${text.slice(0, 40)}…` : text} is too large for a double`, start);
      out.push({ kind: 'num', text, value, isInt, start, end: i });
      continue;
    }
    if (isNameStart(c)) {
      while (i < n && isNameChar(src.charCodeAt(i))) i++;
      out.push({ kind: 'name', text: src.slice(start, i), start, end: i });
      continue;
    }
    if (c === 34 || c === 39) {
      const quote = src[i];
      i++;
      let value = '';
      for (;;) {
        if (i >= n) fail('EXPR_SYNTAX', `unterminated string: missing closing ${quote}`, start);
        const ch = src[i];
        if (ch === quote) {
          i++;
          break;
        }
        if (ch === '\\') {
          const e = src[i + 1];
          const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", '0': '\0' };
          if (e !== undefined && hasOwn(simple, e)) {
            value += simple[e];
            i += 2;
            continue;
          }
          if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(src.slice(i + 2, i + 6))) {
            value += String.fromCharCode(parseInt(src.slice(i + 2, i + 6), 16));
            i += 6;
            continue;
          }
          fail('EXPR_SYNTAX', `unknown escape '\\${e ?? ''}' in string (use \\n \\t \\r \\\\ \\" \\' \\uXXXX)`, i);
        }
        value += ch;
        i++;
      }
      out.push({ kind: 'str', text: src.slice(start, i), value, start, end: i });
      continue;
    }
    if (OPS2.includes(src.slice(i, i + 2))) {
      i += 2;
    } else if (OPS1.includes(src[i])) {
      i += 1;
    } else if (src[i] === '=') {
      fail('EXPR_SYNTAX', "unexpected '=': use == to compare", i);
    } else if (src[i] === '&' || src[i] === '|') {
      fail('EXPR_SYNTAX', `unexpected '${src[i]}': use ${src[i]}${src[i]} for logical ${src[i] === '&' ? 'and' : 'or'}`, i);
    } else {
      fail('EXPR_SYNTAX', `unexpected character '${src[i]}'`, i);
    }
    out.push({ kind: 'op', text: src.slice(start, i), start, end: i });
  }
  out.push({ kind: 'eof', text: '', start: n, end: n });
  return out;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isNameStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}
function isNameChar(c: number): boolean {
  return isNameStart(c) || isDigit(c);
}

// ---------------------------------------------------------------------------------------------
// Parser

/** Every node spans [start, end) of the source. */
type Node = { start: number; end: number } & (
  | { t: 'lit'; value: string | number | boolean | null; isInt?: boolean }
  | { t: 'field'; name: string }
  | { t: 'member'; obj: Node; key: string; keyStart: number }
  | { t: 'index'; obj: Node; index: Node }
  | { t: 'unary'; op: '!' | '-'; arg: Node }
  | { t: 'binary'; op: string; opStart: number; left: Node; right: Node }
  | { t: 'cond'; test: Node; then: Node; else: Node }
  | { t: 'in'; negate: boolean; opStart: number; left: Node; right: Node }
  | { t: 'call'; name: string; args: Node[] }
  | { t: 'list'; items: Node[] }
  | { t: 'object'; entries: { key: string; keyStart: number; value: Node }[] }
);

const BINARY_BP: Record<string, number> = {
  '??': 2, '||': 3, '&&': 4, '==': 5, '!=': 5, '<': 6, '<=': 6, '>': 6, '>=': 6, '+': 7, '-': 7, '*': 8, '/': 8, '%': 8,
};
const BP_IN = 6;
const BP_COND = 1;
const BP_UNARY = 9;

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly toks: Token[]) {}

  parse(): Node {
    if (this.peek().kind === 'eof') fail('EXPR_SYNTAX', 'empty expression', 0);
    const node = this.expr(0);
    const t = this.peek();
    if (t.kind !== 'eof') fail('EXPR_SYNTAX', `unexpected '${t.text}' after the end of the expression`, t.start);
    return node;
  }

  private peek(k = 0): Token {
    return this.toks[Math.min(this.i + k, this.toks.length - 1)];
  }
  private next(): Token {
    return this.toks[this.i++];
  }
  /** End offset of the last consumed token. */
  private get end(): number {
    return this.toks[this.i - 1].end;
  }
  private isOp(text: string, k = 0): boolean {
    const t = this.peek(k);
    return t.kind === 'op' && t.text === text;
  }
  private expect(text: string, what: string): Token {
    const t = this.peek();
    if (t.kind !== 'op' || t.text !== text) {
      fail('EXPR_SYNTAX', `expected '${text}' ${what}, found ${t.kind === 'eof' ? 'the end of the expression' : `'${t.text}'`}`, t.start);
    }
    return this.next();
  }

  private expr(minBp: number): Node {
    if (++this.depth > MAX_DEPTH) fail('EXPR_SYNTAX', `expression nested too deeply (more than ${MAX_DEPTH} levels)`, this.peek().start);
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      if (t.kind === 'op' && t.text === '?') {
        if (BP_COND < minBp) break;
        this.next();
        const then = this.expr(0);
        this.expect(':', "to separate the branches of '? :'");
        const otherwise = this.expr(BP_COND);
        left = { t: 'cond', start: left.start, end: otherwise.end, test: left, then, else: otherwise };
        continue;
      }
      if (t.kind === 'name' && (t.text === 'in' || (t.text === 'not' && this.peek(1).kind === 'name' && this.peek(1).text === 'in'))) {
        if (BP_IN < minBp) break;
        const negate = t.text === 'not';
        this.next();
        if (negate) this.next();
        const right = this.expr(BP_IN + 1);
        left = { t: 'in', start: left.start, end: right.end, negate, opStart: t.start, left, right };
        continue;
      }
      if (t.kind !== 'op') {
        if (t.kind === 'eof') break;
        const hint = t.text === 'and' ? ' (use &&)' : t.text === 'or' ? ' (use ||)' : '';
        fail('EXPR_SYNTAX', `unexpected '${t.text}': expected an operator${hint}`, t.start);
      }
      const bp = BINARY_BP[t.text];
      if (bp === undefined || bp < minBp) break;
      this.next();
      const right = this.expr(bp + 1);
      left = { t: 'binary', start: left.start, end: right.end, op: t.text, opStart: t.start, left, right };
    }
    this.depth--;
    return left;
  }

  private unary(): Node {
    const t = this.peek();
    if (t.kind === 'op' && (t.text === '!' || t.text === '-')) {
      this.next();
      if (++this.depth > MAX_DEPTH) fail('EXPR_SYNTAX', `expression nested too deeply (more than ${MAX_DEPTH} levels)`, t.start);
      const arg = this.expr(BP_UNARY);
      this.depth--;
      return { t: 'unary', start: t.start, end: arg.end, op: t.text, arg };
    }
    if (t.kind === 'name' && t.text === 'not') fail('EXPR_SYNTAX', "unexpected 'not': use ! to negate", t.start);
    return this.postfix(this.primary());
  }

  private postfix(node: Node): Node {
    for (;;) {
      if (this.isOp('.')) {
        this.next();
        const k = this.next();
        if (k.kind !== 'name') fail('EXPR_SYNTAX', `expected a field name after '.', found ${k.kind === 'eof' ? 'the end of the expression' : `'${k.text}'`}`, k.start);
        if (this.isOp('(')) fail('EXPR_SYNTAX', `methods are not supported: call ${k.text}(...) as a function`, k.start);
        node = { t: 'member', start: node.start, end: k.end, obj: node, key: k.text, keyStart: k.start };
      } else if (this.isOp('[')) {
        this.next();
        const index = this.expr(0);
        this.expect(']', 'to close the index');
        node =
          index.t === 'lit' && typeof index.value === 'string'
            ? { t: 'member', start: node.start, end: this.end, obj: node, key: index.value, keyStart: index.start }
            : { t: 'index', start: node.start, end: this.end, obj: node, index };
      } else {
        return node;
      }
    }
  }

  private primary(): Node {
    const t = this.next();
    switch (t.kind) {
      case 'num':
        return { t: 'lit', start: t.start, end: t.end, value: t.value as number, isInt: t.isInt };
      case 'str':
        return { t: 'lit', start: t.start, end: t.end, value: t.value as string };
      case 'name': {
        if (t.text === 'true' || t.text === 'false') return { t: 'lit', start: t.start, end: t.end, value: t.text === 'true' };
        if (t.text === 'null') return { t: 'lit', start: t.start, end: t.end, value: null };
        if (this.isOp('(')) {
          this.next();
          const args = this.list(')', 'to close the argument list');
          return { t: 'call', start: t.start, end: this.end, name: t.text, args };
        }
        return { t: 'field', start: t.start, end: t.end, name: t.text };
      }
      case 'op':
        if (t.text === '(') {
          const e = this.expr(0);
          this.expect(')', 'to close the parenthesis');
          return { ...e, start: t.start, end: this.end };
        }
        if (t.text === '[') {
          const items = this.list(']', 'to close the list');
          return { t: 'list', start: t.start, end: this.end, items };
        }
        if (t.text === '{') return this.object(t.start);
        return fail('EXPR_SYNTAX', `unexpected '${t.text}'`, t.start);
      default:
        return fail('EXPR_SYNTAX', 'unexpected end of the expression', t.start);
    }
  }

  private list(close: string, what: string): Node[] {
    const items: Node[] = [];
    if (this.isOp(close)) {
      this.next();
      return items;
    }
    for (;;) {
      items.push(this.expr(0));
      if (this.isOp(',')) {
        this.next();
        if (this.isOp(close)) break;
        continue;
      }
      break;
    }
    this.expect(close, what);
    return items;
  }

  private object(start: number): Node {
    const entries: { key: string; keyStart: number; value: Node }[] = [];
    while (!this.isOp('}')) {
      const k = this.next();
      if (k.kind !== 'str' && k.kind !== 'name') fail('EXPR_SYNTAX', `expected a key (a name or a string) in the map literal, found '${k.text}'`, k.start);
      const key = k.kind === 'str' ? (k.value as string) : k.text;
      this.expect(':', 'after the key in the map literal');
      entries.push({ key, keyStart: k.start, value: this.expr(0) });
      if (!this.isOp(',')) break;
      this.next();
    }
    this.expect('}', 'to close the map literal');
    return { t: 'object', start, end: this.end, entries };
  }
}

// ---------------------------------------------------------------------------------------------
// Type checking and compilation to closures

/** A compiled sub-expression. */
interface C {
  ty: Ty;
  ev: Ev;
  start: number;
  isConst: boolean;
  value?: unknown;
  /** Top-level field name when the node is a bare field reference. */
  field?: string;
  /** Dotted path when the node is a (nested) field / map-key reference. */
  path?: string;
}

interface Ctx {
  rec: RecordTy;
  /** Paths read, with the number of uses not superseded by a longer path (tags -> tags.region). */
  paths: Map<string, number>;
}

function constant(ty: Ty, value: unknown, start: number): C {
  const v = value === undefined ? null : value;
  if (v !== null && typeof v === 'object') deepFreeze(v);
  return { ty, ev: () => v, start, isConst: true, value: v };
}

function deepFreeze(o: object): void {
  Object.freeze(o);
  for (const v of Object.values(o)) if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) deepFreeze(v);
}

/** Folds `ev` to a constant when all `parts` are constants. */
function fold(ty: Ty, ev: Ev, start: number, parts: readonly C[]): C {
  if (parts.every((p) => p.isConst)) return constant(ty, ev(EMPTY), start);
  return { ty, ev, start, isConst: false };
}

function literalTy(value: unknown, isInt: boolean | undefined): Ty {
  if (value === null) return T_NULL;
  if (typeof value === 'boolean') return T_BOOLEAN;
  if (typeof value === 'string') return { k: 'string', consts: [value] };
  const n = value as number;
  if (isInt) return n >= -2147483648 && n <= 2147483647 ? T_INT : T_LONG;
  return T_DOUBLE;
}

function show(node: Node, src: string): string {
  return src.slice(node.start, node.end).trim();
}

function nullHint(c: C, what: string, src: string, node: Node): never {
  const text = show(node, src);
  const inner = nonNull(c.ty);
  const dflt = isNumeric(inner) ? '0' : isStringLike(inner) ? '""' : inner.k === 'boolean' ? 'false' : undefined;
  const hint = dflt === undefined ? '' : `; give a default with ??, e.g. (${text} ?? ${dflt})`;
  return fail('EXPR_TYPE', `${what}: '${text}' may be null (${describeTy(c.ty)})${hint}`, c.start);
}

class Compiler {
  constructor(private readonly src: string, private readonly ctx: Ctx) {}

  compile(node: Node): C {
    switch (node.t) {
      case 'lit':
        return constant(literalTy(node.value, node.isInt), node.value, node.start);
      case 'field':
        return this.field(node);
      case 'member':
        return this.member(node);
      case 'index':
        return this.index(node);
      case 'unary':
        return this.unary(node);
      case 'binary':
        return this.binary(node);
      case 'cond':
        return this.cond(node);
      case 'in':
        return this.in(node);
      case 'call':
        return this.call(node);
      case 'list':
        return this.list(node);
      case 'object':
        return this.object(node);
    }
  }

  private note(path: string, delta = 1): void {
    this.ctx.paths.set(path, (this.ctx.paths.get(path) ?? 0) + delta);
  }

  private field(node: Extract<Node, { t: 'field' }>): C {
    const name = node.name;
    if (FORBIDDEN_KEYS.has(name)) fail('EXPR_FORBIDDEN', `'${name}' cannot be used as a field name`, node.start);
    const f = this.ctx.rec.byName.get(name);
    if (f === undefined) {
      const names = this.ctx.rec.fields.map((x) => x.name);
      const hint = name === 'and' ? ' (use &&)' : name === 'or' ? ' (use ||)' : name === 'not' ? ' (use !)' : '';
      fail(
        'EXPR_UNKNOWN_FIELD',
        `unknown field '${name}'${hint}${suggestion(name, names)} (${this.ctx.rec.fullname} has: ${names.join(', ')})`,
        node.start,
      );
    }
    this.note(name);
    const ev: Ev = (v) => (hasOwn(v, name) ? (v[name] ?? null) : null);
    return { ty: f.ty, ev, start: node.start, isConst: false, field: name, path: name };
  }

  private member(node: Extract<Node, { t: 'member' }>): C {
    const obj = this.compile(node.obj);
    const key = node.key;
    if (FORBIDDEN_KEYS.has(key)) fail('EXPR_FORBIDDEN', `'${key}' cannot be used as a field name or map key`, node.keyStart);
    const base = nonNull(obj.ty);
    const optional = mayBeNull(obj.ty);
    let ty: Ty;
    if (base.k === 'record') {
      const f = base.byName.get(key);
      if (f === undefined) {
        const names = base.fields.map((x) => x.name);
        fail('EXPR_UNKNOWN_FIELD', `unknown field '${key}' of ${show(node.obj, this.src)}${suggestion(key, names)} (${base.fullname} has: ${names.join(', ')})`, node.keyStart);
      }
      ty = optional ? nullable(f.ty) : f.ty;
    } else if (base.k === 'map') {
      ty = nullable(base.values);
    } else {
      return fail('EXPR_TYPE', `cannot read '${key}' of ${show(node.obj, this.src)}: it is ${describeTy(obj.ty)}, not a record or map`, node.keyStart);
    }
    const path = obj.path === undefined ? undefined : `${obj.path}.${key}`;
    if (path !== undefined) {
      this.note(obj.path!, -1);
      this.note(path);
    }
    const o = obj.ev;
    const ev: Ev = (v) => {
      const x = o(v) as Record<string, unknown> | null;
      return x !== null && typeof x === 'object' && hasOwn(x, key) ? (x[key] ?? null) : null;
    };
    return { ...fold(ty, ev, node.start, [obj]), path };
  }

  private index(node: Extract<Node, { t: 'index' }>): C {
    const obj = this.compile(node.obj);
    const idx = this.compile(node.index);
    const base = nonNull(obj.ty);
    const o = obj.ev;
    const k = idx.ev;
    if (base.k === 'map') {
      if (!isStringLike(nonNull(idx.ty))) fail('EXPR_TYPE', `a map key must be a string, not ${describeTy(idx.ty)}`, idx.start);
      if (idx.isConst && typeof idx.value === 'string' && FORBIDDEN_KEYS.has(idx.value)) fail('EXPR_FORBIDDEN', `'${idx.value}' cannot be used as a map key`, idx.start);
      const ev: Ev = (v) => {
        const x = o(v) as Record<string, unknown> | null;
        const key = k(v);
        return x !== null && typeof x === 'object' && typeof key === 'string' && hasOwn(x, key) ? (x[key] ?? null) : null;
      };
      return fold(nullable(base.values), ev, node.start, [obj, idx]);
    }
    if (base.k === 'array') {
      if (!isIntegral(nonNull(idx.ty))) fail('EXPR_TYPE', `an array index must be an int or long, not ${describeTy(idx.ty)}`, idx.start);
      const ev: Ev = (v) => {
        const a = o(v);
        const i = k(v) as number;
        return Array.isArray(a) && i >= 0 && i < a.length ? (a[i] ?? null) : null;
      };
      return fold(nullable(base.items), ev, node.start, [obj, idx]);
    }
    if (base.k === 'record') fail('EXPR_TYPE', `index a record with a literal field name, e.g. ${show(node.obj, this.src)}["field"]`, idx.start);
    return fail('EXPR_TYPE', `cannot index ${show(node.obj, this.src)}: it is ${describeTy(obj.ty)}, not a map or array`, idx.start);
  }

  private unary(node: Extract<Node, { t: 'unary' }>): C {
    const a = this.compile(node.arg);
    const f = a.ev;
    if (node.op === '!') {
      this.needBoolean(a, node.arg, "operator '!'");
      return fold(T_BOOLEAN, (v) => !f(v), node.start, [a]);
    }
    if (mayBeNull(a.ty) && isNumeric(nonNull(a.ty))) nullHint(a, "operator '-'", this.src, node.arg);
    if (!isNumeric(a.ty)) fail('EXPR_TYPE', `operator '-' needs a number, but '${show(node.arg, this.src)}' is ${describeTy(a.ty)}`, a.start);
    return fold(plain(a.ty), (v) => -(f(v) as number), node.start, [a]);
  }

  private needBoolean(c: C, node: Node, what: string): void {
    if (c.ty.k === 'boolean') return;
    if (c.ty.k === 'nullable' && c.ty.inner.k === 'boolean') nullHint(c, what, this.src, node);
    fail('EXPR_TYPE', `${what} needs a boolean, but '${show(node, this.src)}' is ${describeTy(c.ty)}`, c.start);
  }

  private binary(node: Extract<Node, { t: 'binary' }>): C {
    const op = node.op;
    const l = this.compile(node.left);
    const r = this.compile(node.right);
    const lf = l.ev;
    const rf = r.ev;
    switch (op) {
      case '&&':
      case '||': {
        this.needBoolean(l, node.left, `operator '${op}'`);
        this.needBoolean(r, node.right, `operator '${op}'`);
        const ev: Ev = op === '&&' ? (v) => (lf(v) as boolean) && (rf(v) as boolean) : (v) => (lf(v) as boolean) || (rf(v) as boolean);
        return fold(T_BOOLEAN, ev, node.start, [l, r]);
      }
      case '??': {
        const ty = unify(nonNull(l.ty), r.ty);
        if (ty === undefined) fail('EXPR_TYPE', `the two sides of '??' have different types: ${describeTy(nonNull(l.ty))} and ${describeTy(r.ty)}`, node.opStart);
        const ev: Ev = (v) => {
          const x = lf(v);
          return x === null || x === undefined ? rf(v) : x;
        };
        if (l.isConst) return l.value === null ? { ...r, ty } : { ...l, ty };
        return { ty, ev, start: node.start, isConst: false };
      }
      case '==':
      case '!=':
        return this.equality(node, l, r);
      case '<':
      case '<=':
      case '>':
      case '>=':
        return this.ordering(node, l, r);
      case '+':
        return this.plus(node, l, r);
      default:
        return this.arithmetic(node, l, r);
    }
  }

  private checkNonNullOperands(node: Extract<Node, { t: 'binary' }>, l: C, r: C, what: string): void {
    if (mayBeNull(l.ty) && l.ty.k !== 'null') nullHint(l, what, this.src, node.left);
    if (mayBeNull(r.ty) && r.ty.k !== 'null') nullHint(r, what, this.src, node.right);
  }

  private arithmetic(node: Extract<Node, { t: 'binary' }>, l: C, r: C): C {
    const op = node.op;
    const what = `operator '${op}' needs numbers`;
    for (const [c, n] of [[l, node.left], [r, node.right]] as const) {
      if (!isNumeric(nonNull(c.ty))) fail('EXPR_TYPE', `${what}, but '${show(n, this.src)}' is ${describeTy(c.ty)}`, c.start);
    }
    this.checkNonNullOperands(node, l, r, `operator '${op}'`);
    // A constant zero divisor gives every record Infinity or NaN, which no numeric output field
    // takes (every record would be dead-lettered): refused where it is written.
    if ((op === '/' || op === '%') && r.isConst && r.value === 0) fail('EXPR_TYPE', `division by the constant 0 in '${show(node, this.src)}': every record would get ${op === '/' ? 'Infinity or NaN' : 'NaN'}`, r.start);
    const lt = l.ty as NumericTy;
    const rt = r.ty as NumericTy;
    const ty: Ty = op === '/' ? T_DOUBLE : integralResult(lt, rt);
    const lf = l.ev;
    const rf = r.ev;
    let ev: Ev;
    if (r.isConst) {
      const c = r.value as number;
      ev = op === '-' ? (v) => (lf(v) as number) - c : op === '*' ? (v) => (lf(v) as number) * c : op === '/' ? (v) => (lf(v) as number) / c : (v) => (lf(v) as number) % c;
    } else {
      ev =
        op === '-'
          ? (v) => (lf(v) as number) - (rf(v) as number)
          : op === '*'
            ? (v) => (lf(v) as number) * (rf(v) as number)
            : op === '/'
              ? (v) => (lf(v) as number) / (rf(v) as number)
              : (v) => (lf(v) as number) % (rf(v) as number);
    }
    return fold(ty, ev, node.start, [l, r]);
  }

  private plus(node: Extract<Node, { t: 'binary' }>, l: C, r: C): C {
    const lt = l.ty;
    const rt = r.ty;
    const strings = isStringLike(lt) || isStringLike(rt);
    if (strings) {
      for (const [c, n] of [[l, node.left], [r, node.right]] as const) {
        if (!isScalar(nonNull(c.ty))) fail('EXPR_TYPE', `cannot concatenate '${show(n, this.src)}' (${describeTy(c.ty)}) to a string`, c.start);
      }
      this.checkNonNullOperands(node, l, r, "operator '+' (string concatenation)");
    } else {
      for (const [c, n] of [[l, node.left], [r, node.right]] as const) {
        if (!isNumeric(nonNull(c.ty))) fail('EXPR_TYPE', `operator '+' needs numbers or a string, but '${show(n, this.src)}' is ${describeTy(c.ty)}`, c.start);
      }
      this.checkNonNullOperands(node, l, r, "operator '+'");
    }
    const ty: Ty = strings ? T_STRING : integralResult(lt as NumericTy, rt as NumericTy);
    const lf = l.ev;
    const rf = r.ev;
    let ev: Ev;
    // With the operand types checked, JS `+` is numeric addition or string concatenation.
    if (r.isConst) {
      const c = r.value as string | number;
      ev = (v) => (lf(v) as string) + c;
    } else if (l.isConst) {
      const c = l.value as string | number;
      ev = (v) => c + (rf(v) as string);
    } else {
      ev = (v) => (lf(v) as string) + (rf(v) as string);
    }
    return fold(ty, ev, node.start, [l, r]);
  }

  private equality(node: Extract<Node, { t: 'binary' }>, l: C, r: C): C {
    const lt = nonNull(l.ty);
    const rt = nonNull(r.ty);
    const comparable =
      l.ty.k === 'null' || r.ty.k === 'null' || (isNumeric(lt) && isNumeric(rt)) || (isStringLike(lt) && isStringLike(rt)) || (lt.k === 'boolean' && rt.k === 'boolean');
    if (!comparable) {
      const bad = isScalar(lt) ? r : l;
      fail(
        'EXPR_TYPE',
        isScalar(lt) && isScalar(rt)
          ? `comparing ${describeTy(l.ty)} with ${describeTy(r.ty)} is always ${node.op === '==' ? 'false' : 'true'}`
          : `operator '${node.op}' compares numbers, strings and booleans, but '${show(bad === l ? node.left : node.right, this.src)}' is ${describeTy(bad.ty)}`,
        node.opStart,
      );
    }
    this.checkEnumConsts(l, r);
    this.checkEnumConsts(r, l);
    const lf = l.ev;
    const rf = r.ev;
    const eq = node.op === '==';
    let ev: Ev;
    if (r.isConst) {
      const c = r.value;
      ev = eq ? (v) => lf(v) === c : (v) => lf(v) !== c;
    } else if (l.isConst) {
      const c = l.value;
      ev = eq ? (v) => c === rf(v) : (v) => c !== rf(v);
    } else {
      ev = eq ? (v) => lf(v) === rf(v) : (v) => lf(v) !== rf(v);
    }
    return fold(T_BOOLEAN, ev, node.start, [l, r]);
  }

  /** `level == "EROR"` can never be true: refuse constants that are not symbols of the enum. */
  private checkEnumConsts(e: C, other: C): void {
    const et = nonNull(e.ty);
    if (et.k !== 'enum') return;
    const consts = constsOf(nonNull(other.ty));
    if (other.ty.k === 'enum' || consts === undefined) return;
    for (const s of consts) {
      if (!et.symbols.includes(s)) {
        fail('EXPR_TYPE', `'${s}' is not a symbol of ${describeTy(et)} (${et.symbols.join(', ')})${suggestion(s, et.symbols)}`, other.start);
      }
    }
  }

  private ordering(node: Extract<Node, { t: 'binary' }>, l: C, r: C): C {
    const op = node.op;
    const lt = nonNull(l.ty);
    const rt = nonNull(r.ty);
    const nums = isNumeric(lt) && isNumeric(rt);
    const strs = lt.k === 'string' && rt.k === 'string';
    if (!nums && !strs) {
      if (lt.k === 'enum' || rt.k === 'enum') {
        fail('EXPR_TYPE', `enums have no order in expressions; list the symbols you want, e.g. ${show(lt.k === 'enum' ? node.left : node.right, this.src)} in ["ERROR", "FATAL"]`, node.opStart);
      }
      fail('EXPR_TYPE', `operator '${op}' compares two numbers or two strings, not ${describeTy(l.ty)} and ${describeTy(r.ty)}`, node.opStart);
    }
    this.checkNonNullOperands(node, l, r, `operator '${op}'`);
    const lf = l.ev;
    const rf = r.ev;
    let ev: Ev;
    if (r.isConst) {
      const c = r.value as number;
      ev = op === '<' ? (v) => (lf(v) as number) < c : op === '<=' ? (v) => (lf(v) as number) <= c : op === '>' ? (v) => (lf(v) as number) > c : (v) => (lf(v) as number) >= c;
    } else if (l.isConst) {
      const c = l.value as number;
      ev = op === '<' ? (v) => c < (rf(v) as number) : op === '<=' ? (v) => c <= (rf(v) as number) : op === '>' ? (v) => c > (rf(v) as number) : (v) => c >= (rf(v) as number);
    } else {
      ev =
        op === '<'
          ? (v) => (lf(v) as number) < (rf(v) as number)
          : op === '<='
            ? (v) => (lf(v) as number) <= (rf(v) as number)
            : op === '>'
              ? (v) => (lf(v) as number) > (rf(v) as number)
              : (v) => (lf(v) as number) >= (rf(v) as number);
    }
    return fold(T_BOOLEAN, ev, node.start, [l, r]);
  }

  private cond(node: Extract<Node, { t: 'cond' }>): C {
    const test = this.compile(node.test);
    this.needBoolean(test, node.test, "the condition of '? :'");
    const a = this.compile(node.then);
    const b = this.compile(node.else);
    const ty = unify(a.ty, b.ty);
    if (ty === undefined) fail('EXPR_TYPE', `the branches of '? :' have different types: ${describeTy(a.ty)} and ${describeTy(b.ty)}`, b.start);
    if (test.isConst) return test.value === true ? { ...a, ty } : { ...b, ty };
    const t = test.ev;
    const af = a.ev;
    const bf = b.ev;
    return fold(ty, (v) => (t(v) === true ? af(v) : bf(v)), node.start, [test, a, b]);
  }

  private in(node: Extract<Node, { t: 'in' }>): C {
    const l = this.compile(node.left);
    const neg = node.negate;
    const lf = l.ev;
    const lt = nonNull(l.ty);
    const opName = neg ? "'not in'" : "'in'";
    if (node.right.t === 'list') {
      const items = node.right.items.map((n) => this.compile(n));
      for (const it of items) {
        const it2 = nonNull(it.ty);
        const ok = it.ty.k === 'null' || (isNumeric(lt) && isNumeric(it2)) || (isStringLike(lt) && isStringLike(it2)) || (lt.k === 'boolean' && it2.k === 'boolean');
        if (!ok) fail('EXPR_TYPE', `${opName}: the list item is ${describeTy(it.ty)} but the value is ${describeTy(l.ty)}`, it.start);
        this.checkEnumConsts(l, it);
      }
      if (items.every((it) => it.isConst)) {
        const set = new Set(items.map((it) => it.value));
        const ev: Ev = neg ? (v) => !set.has(lf(v)) : (v) => set.has(lf(v));
        return fold(T_BOOLEAN, ev, node.start, [l]);
      }
      const fs = items.map((it) => it.ev);
      const n = fs.length;
      const ev: Ev = (v) => {
        const x = lf(v);
        for (let i = 0; i < n; i++) if (fs[i](v) === x) return !neg;
        return neg;
      };
      return fold(T_BOOLEAN, ev, node.start, [l, ...items]);
    }
    const r = this.compile(node.right);
    const rt = r.ty;
    const rf = r.ev;
    if (mayBeNull(rt)) nullHint(r, opName, this.src, node.right);
    if (rt.k === 'array') {
      const it = nonNull(rt.items);
      const ok = (isNumeric(lt) && isNumeric(it)) || (isStringLike(lt) && isStringLike(it)) || (lt.k === 'boolean' && it.k === 'boolean');
      if (!ok) fail('EXPR_TYPE', `${opName}: the array holds ${describeTy(rt.items)} but the value is ${describeTy(l.ty)}`, node.opStart);
      const ev: Ev = (v) => {
        const a = rf(v) as unknown[];
        const x = lf(v);
        for (let i = 0; i < a.length; i++) if (a[i] === x) return !neg;
        return neg;
      };
      return fold(T_BOOLEAN, ev, node.start, [l, r]);
    }
    if (rt.k === 'map') {
      if (!isStringLike(lt)) fail('EXPR_TYPE', `${opName} a map tests for a key, which must be a string, not ${describeTy(l.ty)}`, l.start);
      const ev: Ev = (v) => {
        const m = rf(v) as Record<string, unknown>;
        const k = lf(v);
        return (typeof k === 'string' && hasOwn(m, k)) !== neg;
      };
      return fold(T_BOOLEAN, ev, node.start, [l, r]);
    }
    const hint = isStringLike(rt) ? `; for substrings use contains(${show(node.right, this.src)}, ...)` : '';
    return fail('EXPR_TYPE', `${opName} needs a list [..], an array or a map on its right, not ${describeTy(rt)}${hint}`, r.start);
  }

  private list(node: Extract<Node, { t: 'list' }>): C {
    const items = node.items.map((n) => this.compile(n));
    let ty: Ty | undefined = items.length === 0 ? T_STRING : items[0].ty;
    for (let i = 1; i < items.length; i++) {
      const u: Ty | undefined = unify(ty!, items[i].ty);
      if (u === undefined) fail('EXPR_TYPE', `list items have different types: ${describeTy(ty!)} and ${describeTy(items[i].ty)}`, items[i].start);
      ty = u;
    }
    const fs = items.map((it) => it.ev);
    const n = fs.length;
    const ev: Ev = (v) => {
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) out[i] = fs[i](v);
      return out;
    };
    return fold({ k: 'array', items: stripConsts(ty!) }, ev, node.start, items);
  }

  private object(node: Extract<Node, { t: 'object' }>): C {
    const seen = new Set<string>();
    const keys: string[] = [];
    const values: C[] = [];
    let ty: Ty | undefined;
    for (const e of node.entries) {
      if (FORBIDDEN_KEYS.has(e.key)) fail('EXPR_FORBIDDEN', `'${e.key}' cannot be used as a map key`, e.keyStart);
      if (seen.has(e.key)) fail('EXPR_SYNTAX', `duplicate key '${e.key}' in the map literal`, e.keyStart);
      seen.add(e.key);
      const c = this.compile(e.value);
      const u: Ty | undefined = ty === undefined ? c.ty : unify(ty, c.ty);
      if (u === undefined) fail('EXPR_TYPE', `map values have different types: ${describeTy(ty!)} and ${describeTy(c.ty)}`, c.start);
      ty = u;
      keys.push(e.key);
      values.push(c);
    }
    const fs = values.map((c) => c.ev);
    const n = fs.length;
    const ev: Ev = (v) => {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) out[keys[i]] = fs[i](v);
      return out;
    };
    return fold({ k: 'map', values: stripConsts(ty ?? T_STRING) }, ev, node.start, values);
  }

  private call(node: Extract<Node, { t: 'call' }>): C {
    const fn = hasOwn(FUNCTIONS, node.name) ? FUNCTIONS[node.name] : undefined;
    if (fn === undefined) {
      const isField = this.ctx.rec.byName.has(node.name);
      fail(
        'EXPR_FUNCTION',
        isField
          ? `'${node.name}' is a field, not a function`
          : `unknown function '${node.name}'${suggestion(node.name, Object.keys(FUNCTIONS))} (functions: ${Object.keys(FUNCTIONS).join(', ')})`,
        node.start,
      );
    }
    const n = node.args.length;
    if (n < fn.min || n > fn.max) {
      const want = fn.min === fn.max ? `${fn.min}` : fn.max === Infinity ? `at least ${fn.min}` : `${fn.min} to ${fn.max}`;
      fail('EXPR_FUNCTION', `${fn.name}() takes ${want} argument${want === '1' ? '' : 's'}, got ${n}: ${fn.signature}`, node.start);
    }
    const args = node.args.map((a) => this.compile(a));
    const argCheck: ArgCheck = (i, what, ok) => {
      const c = args[i];
      const nn = nonNull(c.ty);
      if (mayBeNull(c.ty) && c.ty.k !== 'null' && ok(nn)) nullHint(c, `${fn.name}()`, this.src, node.args[i]);
      if (!ok(c.ty)) fail('EXPR_FUNCTION', `${fn.name}() needs ${what} as argument ${i + 1}, but '${show(node.args[i], this.src)}' is ${describeTy(c.ty)}`, c.start);
    };
    const { ty, ev } = fn.compile(args, argCheck, node);
    return fold(ty, ev, node.start, args);
  }
}

function integralResult(a: NumericTy, b: NumericTy): NumericTy {
  // int op int can leave the int range: it is a long (numbers are exact up to 2^53).
  const w = widerNumeric(a, b);
  return w.k === 'int' ? T_LONG : w;
}

// ---------------------------------------------------------------------------------------------
// Functions (pure, whitelisted)

type ArgCheck = (i: number, what: string, ok: (t: Ty) => boolean) => void;

interface FunctionSpec {
  name: string;
  signature: string;
  doc: string;
  min: number;
  max: number;
  compile(args: C[], check: ArgCheck, node: Extract<Node, { t: 'call' }>): { ty: Ty; ev: Ev };
}

const STRING = 'a string';
const NUMBER = 'a number';

function fnStringToString(name: string, doc: string, f: (s: string) => string): FunctionSpec {
  return {
    name,
    signature: `${name}(s: string) -> string`,
    doc,
    min: 1,
    max: 1,
    compile(args, check) {
      check(0, STRING, isStringLike);
      const a = args[0].ev;
      const consts = constsOf(args[0].ty);
      const ty: Ty = consts === undefined ? T_STRING : { k: 'string', consts: [...new Set(consts.map(f))] };
      return {
        ty,
        ev: (v) => {
          const x = a(v) as string;
          charge(x.length);
          return f(x);
        },
      };
    },
  };
}

function fnStringPredicate(name: string, doc: string, f: (s: string, x: string) => boolean): FunctionSpec {
  return {
    name,
    signature: `${name}(s: string, x: string) -> boolean`,
    doc,
    min: 2,
    max: 2,
    compile(args, check) {
      check(0, STRING, isStringLike);
      check(1, STRING, isStringLike);
      const a = args[0].ev;
      const b = args[1].ev;
      if (args[1].isConst) {
        const c = args[1].value as string;
        return {
          ty: T_BOOLEAN,
          ev: (v) => {
            const x = a(v) as string;
            charge(x.length);
            return f(x, c);
          },
        };
      }
      return {
        ty: T_BOOLEAN,
        ev: (v) => {
          const x = a(v) as string;
          charge(x.length);
          return f(x, b(v) as string);
        },
      };
    },
  };
}

function fnRounding(name: 'floor' | 'ceil', f: (n: number) => number): FunctionSpec {
  return {
    name,
    signature: `${name}(n: number) -> long`,
    doc: `Rounds ${name === 'floor' ? 'down' : 'up'} to an integer (int and long stay as they are).`,
    min: 1,
    max: 1,
    compile(args, check) {
      check(0, NUMBER, isNumeric);
      const a = args[0].ev;
      const t = args[0].ty;
      return { ty: isIntegral(t) ? plain(t) : T_LONG, ev: (v) => f(a(v) as number) };
    },
  };
}

function fnMinMax(name: 'min' | 'max'): FunctionSpec {
  const isMin = name === 'min';
  return {
    name,
    signature: `${name}(a: number, b: number, ...) -> number`,
    doc: `The ${isMin ? 'smallest' : 'largest'} of its arguments; the result has the widest argument type.`,
    min: 1,
    max: Infinity,
    compile(args, check) {
      let ty: NumericTy | undefined;
      for (let i = 0; i < args.length; i++) {
        check(i, NUMBER, isNumeric);
        ty = ty === undefined ? (plain(args[i].ty) as NumericTy) : widerNumeric(ty, args[i].ty as NumericTy);
      }
      const fs = args.map((a) => a.ev);
      const n = fs.length;
      const ev: Ev = isMin
        ? (v) => {
            let m = fs[0](v) as number;
            for (let i = 1; i < n; i++) {
              const x = fs[i](v) as number;
              if (x < m) m = x;
            }
            return m;
          }
        : (v) => {
            let m = fs[0](v) as number;
            for (let i = 1; i < n; i++) {
              const x = fs[i](v) as number;
              if (x > m) m = x;
            }
            return m;
          };
      return { ty: ty!, ev };
    },
  };
}

function toText(x: unknown): string {
  return typeof x === 'string' ? x : String(x);
}

const containsString = fnStringPredicate('contains', 'Whether the string contains the substring.', (s, x) => s.includes(x));

const FUNCTION_LIST: FunctionSpec[] = [
  fnStringToString('lower', 'Lower-cases a string.', (s) => s.toLowerCase()),
  fnStringToString('upper', 'Upper-cases a string.', (s) => s.toUpperCase()),
  {
    name: 'len',
    signature: 'len(x: string | array | map) -> int',
    doc: 'Length of a string (UTF-16 code units), or number of items of an array or entries of a map.',
    min: 1,
    max: 1,
    compile(args, check) {
      check(0, 'a string, array or map', (t) => isStringLike(t) || t.k === 'array' || t.k === 'map');
      const a = args[0].ev;
      if (args[0].ty.k === 'map') {
        return {
          ty: T_INT,
          ev: (v) => {
            const m = a(v) as Record<string, unknown>;
            let n = 0;
            for (const k in m) if (hasOwn(m, k)) n++;
            return n;
          },
        };
      }
      return { ty: T_INT, ev: (v) => (a(v) as string | unknown[]).length };
    },
  },
  {
    name: 'contains',
    signature: 'contains(s: string, sub: string) -> boolean | contains(a: array, x) -> boolean',
    doc: 'Whether the string contains the substring, or the array contains the value.',
    min: 2,
    max: 2,
    compile(args, check, node) {
      const t0 = nonNull(args[0].ty);
      if (t0.k === 'array') {
        check(0, 'a string or an array', (t) => t.k === 'array');
        const it = nonNull(t0.items);
        check(1, `a value like the array's items (${describeTy(t0.items)})`, (t) => (isNumeric(it) && isNumeric(t)) || (isStringLike(it) && isStringLike(t)) || (it.k === 'boolean' && t.k === 'boolean'));
        const a = args[0].ev;
        const b = args[1].ev;
        return {
          ty: T_BOOLEAN,
          ev: (v) => {
            const arr = a(v) as unknown[];
            const x = b(v);
            for (let i = 0; i < arr.length; i++) if (arr[i] === x) return true;
            return false;
          },
        };
      }
      return containsString.compile(args, check, node);
    },
  },
  fnStringPredicate('starts_with', 'Whether the string starts with the prefix.', (s, x) => s.startsWith(x)),
  fnStringPredicate('ends_with', 'Whether the string ends with the suffix.', (s, x) => s.endsWith(x)),
  {
    name: 'matches',
    signature: 'matches(s: string, pattern: "literal" [, flags: "literal"]) -> boolean',
    doc: 'Whether the string matches the regular expression (RE2 syntax, as in Prometheus: linear time, no backreferences or lookaround; searched, not anchored: use ^...$). The pattern and the flags (i, m, s, u) must be string literals; the regex is compiled once.',
    min: 2,
    max: 3,
    compile(args, check) {
      check(0, STRING, isStringLike);
      const p = args[1];
      if (!p.isConst || typeof p.value !== 'string') fail('EXPR_FUNCTION', 'matches() needs the pattern as a string literal, e.g. matches(message, "timeout|refused")', p.start);
      let flags = '';
      if (args.length === 3) {
        const f = args[2];
        if (!f.isConst || typeof f.value !== 'string' || !/^[imsu]*$/.test(f.value)) fail('EXPR_FUNCTION', 'matches() takes flags as a string literal of i, m, s, u (e.g. "i")', f.start);
        flags = f.value;
      }
      let re: LinearRegex;
      try {
        re = linearRegex(p.value, flags);
      } catch (e) {
        return fail('EXPR_FUNCTION', `invalid regular expression: ${(e as Error).message}`, p.start);
      }
      const a = args[0].ev;
      return {
        ty: T_BOOLEAN,
        ev: (v) => {
          const x = a(v) as string;
          charge(x.length);
          return re.test(x);
        },
      };
    },
  },
  {
    name: 'abs',
    signature: 'abs(n: number) -> number',
    doc: 'Absolute value (same type as n).',
    min: 1,
    max: 1,
    compile(args, check) {
      check(0, NUMBER, isNumeric);
      const a = args[0].ev;
      return { ty: plain(args[0].ty), ev: (v) => Math.abs(a(v) as number) };
    },
  },
  {
    name: 'round',
    signature: 'round(n: number [, digits: int literal]) -> long | double',
    doc: 'Rounds half up to an integer (a long), or to `digits` decimal places (a double), e.g. round(value, 1).',
    min: 1,
    max: 2,
    compile(args, check) {
      check(0, NUMBER, isNumeric);
      const a = args[0].ev;
      if (args.length === 2) {
        const d = args[1];
        if (!d.isConst || typeof d.value !== 'number' || !Number.isInteger(d.value) || d.value < 0 || d.value > 15) {
          fail('EXPR_FUNCTION', 'round() takes the number of digits as an integer literal from 0 to 15', d.start);
        }
        const factor = 10 ** d.value;
        return { ty: T_DOUBLE, ev: (v) => Math.round((a(v) as number) * factor) / factor };
      }
      const t = args[0].ty;
      return { ty: isIntegral(t) ? plain(t) : T_LONG, ev: (v) => Math.round(a(v) as number) };
    },
  },
  fnRounding('floor', Math.floor),
  fnRounding('ceil', Math.ceil),
  fnMinMax('min'),
  fnMinMax('max'),
  {
    name: 'coalesce',
    signature: 'coalesce(a, b, ...) -> type of the arguments',
    doc: 'The first argument that is not null (like a ?? b ?? ...); null only if the last one may be.',
    min: 1,
    max: Infinity,
    compile(args) {
      let ty: Ty | undefined;
      for (let i = 0; i < args.length; i++) {
        const t = i === args.length - 1 ? args[i].ty : nonNull(args[i].ty);
        const u: Ty | undefined = ty === undefined ? t : unify(ty, t);
        if (u === undefined) fail('EXPR_FUNCTION', `coalesce() arguments have different types: ${describeTy(ty!)} and ${describeTy(args[i].ty)}`, args[i].start);
        ty = u;
      }
      if (!mayBeNull(args[args.length - 1].ty)) ty = nonNull(ty!);
      const fs = args.map((a) => a.ev);
      const n = fs.length;
      return {
        ty: ty!,
        ev: (v) => {
          for (let i = 0; i < n; i++) {
            const x = fs[i](v);
            if (x !== null && x !== undefined) return x;
          }
          return null;
        },
      };
    },
  },
  {
    name: 'concat',
    signature: 'concat(a, b, ...) -> string',
    doc: 'Concatenates strings, numbers and booleans into one string.',
    min: 1,
    max: Infinity,
    compile(args, check) {
      for (let i = 0; i < args.length; i++) check(i, 'a string, number or boolean', isScalar);
      const fs = args.map((a) => a.ev);
      const n = fs.length;
      return {
        ty: T_STRING,
        ev: (v) => {
          let s = '';
          for (let i = 0; i < n; i++) s += toText(fs[i](v));
          return s;
        },
      };
    },
  },
  {
    name: 'string',
    signature: 'string(x: string | number | boolean) -> string',
    doc: 'Formats a number or boolean as a string (strings and enum symbols are returned as they are).',
    min: 1,
    max: 1,
    compile(args, check) {
      check(0, 'a string, number or boolean', isScalar);
      const a = args[0].ev;
      return { ty: isStringLike(args[0].ty) ? { k: 'string', consts: constsOf(args[0].ty) } : T_STRING, ev: (v) => toText(a(v)) };
    },
  },
  {
    name: 'number',
    signature: 'number(x: string | number | boolean) -> double (double | null for strings)',
    doc: 'Converts to a double. A string that is not a number gives null, so write number(tags.latency) ?? 0.',
    min: 1,
    max: 1,
    compile(args, check) {
      check(0, 'a string, number or boolean', (t) => t.k === 'string' || isNumeric(t) || t.k === 'boolean');
      const a = args[0].ev;
      if (args[0].ty.k === 'string') {
        return {
          ty: nullable(T_DOUBLE),
          ev: (v) => {
            const s = (a(v) as string).trim();
            if (s === '') return null;
            const n = Number(s);
            return Number.isNaN(n) ? null : n;
          },
        };
      }
      return { ty: T_DOUBLE, ev: (v) => Number(a(v)) };
    },
  },
];

const FUNCTIONS: Record<string, FunctionSpec> = Object.create(null) as Record<string, FunctionSpec>;
for (const f of FUNCTION_LIST) FUNCTIONS[f.name] = f;

/** The function table, for the reference docs. */
export const expressionFunctions: ReadonlyArray<{ name: string; signature: string; doc: string }> = FUNCTION_LIST.map((f) => ({
  name: f.name,
  signature: f.signature,
  doc: f.doc,
}));

// ---------------------------------------------------------------------------------------------
// Entry points

const cache = new WeakMap<object, Map<string, CompiledExpression>>();

/** Checks an expression's syntax only (when the input schema is not known); throws ExpressionError. */
export function checkExpressionSyntax(src: string): void {
  if (src.length > MAX_LENGTH) fail('EXPR_SYNTAX', `expression too long (${src.length} characters, at most ${MAX_LENGTH})`, 0);
  new Parser(tokenize(src)).parse();
}

/**
 * Parses, type-checks and compiles an expression against the record schema of its input.
 * Throws ExpressionError (with a stable code and the offset in `src`) on any problem.
 * Compiled expressions are stateless and cached per (schema object, source).
 */
export function compileExpression(src: string, schema: RecordSchema): CompiledExpression {
  let perSchema = cache.get(schema);
  const hit = perSchema?.get(src);
  if (hit !== undefined) return hit;
  if (src.length > MAX_LENGTH) fail('EXPR_SYNTAX', `expression too long (${src.length} characters, at most ${MAX_LENGTH})`, 0);
  const ast = new Parser(tokenize(src)).parse();
  const ctx: Ctx = { rec: recordTy(schema), paths: new Map() };
  const c = new Compiler(src, ctx).compile(ast);
  const ty = c.ty;
  const ev = c.ev;
  const compiled: CompiledExpression = {
    source: src,
    // Every closure returns null rather than undefined, so the tree's root is the evaluator; each
    // evaluation starts a fresh text budget.
    evaluate: (v) => {
      scanned = 0;
      return ev(v);
    },
    type: avroFromTy(stripConsts(ty)),
    ty,
    fields: [...ctx.paths].filter(([, n]) => n > 0).map(([p]) => p),
    ...(c.field !== undefined && ast.t === 'field' ? { field: c.field } : {}),
    ...(c.isConst ? { constant: { value: c.value } } : {}),
  };
  if (perSchema === undefined) {
    perSchema = new Map();
    cache.set(schema, perSchema);
  }
  perSchema.set(src, compiled);
  return compiled;
}

/**
 * compileExpression for a config value at `path`: a problem is added to `issues` (with its offset
 * in the expression) instead of thrown.
 */
export function compileExpressionAt(src: string, schema: RecordSchema, path: (string | number)[], issues: ConfigIssue[]): CompiledExpression | undefined {
  try {
    return compileExpression(src, schema);
  } catch (e) {
    if (e instanceof ExpressionError) {
      issues.push({ path, message: e.message, code: e.code, offset: e.offset });
      return undefined;
    }
    throw e;
  }
}

/** Describes a resolved type for messages: `string | null`, `enum vigil.telemetry.LogLevel`. */
export { describeTy } from './avro-types.ts';
export type { Ty, EnumTy };
