import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import avro from 'avsc';
import type { ConfigIssue, OperatorContext, RecordSchema, StreamRecord } from '../../kernel/operator.ts';
import { generatedSchemaName } from '../../kernel/names.ts';
import { mapOperator } from '../../operators/map.ts';
import type { MapConfig } from '../../operators/map.ts';
import { getOperator, operatorRegistry } from '../../operators/registry.ts';
import { tryCompile } from '../helpers/operators.ts';

const load = (f: string) => JSON.parse(readFileSync(new URL(`../../schemas/${f}.avsc`, import.meta.url), 'utf8')) as RecordSchema;
const metric = load('metric-sample');
const log = load('log-line');
const alert = load('alert');

const compile = (config: MapConfig, input: RecordSchema, name = 'to-alert', keyFields?: string[]) =>
  tryCompile(mapOperator, config as unknown as Record<string, unknown>, [{ schema: input, keyFields }], name);
const issuesOf = (config: MapConfig, input: RecordSchema): ConfigIssue[] => {
  const r = compile(config, input);
  return r.ok ? [] : r.issues;
};
function compiledOf(config: MapConfig, input: RecordSchema, name?: string, keyFields?: string[]) {
  const r = compile(config, input, name, keyFields);
  if (!r.ok) throw new Error(r.issues.map((i) => i.message).join('\n'));
  return r.compiled;
}
const outputSchema = (config: MapConfig, input: RecordSchema, name?: string) => compiledOf(config, input, name).outputs[0]!.schema;
const keyFields = (config: MapConfig, key: string[] | undefined) => compiledOf(config, metric, 'k', key).outputs[0]!.keyFields;

function run(config: MapConfig, input: RecordSchema, records: StreamRecord[]): StreamRecord[] {
  const out: StreamRecord[] = [];
  const c = { forward: (r: StreamRecord) => out.push(r) } as unknown as OperatorContext;
  const op = compiledOf(config, input).create();
  for (const r of records) op.process(r, c, 'in');
  return out;
}

const sample = { timestamp: 1_700_000_000_000, name: 'cpu.utilization', host: 'web-1', value: 97.26, unit: 'percent', tags: { region: 'eu' } };
const rec = (value: Record<string, unknown>, key: string | null = 'web-1'): StreamRecord => ({ key, value, timestamp: 42, headers: { trace: 't' } });
const cfg = (c: Partial<MapConfig>): MapConfig => ({ keep_input: false, ...c });

