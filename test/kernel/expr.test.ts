import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { RecordSchema } from '../../kernel/operator.ts';
import { EVALUATION_BUDGET, EvaluationBudgetError, checkExpressionSyntax, compileExpression, expressionFunctions } from '../../kernel/expr.ts';
import { ExpressionError } from '../../kernel/diagnostics.ts';

const schema = (f: string): RecordSchema => JSON.parse(readFileSync(new URL(`../../schemas/${f}.avsc`, import.meta.url), 'utf8')) as RecordSchema;
const metric = schema('metric-sample');
const log = schema('log-line');

const nested: RecordSchema = {
  type: 'record',
  name: 'Nested',
  namespace: 'test',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'count', type: 'int' },
    { name: 'big', type: 'long' },
    { name: 'ratio', type: 'float' },
    { name: 'ok', type: 'boolean' },
    { name: 'maybe', type: ['null', 'boolean'], default: null },
    { name: 'inner', type: { type: 'record', name: 'Inner', fields: [{ name: 'x', type: 'double' }, { name: 'label', type: ['null', 'string'], default: null }] } },
    { name: 'opt', type: ['null', 'Inner'], default: null },
    { name: 'list', type: { type: 'array', items: 'string' }, default: [] },
    { name: 'nums', type: { type: 'array', items: 'long' }, default: [] },
    { name: 'scores', type: { type: 'map', values: 'double' }, default: {} },
    { name: 'level', type: { type: 'enum', name: 'Lvl', symbols: ['LOW', 'HIGH'] } },
  ],
};

const sample = { timestamp: 1_700_000_000_000, name: 'cpu.utilization', host: 'web-1', value: 93.25, unit: 'percent', tags: { region: 'eu-west-1', 'k-1': 'dash' } };
const line = { timestamp: 1, host: 'h', service: 'api', level: 'ERROR', message: 'boom: timeout', traceId: null, attributes: {} };
const rec = {
  id: 'a',
  count: 3,
  big: 10,
  ratio: 0.5,
  ok: true,
  maybe: null,
  inner: { x: 1.5, label: null },
  opt: null,
  list: ['a', 'b'],
  nums: [1, 2, 3],
  scores: { p50: 1, p99: 9 },
  level: 'HIGH',
};

function run(src: string, s: RecordSchema = metric, v: Record<string, unknown> = sample): unknown {
  return compileExpression(src, s).evaluate(v);
}

function error(src: string, s: RecordSchema = metric): ExpressionError {
  try {
    compileExpression(src, s);
  } catch (e) {
    if (e instanceof ExpressionError) return e;
    throw e;
  }
  throw new Error(`expected '${src}' to fail`);
}

