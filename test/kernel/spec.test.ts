import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ConfigSpec, RecordSchema } from '../../kernel/operator.ts';
import { filterOperator } from '../../operators/filter.ts';
import { mapOperator } from '../../operators/map.ts';
import { checkRelativePath, formatDuration, looksLikePathOrUrl, parseConfig, parseDuration } from '../../kernel/spec.ts';
import { specTable, specToJsonSchema, specToMarkdown } from '../../topology/spec-docs.ts';

const metric = JSON.parse(readFileSync(new URL('../../schemas/metric-sample.avsc', import.meta.url), 'utf8')) as RecordSchema;

const spec: ConfigSpec = {
  where: { kind: 'expression', returns: 'boolean', description: 'condition' },
  label: { kind: 'string', optional: true, pattern: '^[a-z]+$', description: 'a label' },
  note: { kind: 'string', optional: true, freeText: true, description: 'free text' },
  count: { kind: 'integer', default: 3, min: 1, max: 10, description: 'a count' },
  ratio: { kind: 'number', optional: true, description: 'a ratio' },
  on: { kind: 'boolean', default: false, description: 'a switch' },
  every: { kind: 'duration', default: '30s', min: 1000, description: 'a period' },
  mode: { kind: 'enum', values: ['fast', 'safe'], default: 'safe', description: 'a mode' },
  by: { kind: 'array', optional: true, items: { kind: 'field', description: 'a field' }, description: 'fields' },
  fields: { kind: 'map', optional: true, items: { kind: 'expression', description: 'expr' }, description: 'exprs' },
  nested: { kind: 'object', optional: true, fields: { size: { kind: 'integer', description: 'size' } }, description: 'nested' },
};

const parse = (raw: unknown) => parseConfig(spec, raw, { what: "test operator 'x'", schema: metric });

describe('spec: durations', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    ['0', 0],
    [250, 250],
  ])('%s -> %d ms', (v, ms) => {
    expect(parseDuration(v)).toBe(ms);
  });
  it.each([['10 seconds'], ['5'], ['-1s'], [1.5], [-1], ['1.0001s'], [true]])('refuses %j', (v) => {
    expect(typeof parseDuration(v)).toBe('object');
  });
  it('formats', () => {
    expect([0, 1500, 30_000, 300_000, 86_400_000].map(formatDuration)).toEqual(['0ms', '1500ms', '30s', '5m', '1d']);
  });
});