describe('map', () => {
  it('is registered as map and transform', () => {
    expect(getOperator('map')).toBe(mapOperator);
    expect(getOperator('transform')).toBe(mapOperator);
    expect(operatorRegistry.get('transform')!.type).toBe('map');
  });

  it('outputs exactly the fields, in order, and keeps key, timestamp and headers', () => {
    const config = cfg({ fields: { id: 'host + ":" + name', v: 'round(value, 1)', region: 'tags.region ?? "?"', hot: 'value > 90' } });
    const [out] = run(config, metric, [rec(sample)]);
    expect(Object.keys(out.value)).toEqual(['id', 'v', 'region', 'hot']);
    expect(out).toEqual({ key: 'web-1', value: { id: 'web-1:cpu.utilization', v: 97.3, region: 'eu', hot: true }, timestamp: 42, headers: { trace: 't' } });
  });

  it('derives the output schema from the inferred types; avsc accepts it and encodes the output', () => {
    const config = cfg({ fields: { id: 'host', ts: 'timestamp', v: 'value', unit: 'unit', labels: '{"m": name}', n: '1', level: '"x"' } });
    const schema = outputSchema(config, metric, 'shape-it');
    expect(schema).toEqual({
      type: 'record',
      name: 'ShapeIt',
      namespace: 'vigil.generated',
      doc: "Output of map 'shape-it'.",
      fields: [
        { name: 'id', type: 'string' },
        { name: 'ts', type: { type: 'long', logicalType: 'timestamp-millis' } },
        { name: 'v', type: 'double' },
        { name: 'unit', type: ['null', 'string'] },
        { name: 'labels', type: { type: 'map', values: 'string' } },
        { name: 'n', type: 'int' },
        { name: 'level', type: 'string' },
      ],
    });
    const type = avro.Type.forSchema(schema as avro.Schema);
    const [out] = run(config, metric, [rec(sample)]);
    expect(type.fromBuffer(type.toBuffer(out.value))).toEqual(out.value);
    expect(generatedSchemaName('9lives')).toBe('vigil.generated.M9lives');
  });

  it('defines a named type once when two fields share it', () => {
    const schema = outputSchema(cfg({ fields: { a: 'level', b: 'level' } }), log, 'two');
    expect(schema.fields[0].type).toMatchObject({ type: 'enum', name: 'LogLevel', namespace: 'vigil.telemetry' });
    expect(schema.fields[1].type).toBe('vigil.telemetry.LogLevel');
    expect(() => avro.Type.forSchema(schema as avro.Schema)).not.toThrow();
  });

  it('keep_input starts from the input, overrides in place, adds at the end, and drops', () => {
    const config = cfg({ keep_input: true, drop: ['tags', 'unit'], fields: { value: 'value / 100', ratio: 'true' } });
    const schema = outputSchema(config, metric, 'k');
    expect(schema.fields.map((f) => `${f.name}:${JSON.stringify(f.type)}`)).toEqual([
      'timestamp:{"type":"long","logicalType":"timestamp-millis"}',
      'name:"string"',
      'host:"string"',
      'value:"double"',
      'ratio:"boolean"',
    ]);
    const [out] = run(config, metric, [rec(sample)]);
    expect(out.value).toEqual({ timestamp: sample.timestamp, name: 'cpu.utilization', host: 'web-1', value: 0.9726, ratio: true });
  });

  it('tracks key fields through pass-through (renamed) fields', () => {
    expect(keyFields(cfg({ fields: { entity: 'host' } }), ['host'])).toEqual(['entity']);
    expect(keyFields(cfg({ fields: { entity: 'upper(host)' } }), ['host'])).toBeUndefined();
    expect(keyFields(cfg({ keep_input: true, fields: { v: 'value' } }), ['host'])).toEqual(['host']);
    expect(keyFields(cfg({ keep_input: true, fields: { host: 'lower(host)' } }), ['host'])).toBeUndefined();
    expect(keyFields(cfg({ keep_input: true, drop: ['host'] }), ['host'])).toBeUndefined();
    expect(keyFields(cfg({ fields: { a: 'host' } }), undefined)).toBeUndefined();
  });

  it('check() reports bad output names, drop without keep_input, and nothing to output', () => {
    const issues = issuesOf(cfg({ fields: { 'bad-name': 'host', ok: 'host' }, drop: ['host'] }), metric);
    expect(issues).toEqual([
      { path: ['drop'], message: "'drop' only applies with keep_input: true", code: 'INVALID_VALUE' },
      { path: ['fields', 'bad-name'], at: 'key', code: 'INVALID_VALUE', message: "output field name 'bad-name' is not a valid Avro name (letters, digits and _, not starting with a digit)" },
    ]);
    expect(issuesOf(cfg({}), metric).map((i) => i.message)).toEqual(["map needs 'fields' (or keep_input: true)"]);
  });

  describe('with schema:', () => {
    const base = {
      id: 'host',
      timestamp: 'timestamp',
      rule: '"cpu-hot"',
      entity: 'host',
      summary: '"CPU at " + string(round(value, 1)) + "%"',
    };

    it('outputs the target schema, filling defaults and widening numbers', () => {
      const config = cfg({ schema: 'vigil.alerting.Alert', fields: { ...base, value: 'value', threshold: '90', severity: 'value > 95 ? "CRITICAL" : "WARNING"' } });
      expect(issuesOf(config, metric)).toEqual([]);
      expect(outputSchema(config, metric)).toEqual(alert);
      const [out] = run(config, metric, [rec(sample)]);
      expect(out.value).toEqual({
        id: 'web-1',
        timestamp: sample.timestamp,
        rule: 'cpu-hot',
        entity: 'web-1',
        category: 'UNCLASSIFIED',
        severity: 'CRITICAL',
        priority: 3,
        summary: 'CPU at 97.3%',
        value: 97.26,
        threshold: 90,
        labels: {},
        status: 'FIRING',
        starts_at: null,
        ends_at: null,
        annotations: {},
      });
      const type = avro.Type.forSchema(alert as avro.Schema);
      expect(type.isValid(out.value)).toBe(true);
      expect(Object.isFrozen(out.value.labels)).toBe(true);
    });

    it('refuses literals that are not enum symbols, narrowing, null, unknown and missing fields', () => {
      const config = cfg({
        schema: 'vigil.alerting.Alert',
        fields: { id: 'host', timestamp: 'timestamp', rule: '"r"', entity: 'unit', severity: '"MAJOR"', priority: 'value', bogus: '1' },
      });
      expect(issuesOf(config, metric).map((i) => [i.path.join('.'), i.message])).toEqual([
        ['fields.bogus', "vigil.alerting.Alert has no field 'bogus' (it has: id, timestamp, rule, entity, category, severity, priority, summary, value, threshold, labels, status, starts_at, ends_at, annotations)"],
        ['fields.entity', "field 'entity' of vigil.alerting.Alert is string, but the expression is string | null: the value may be null but string is not nullable"],
        ['fields.severity', "field 'severity' of vigil.alerting.Alert is enum vigil.alerting.AlertSeverity, but the expression is string: 'MAJOR' is not a symbol of enum vigil.alerting.AlertSeverity (INFO, WARNING, ERROR, CRITICAL)"],
        ['fields.priority', "field 'priority' of vigil.alerting.Alert is int, but the expression is double: double does not fit int"],
        ['fields', "field 'summary' of vigil.alerting.Alert (string) has no default: set it in 'fields'"],
      ]);
    });

    it('checks computed strings against enum symbols and longs against the int range per record', () => {
      const config = cfg({ schema: 'vigil.alerting.Alert', fields: { ...base, severity: 'upper(tags.sev ?? "warning")', priority: 'round(value / 10)' } });
      expect(issuesOf(config, metric)).toEqual([]);
      const [ok] = run(config, metric, [rec(sample)]);
      expect(ok.value).toMatchObject({ severity: 'WARNING', priority: 10 });
      expect(() => run(config, metric, [rec({ ...sample, tags: { sev: 'major' } })])).toThrow("map: field 'severity': 'MAJOR' is not a symbol of vigil.alerting.AlertSeverity");
      expect(() => run(config, metric, [rec({ ...sample, value: 1e12 })])).toThrow("map: field 'priority': 100000000000 is out of the int range");
    });

    it('keep_input fills same-named fields from the input', () => {
      const config = cfg({ schema: 'vigil.alerting.Alert', keep_input: true, fields: { id: 'host', rule: '"r"', entity: 'host', summary: 'name' } });
      expect(issuesOf(config, metric)).toEqual([]);
      const [out] = run(config, metric, [rec(sample)]);
      expect(out.value).toMatchObject({ timestamp: sample.timestamp, value: 97.26 });
    });

    it('reports an unknown target schema', () => {
      expect(issuesOf(cfg({ schema: 'nope.Nope', fields: { a: 'host' } }), metric)).toEqual([
        { path: ['schema'], message: "unknown schema 'nope.Nope'", code: 'UNKNOWN_SCHEMA' },
      ]);
    });
  });

  it('keeps record keys unchanged (including null)', () => {
    const out = run(cfg({ fields: { h: 'host' } }), metric, [rec(sample, null), rec(sample, 'k')]);
    expect(out.map((r) => r.key)).toEqual([null, 'k']);
  });
});