describe('expressions: evaluation', () => {
  it.each([
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['10 / 4', 2.5],
    ['10 % 4', 2],
    ['-value', -93.25],
    ['2 - 3 - 4', -5],
    ['value > 90 && name == "cpu.utilization"', true],
    ['value > 95 || host == "web-1"', true],
    ['!(value > 90)', false],
    ['value >= 93.25 && value <= 93.25', true],
    ['host + ":" + name', 'web-1:cpu.utilization'],
    ["'single' + \"double\"", 'singledouble'],
    ['"v=" + value', 'v=93.25'],
    ['value + 1', 94.25],
    ['value > 95 ? "CRITICAL" : "WARNING"', 'WARNING'],
    ['value > 90 ? value > 99 ? 1 : 2 : 3', 2],
    ['tags.region', 'eu-west-1'],
    ['tags["k-1"]', 'dash'],
    ['tags.missing', null],
    ['tags.missing ?? "none"', 'none'],
    ['unit ?? "-"', 'percent'],
    ['name in ["cpu.utilization", "mem.used"]', true],
    ['name not in ["cpu.utilization", "mem.used"]', false],
    ['host in [name, "web-1"]', true],
    ['"region" in tags', true],
    ['"zone" in tags', false],
    ['"a\\tb\\n\\u0041\\\\"', 'a\tb\nA\\'],
    ['null ?? 3', 3],
    ['true', true],
    ['1e3', 1000],
  ])('%s', (src, want) => {
    expect(run(src)).toEqual(want);
  });

  it('evaluates functions', () => {
    const cases: [string, unknown][] = [
      ['lower("AbC")', 'abc'],
      ['upper(host)', 'WEB-1'],
      ['len(host)', 5],
      ['len(tags)', 2],
      ['contains(name, "cpu")', true],
      ['starts_with(name, "cpu.")', true],
      ['ends_with(name, ".used")', false],
      ['matches(name, "^cpu\\\\.")', true],
      ['matches(host, "WEB", "i")', true],
      ['abs(-2)', 2],
      ['round(value)', 93],
      ['round(value, 1)', 93.3],
      ['floor(value)', 93],
      ['ceil(value)', 94],
      ['min(value, 10, 20)', 10],
      ['max(value, 100)', 100],
      ['coalesce(tags.zone, tags.region, "x")', 'eu-west-1'],
      ['concat(host, "/", value, "/", true)', 'web-1/93.25/true'],
      ['string(value)', '93.25'],
      ['number("12.5")', 12.5],
      ['number("nope")', null],
      ['number("")', null],
      ['number(value)', 93.25],
    ];
    for (const [src, want] of cases) expect(run(src), src).toEqual(want);
  });

  it('reads nested records, arrays, maps and enums', () => {
    expect(run('inner.x * 2', nested, rec)).toBe(3);
    expect(run('opt.x ?? -1', nested, rec)).toBe(-1);
    expect(run('list[1]', nested, rec)).toBe('b');
    expect(run('list[5] ?? "none"', nested, rec)).toBe('none');
    expect(run('"b" in list', nested, rec)).toBe(true);
    expect(run('contains(nums, 2)', nested, rec)).toBe(true);
    expect(run('scores.p99 ?? 0', nested, rec)).toBe(9);
    expect(run('scores[id] ?? 0', nested, rec)).toBe(0);
    expect(run('level == "HIGH"', nested, rec)).toBe(true);
    expect(run('level in ["LOW"]', nested, rec)).toBe(false);
    expect(run('lower(level)', nested, rec)).toBe('high');
    expect(run('{"a": id, "b": lower(level)}', nested, rec)).toEqual({ a: 'a', b: 'high' });
    expect(run('[count, big]', nested, rec)).toEqual([3, 10]);
    expect(run('len(list) + len(scores)', nested, rec)).toBe(4);
  });

  it('short-circuits && and ||', () => {
    // `list[9] ?? "x"` would be fine anyway; use a division by zero-free check: right side never runs
    const c = compileExpression('ok || matches(id, "a")', nested);
    expect(c.evaluate(rec)).toBe(true);
  });

  it('never reads inherited properties', () => {
    const proto = { host: 'inherited', region: 'inherited' };
    const value = Object.create(proto) as Record<string, unknown>;
    value.tags = Object.create(proto);
    expect(run('host', metric, value)).toBeNull();
    expect(run('tags.region ?? "none"', metric, value)).toBe('none');
    // dynamic keys cannot reach the prototype either
    const tags: Record<string, unknown> = { region: 'x' };
    const v = { ...sample, name: 'constructor', tags };
    expect(run('tags[name] ?? "none"', metric, v)).toBe('none');
    expect(run('name in tags', metric, v)).toBe(false);
    expect(run('tags[host] ?? "none"', metric, { ...v, host: '__proto__' })).toBe('none');
  });

  it('folds constants and reports them', () => {
    const c = compileExpression('"cpu" + "-" + "hot"', metric);
    expect(c.constant).toEqual({ value: 'cpu-hot' });
    expect(c.evaluate({})).toBe('cpu-hot');
    expect(compileExpression('1 + 2', metric).constant).toEqual({ value: 3 });
    expect(compileExpression('value + 2', metric).constant).toBeUndefined();
  });

  it('lists the fields read and detects plain field references', () => {
    expect(compileExpression('host + (tags.region ?? "") + name', metric).fields).toEqual(['host', 'tags.region', 'name']);
    expect(compileExpression('len(tags) + len(tags.region ?? "")', metric).fields).toEqual(['tags', 'tags.region']);
    expect(compileExpression('host', metric).field).toBe('host');
    expect(compileExpression('(host)', metric).field).toBe('host');
    expect(compileExpression('host + ""', metric).field).toBeUndefined();
  });

  it('caches compiled expressions per schema and source', () => {
    expect(compileExpression('value > 1', metric)).toBe(compileExpression('value > 1', metric));
  });
});