describe('spec: parseConfig', () => {
  it('applies defaults and converts kinds', () => {
    const r = parse({ where: 'value > 1', by: 'host', fields: { a: 'host', b: 2 } });
    expect(r.issues).toEqual([]);
    expect(r.config).toEqual({ where: 'value > 1', count: 3, on: false, every: 30_000, mode: 'safe', by: ['host'], fields: { a: 'host', b: '2' } });
  });

  it('reports unknown fields with did-you-mean, at the key, and does not also report the field as missing', () => {
    const r = parse({ wher: 'value > 1' });
    expect(r.issues).toEqual([{ path: ['wher'], message: "unknown field 'wher' in test operator 'x'; did you mean 'where'?", code: 'UNKNOWN_FIELD', at: 'key' }]);
  });

  it('the filter operator message', () => {
    const r = parseConfig(filterOperator.config, { wher: 'value > 90' }, { what: "filter operator 'hot'", schema: metric, reserved: ['name', 'type', 'from'] });
    expect(r.issues.map((i) => i.message)).toEqual(["unknown field 'wher' in filter operator 'hot'; did you mean 'where'?"]);
  });

  it('reports missing required fields with the field in the path', () => {
    expect(parse({}).issues).toEqual([{ path: ['where'], message: "missing required field 'where' in test operator 'x'", code: 'MISSING_FIELD' }]);
    expect(parse({ where: null }).issues[0].message).toBe("field 'where' of test operator 'x' has no value");
  });

  it('checks kinds, bounds, patterns and enums', () => {
    const r = parse({ where: 'true', label: 'ABC', count: 11, ratio: 'x', on: 'yes', every: '10ms', mode: 'fsat', nested: { size: 1.5, extra: 1 } });
    expect(r.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['label', "'label' must match ^[a-z]+$, got 'ABC'"],
      ['count', "'count' must be at most 10, got 11"],
      ['ratio', "'ratio' must be a number, got the string 'x'"],
      ['on', "'on' must be true or false, got the string 'yes'"],
      ['every', "'every' must be at least 1s, got 10ms"],
      ['mode', "'mode' must be one of fast, safe, got the string 'fsat'; did you mean 'fast'?"],
      ['nested.extra', "unknown field 'extra' in 'nested'"],
      ['nested.size', "'size' must be a whole number, got number 1.5"],
    ]);
  });

  it('checks expressions and fields against the schema, with offsets', () => {
    const r = parse({ where: 'value > 1 && hots == "a"', by: ['host', 'tags.region', 'nmae'], fields: { x: '"abc" * 2' } });
    expect(r.issues).toEqual([
      { path: ['where'], code: 'EXPR_UNKNOWN_FIELD', offset: 13, message: "unknown field 'hots'; did you mean 'host'? (vigil.telemetry.MetricSample has: timestamp, name, host, value, unit, tags)" },
      { path: ['by', 2], code: 'EXPR_UNKNOWN_FIELD', offset: 0, message: "unknown field 'nmae'; did you mean 'name'? (vigil.telemetry.MetricSample has: timestamp, name, host, value, unit, tags)" },
      { path: ['fields', 'x'], code: 'EXPR_TYPE', offset: 0, message: `operator '*' needs numbers, but '"abc"' is string` },
    ]);
  });

  it('checks the expression result type', () => {
    expect(parse({ where: 'value + 1' }).issues[0].message).toBe("'where' must be a boolean expression, but 'value + 1' is double");
    expect(parse({ where: 'tags.region == "x"' }).issues).toEqual([]);
  });

  it('without a schema, checks expression syntax only', () => {
    const bare = (raw: unknown) => parseConfig(spec, raw, { what: 'x' }).issues;
    expect(bare({ where: 'anything == 1' })).toEqual([]);
    expect(bare({ where: 'a ==' })[0].code).toBe('EXPR_SYNTAX');
  });

  it('refuses paths and URLs in plain strings, allows them in free text', () => {
    expect(parse({ where: 'true', label: 'http://evil.example' }).issues[0]).toMatchObject({ code: 'PATH_NOT_ALLOWED', path: ['label'] });
    expect(parse({ where: 'true', label: '../etc' }).issues[0]).toMatchObject({ code: 'PATH_NOT_ALLOWED' });
    expect(parse({ where: 'true', note: 'see https://runbooks.example/cpu' }).issues).toEqual([]);
    expect(looksLikePathOrUrl('telemetry.metrics')).toBe(false);
    expect(['/x', './x', '../x', '~/x', 'C:\\x', 's3://b/k', 'file:x'].every(looksLikePathOrUrl)).toBe(true);
  });

  it('refuses forbidden keys even in JSON-parsed input', () => {
    const raw = JSON.parse('{"where": "true", "fields": {"__proto__": "host"}, "constructor": 1}') as Record<string, unknown>;
    const r = parse(raw);
    expect(r.issues.map((i) => [i.code, i.path])).toEqual([
      ['FORBIDDEN_KEY', ['constructor']],
      ['FORBIDDEN_KEY', ['fields', '__proto__']],
    ]);
    expect(Object.getPrototypeOf(r.config)).toBe(Object.prototype);
  });

  it('checks schema and path kinds', () => {
    const s: ConfigSpec = { schema: { kind: 'schema', description: 's' }, file: { kind: 'path', description: 'p' } };
    const cx = { what: 'x', resolveSchema: (n: string) => (n === 'vigil.alerting.Alert' ? metric : undefined), schemaNames: () => ['vigil.alerting.Alert'] };
    expect(parseConfig(s, { schema: 'vigil.alerting.Alert', file: 'a/b.avsc' }, cx).issues).toEqual([]);
    const bad = parseConfig(s, { schema: 'Alert', file: '../b.avsc' }, cx).issues;
    expect(bad.map((i) => i.message)).toEqual([
      "unknown schema 'Alert'; did you mean 'vigil.alerting.Alert'? (schemas are named by fullname, namespace included)",
      "'../b.avsc' escapes the topology's directory ('..' is not allowed)",
    ]);
    expect(checkRelativePath('/abs.avsc')).toMatch(/absolute/);
    expect(checkRelativePath('http://x/y.avsc')).toMatch(/URL/);
    expect(checkRelativePath('ok/file.avsc')).toBeUndefined();
  });
});

describe('spec: JSON Schema and Markdown', () => {
  it('derives a JSON Schema', () => {
    const js = specToJsonSchema(spec);
    expect(js.type).toBe('object');
    expect(js.additionalProperties).toBe(false);
    expect(js.required).toEqual(['where']);
    const props = js.properties as Record<string, Record<string, unknown>>;
    expect(props.mode).toMatchObject({ enum: ['fast', 'safe'], default: 'safe' });
    expect(props.every.oneOf).toHaveLength(2);
    expect(props.count).toMatchObject({ type: 'integer', minimum: 1, maximum: 10, default: 3 });
    expect(props.fields).toMatchObject({ type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } });
    expect(props.nested).toMatchObject({ type: 'object', properties: { size: { type: 'integer' } }, required: ['size'] });
  });

  it('derives Markdown docs for an operator', () => {
    const md = specToMarkdown(mapOperator);
    expect(md).toContain('### `map`');
    expect(md).toContain('aliases: `transform`');
    expect(md).toContain('| `keep_input` | boolean | no | `false` |');
    expect(md).toContain('#### Example: Build an alert');
    expect(specTable(spec)).toContain('| `nested.size` | integer | yes |');
  });
});
