import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { OperatorContext, RecordSchema, StreamRecord } from '../../operators/types.ts';
import { filterOperator } from '../../operators/filter.ts';
import { getOperator } from '../../operators/registry.ts';
import { parseConfig } from '../../topology/spec.ts';

const metric = JSON.parse(readFileSync(new URL('../../schemas/metric-sample.avsc', import.meta.url), 'utf8')) as RecordSchema;
const ctx = { input: metric, inputs: [metric], name: 'hot' };

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
    const op = filterOperator.create({ where: 'value > 90 && name == "cpu.utilization"' }, ctx);
    const { ctx: c, out } = collect();
    const records = [rec(95), rec(50), rec(99, 'mem.used'), rec(91)];
    for (const r of records) op.process(r, c);
    expect(out).toHaveLength(2);
    expect(out[0]).toBe(records[0]);
    expect(out[1]).toBe(records[3]);
  });

  it('treats a null result as false (only true passes)', () => {
    const op = filterOperator.create({ where: '(tags.env ?? "") == "prod"' }, ctx);
    const { ctx: c, out } = collect();
    op.process(rec(1, 'x', { env: 'prod' }), c);
    op.process(rec(1, 'x'), c);
    expect(out).toHaveLength(1);
  });

  it('keeps the input schema and key partitioning', () => {
    expect(filterOperator.outputSchema({ where: 'true' }, ctx)).toBe(metric);
    expect(filterOperator.keyFields!({ where: 'true' }, [['host']])).toEqual(['host']);
    expect(filterOperator.keyFields!({ where: 'true' }, [undefined])).toBeUndefined();
  });

  it('requires a boolean expression', () => {
    const r = parseConfig(filterOperator.config, { where: 'value * 2' }, { what: "filter operator 'hot'", schema: metric });
    expect(r.issues.map((i) => i.message)).toEqual(["'where' must be a boolean expression, but 'value * 2' is double"]);
  });

  it('evaluates a million records quickly (compiled once to a closure tree)', () => {
    const op = filterOperator.create({ where: 'value > 90 && (name == "cpu.utilization" || name in ["a", "b"])' }, ctx);
    let n = 0;
    const c = { forward: () => n++ } as unknown as OperatorContext;
    const records = Array.from({ length: 1000 }, (_, i) => rec(i % 100));
    const t0 = performance.now();
    for (let k = 0; k < 1000; k++) for (const r of records) op.process(r, c);
    const ms = performance.now() - t0;
    expect(n).toBe(90_000);
    expect(ms).toBeLessThan(2000);
  });
});