describe('expressions: type inference', () => {
  it.each([
    ['value', 'double'],
    ['timestamp', { type: 'long', logicalType: 'timestamp-millis' }],
    ['timestamp + 1', 'long'],
    ['1', 'int'],
    ['3000000000', 'long'],
    ['1.5', 'double'],
    ['1 + 1', 'long'],
    ['1 / 1', 'double'],
    ['"a"', 'string'],
    ['true', 'boolean'],
    ['null', 'null'],
    ['unit', ['null', 'string']],
    ['tags.region', ['null', 'string']],
    ['tags.region ?? "x"', 'string'],
    ['coalesce(tags.a, tags.b)', ['null', 'string']],
    ['value > 1 ? 1 : 2.5', 'double'],
    ['value > 1 ? "a" : null', ['null', 'string']],
    ['round(value)', 'long'],
    ['round(value, 2)', 'double'],
    ['len(host)', 'int'],
    ['number(host)', ['null', 'double']],
    ['{"k": host}', { type: 'map', values: 'string' }],
    ['[1, 2]', { type: 'array', items: 'int' }],
    ['tags', { type: 'map', values: 'string' }],
  ])('%s : %j', (src, want) => {
    expect(compileExpression(src, metric).type).toEqual(want);
  });

  it('keeps enum types (self-contained)', () => {
    expect(compileExpression('level', log).type).toMatchObject({ type: 'enum', name: 'LogLevel', namespace: 'vigil.telemetry' });
    expect(compileExpression('level == "ERROR" ? level : level', log).type).toMatchObject({ type: 'enum' });
    expect(compileExpression('lower(level)', log).type).toBe('string');
  });

  it('int and float arithmetic', () => {
    expect(compileExpression('count + count', nested).type).toBe('long');
    expect(compileExpression('count * ratio', nested).type).toBe('float');
    expect(compileExpression('ratio + inner.x', nested).type).toBe('double');
    expect(compileExpression('abs(count)', nested).type).toBe('int');
    expect(compileExpression('floor(count)', nested).type).toBe('int');
    expect(compileExpression('max(count, big)', nested).type).toBe('long');
  });
});

