import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { OperatorContext, RecordSchema, StreamRecord } from '../../kernel/operator.ts';
import { filterOperator } from '../../operators/filter.ts';
import { getOperator } from '../../operators/registry.ts';
import { parseConfig } from '../../kernel/spec.ts';
import { compileOperator } from '../helpers/operators.ts';

const metric = JSON.parse(readFileSync(new URL('../../schemas/metric-sample.avsc', import.meta.url), 'utf8')) as RecordSchema;
const filter = (where: string, keyFields?: string[]) => compileOperator(filterOperator, { where }, [{ schema: metric, keyFields }], 'hot');
const create = (where: string) => filter(where).create();

function collect(): { ctx: OperatorContext; out: StreamRecord[] } {
  const out: StreamRecord[] = [];
  const c = { forward: (r: StreamRecord) => out.push(r) } as unknown as OperatorContext;
  return { ctx: c, out };
}

const rec = (value: number, name = 'cpu.utilization', tags: Record<string, string> = {}): StreamRecord => ({
  key: 'web-1',
  value: { timestamp: 1, name, host: 'web-1', value, unit: null, tags },
  timestamp: 1,
  headers: { h: '1' },
});

describe('filter', () => {
  it('is registered', () => {
    expect(getOperator('filter')).toBe(filterOperator);
  });

  it('forwards the same record objects for which the expression is true', () => {
    const op = create('value > 90 && name == "cpu.utilization"');
    const { ctx: c, out } = collect();
    const records = [rec(95), rec(50), rec(99, 'mem.used'), rec(91)];
    for (const r of records) op.process(r, c, 'in');
    expect(out).toHaveLength(2);
    expect(out[0]).toBe(records[0]);
    expect(out[1]).toBe(records[3]);
  });

  it('treats a null result as false (only true passes)', () => {
    const op = create('(tags.env ?? "") == "prod"');
    const { ctx: c, out } = collect();
    op.process(rec(1, 'x', { env: 'prod' }), c, 'in');
    op.process(rec(1, 'x'), c, 'in');
    expect(out).toHaveLength(1);
  });

  it('keeps the input schema and key partitioning', () => {
    expect(filter('true').outputs).toEqual([{ name: 'out', schema: metric, keyFields: undefined }]);
    expect(filter('true', ['host']).outputs[0]!.keyFields).toEqual(['host']);
  });

  it('requires a boolean expression', () => {
    const r = parseConfig(filterOperator.config, { where: 'value * 2' }, { what: "filter operator 'hot'", schema: metric });
    expect(r.issues.map((i) => i.message)).toEqual(["'where' must be a boolean expression, but 'value * 2' is double"]);
  });

  it('evaluates the compiled expression per record', () => {
    const op = create('value > 90 && (name == "cpu.utilization" || name in ["a", "b"])');
    let n = 0;
    const c = { forward: () => n++ } as unknown as OperatorContext;
    const records = Array.from({ length: 1000 }, (_, i) => rec(i % 100));
    for (let k = 0; k < 10; k++) for (const r of records) op.process(r, c, 'in');
    expect(n).toBe(900);
  });
});