describe('expressions: compile-time errors', () => {
  it.each([
    ['"abc" * 2', 'EXPR_TYPE', 0, `operator '*' needs numbers, but '"abc"' is string`],
    ['value > 90 && "abc" * 2 > 1', 'EXPR_TYPE', 14, `operator '*' needs numbers, but '"abc"' is string`],
    ['nme == "x"', 'EXPR_UNKNOWN_FIELD', 0, "unknown field 'nme'; did you mean 'name'? (vigil.telemetry.MetricSample has: timestamp, name, host, value, unit, tags)"],
    ['value > 90 && hots == "x"', 'EXPR_UNKNOWN_FIELD', 14, "unknown field 'hots'; did you mean 'host'? (vigil.telemetry.MetricSample has: timestamp, name, host, value, unit, tags)"],
    ['constructor', 'EXPR_FORBIDDEN', 0, "'constructor' cannot be used as a field name"],
    ['tags.__proto__', 'EXPR_FORBIDDEN', 5, "'__proto__' cannot be used as a field name or map key"],
    ['tags["prototype"]', 'EXPR_FORBIDDEN', 5, "'prototype' cannot be used as a field name or map key"],
    ['{"constructor": 1}', 'EXPR_FORBIDDEN', 1, "'constructor' cannot be used as a map key"],
    ['unit + "x"', 'EXPR_TYPE', 0, `operator '+' (string concatenation): 'unit' may be null (string | null); give a default with ??, e.g. (unit ?? "")`],
    ['tags.region > "m"', 'EXPR_TYPE', 0, `operator '>': 'tags.region' may be null (string | null); give a default with ??, e.g. (tags.region ?? "")`],
    ['value == "x"', 'EXPR_TYPE', 6, 'comparing double with string is always false'],
    ['value ? 1 : 2', 'EXPR_TYPE', 0, "the condition of '? :' needs a boolean, but 'value' is double"],
    ['value > 1 ? 1 : "a"', 'EXPR_TYPE', 16, "the branches of '? :' have different types: int and string"],
    ['value && true', 'EXPR_TYPE', 0, "operator '&&' needs a boolean, but 'value' is double"],
    ['host < 3', 'EXPR_TYPE', 5, "operator '<' compares two numbers or two strings, not string and int"],
    ['tags + 1', 'EXPR_TYPE', 0, "operator '+' needs numbers or a string, but 'tags' is map<string>"],
    ['host.x', 'EXPR_TYPE', 5, "cannot read 'x' of host: it is string, not a record or map"],
    ['"x" in host', 'EXPR_TYPE', 7, "'in' needs a list [..], an array or a map on its right, not string; for substrings use contains(host, ...)"],
    ['value = 3', 'EXPR_SYNTAX', 6, "unexpected '=': use == to compare"],
    ['value & 3', 'EXPR_SYNTAX', 6, "unexpected '&': use && for logical and"],
    ['value > ', 'EXPR_SYNTAX', 8, 'unexpected end of the expression'],
    ['"open', 'EXPR_SYNTAX', 0, 'unterminated string: missing closing "'],
    ['(value > 1', 'EXPR_SYNTAX', 10, "expected ')' to close the parenthesis, found the end of the expression"],
    ['value > 1 and host == "a"', 'EXPR_SYNTAX', 10, "unexpected 'and': expected an operator (use &&)"],
    ['12abc', 'EXPR_SYNTAX', 0, "malformed number '12a'"],
    ['"\\q"', 'EXPR_SYNTAX', 1, "unknown escape '\\q' in string (use \\n \\t \\r \\\\ \\\" \\' \\uXXXX)"],
    ['', 'EXPR_SYNTAX', 0, 'empty expression'],
    ['lowr(host)', 'EXPR_FUNCTION', 0, "unknown function 'lowr'; did you mean 'lower'? (functions: lower, upper, len, contains, starts_with, ends_with, matches, abs, round, floor, ceil, min, max, coalesce, concat, string, number)"],
    ['host(1)', 'EXPR_FUNCTION', 0, "'host' is a field, not a function"],
    ['lower(host, 1)', 'EXPR_FUNCTION', 0, 'lower() takes 1 argument, got 2: lower(s: string) -> string'],
    ['lower(value)', 'EXPR_FUNCTION', 6, "lower() needs a string as argument 1, but 'value' is double"],
    ['lower(unit)', 'EXPR_TYPE', 6, `lower(): 'unit' may be null (string | null); give a default with ??, e.g. (unit ?? "")`],
    ['matches(host, name)', 'EXPR_FUNCTION', 14, 'matches() needs the pattern as a string literal, e.g. matches(message, "timeout|refused")'],
    ['matches(host, "(")', 'EXPR_FUNCTION', 14, 'invalid regular expression: missing closing ): `(`'],
    ['matches(host, "(a)\\\\1")', 'EXPR_FUNCTION', 14, 'invalid regular expression: invalid escape sequence: `\\1`'],
    ['matches(host, "a(?=b)")', 'EXPR_FUNCTION', 14, 'invalid regular expression: invalid or unsupported Perl syntax: `(?=`'],
    [`value > 1${'0'.repeat(400)}.5`, 'EXPR_SYNTAX', 8, `number 1${'0'.repeat(39)}… is too large for a double`],
    ['matches(host, "a", "g")', 'EXPR_FUNCTION', 19, 'matches() takes flags as a string literal of i, m, s, u (e.g. "i")'],
    ['round(value, host)', 'EXPR_FUNCTION', 13, 'round() takes the number of digits as an integer literal from 0 to 15'],
    ['a.b(1)', 'EXPR_SYNTAX', 2, 'methods are not supported: call b(...) as a function'],
  ])('%s', (src, code, offset, message) => {
    const e = error(src);
    expect({ code: e.code, offset: e.offset, message: e.message }).toEqual({ code, offset, message });
  });

  it('refuses enum comparisons that can never match', () => {
    const e = error('level == "EROR"', log);
    expect(e.message).toBe("'EROR' is not a symbol of enum vigil.telemetry.LogLevel (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, UNKNOWN); did you mean 'ERROR'?");
    expect(e.offset).toBe(9);
    expect(error('level in ["ERROR", "FATL"]', log).offset).toBe(19);
    expect(error('level >= "ERROR"', log).message).toMatch(/^enums have no order in expressions/);
  });

  it('limits nesting depth and length', () => {
    expect(error(`${'('.repeat(200)}1${')'.repeat(200)}`).message).toMatch(/nested too deeply/);
    expect(error(`${'-'.repeat(200)}1`).message).toMatch(/nested too deeply/);
    expect(error(`"${'x'.repeat(20_000)}"`).message).toMatch(/too long/);
  });

  it('checks syntax without a schema', () => {
    expect(() => checkExpressionSyntax('a + b * c.d')).not.toThrow();
    expect(() => checkExpressionSyntax('a +')).toThrow(ExpressionError);
  });
});

describe('expressions: safety', () => {
  it('does not use eval, Function or vm', () => {
    const src = readFileSync(new URL('../../kernel/expr.ts', import.meta.url), 'utf8').replace(/\/\/.*$/gm, '');
    expect(src).not.toMatch(/\beval\s*\(/);
    expect(src).not.toMatch(/new\s+Function\b|\bFunction\s*\(/);
    expect(src).not.toMatch(/from\s+['"](node:)?vm['"]/);
  });

  it('documents every function', () => {
    expect(expressionFunctions.map((f) => f.name)).toEqual([
      'lower', 'upper', 'len', 'contains', 'starts_with', 'ends_with', 'matches', 'abs', 'round', 'floor', 'ceil', 'min', 'max', 'coalesce', 'concat', 'string', 'number',
    ]);
    for (const f of expressionFunctions) expect(f.doc.length).toBeGreaterThan(10);
  });

  it('matches in linear time: a pattern that backtracks exponentially in JavaScript answers at once, per record and folded at load', () => {
    const evil = `${'a'.repeat(5000)}!`;
    const c = compileExpression('matches(message, "(a+)+$")', log);
    expect(c.evaluate({ ...line, message: evil })).toBe(false);
    expect(c.evaluate({ ...line, message: 'aaa' })).toBe(true);
    const folded = compileExpression(`matches("${evil}", "(a|aa)+$")`, log);
    expect(folded.evaluate(line)).toBe(false);
  });

  it('compiles the regex once', () => {
    const c = compileExpression('matches(message, "time(out|d)")', log);
    const values = Array.from({ length: 1000 }, (_, i) => ({ ...line, message: i % 2 === 0 ? 'timeout' : 'fine' }));
    let hits = 0;
    for (const v of values) if (c.evaluate(v) === true) hits++;
    expect(hits).toBe(500);
  });
});

describe('division by a constant zero', () => {
  it('is refused where it is written, constant-folded divisors included; other divisors compile', () => {
    expect(error('value / 0').message).toBe("division by the constant 0 in 'value / 0': every record would get Infinity or NaN");
    expect(error('len(host) % (2 - 2)').message).toMatch(/^division by the constant 0 in 'len\(host\) % \(2 - 2\)': every record would get NaN/);
    expect(() => compileExpression('value / 2', metric)).not.toThrow();
    expect(() => compileExpression('value / value', metric)).not.toThrow();
  });
});

describe('evaluation budget', () => {
  it('a record whose evaluation would scan more text than the budget throws EvaluationBudgetError; the next record starts afresh', () => {
    const many = Array.from({ length: 20 }, (_, i) => `matches(host, "x${i}y") || contains(host, "z${i}")`).join(' || ');
    const e = compileExpression(many, metric);
    const big = { timestamp: 0, name: 'n', host: 'a'.repeat(1 << 19), value: 1, unit: '', tags: {} };
    // 40 scans of 512 Ki characters: 20 Mi > the 16 Mi budget.
    expect(() => e.evaluate(big)).toThrow(EvaluationBudgetError);
    expect(() => e.evaluate(big)).toThrow(`expression evaluation over budget: it would scan more than ${EVALUATION_BUDGET} characters of text for one record`);
    // Within the budget (the same expression on a smaller value, or one scan of the large one).
    expect(e.evaluate({ ...big, host: 'a'.repeat(1000) })).toBe(false);
    expect(compileExpression('matches(host, "b")', metric).evaluate(big)).toBe(false);
  });
});
