// `vigil plan --diff OLD NEW`: per operator, what deploying NEW over OLD's state does, and the
// topics that appear or go; exit code 2 when a deploy would be refused.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffPlans } from '../../cli/plan.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-plan-'));

function file(name: string, window: string, aggregations: string, extra = ''): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    `version: 1
name: shop
sources:
  - { name: metrics, topic: shop.in, schema: vigil.telemetry.MetricSample, partitions: 2 }
operators:
  - name: agg
    type: aggregate
    from: metrics
    group_by: [host]
    window: ${window}
    aggregations:
${aggregations}
${extra}
sinks:
  - { name: out, from: agg, topic: shop.out }
`,
  );
  return path;
}

function diff(a: string, b: string): { code: number; out: string[] } {
  const out: string[] = [];
  const code = diffPlans(a, b, {}, { out: (l) => out.push(l), err: (l) => out.push(`ERR ${l}`) });
  return { code, out };
}

const TUMBLING = '{ type: tumbling, size: 1m }';
const COUNT = '      total: { fn: count }';
const old = file('old', TUMBLING, COUNT);

describe('vigil plan --diff', () => {
  it('count -> sum under the same name: incompatible, exit 2', () => {
    const r = diff(old, file('sum', TUMBLING, '      total: { fn: sum, field: value }'));
    expect(r.out).toContain('  agg  state incompatible: refused unless started with --reset-state: store windows: slot count -> slot sum:value');
    expect(r.out).toContain('vigil run would refuse to start: deploy with --reset-state agg to drop that state, or keep the old layout');
    expect(r.code).toBe(2);
  });

  it('an aggregation added at the end: migrated, exit 0', () => {
    const r = diff(old, file('added', TUMBLING, `${COUNT}\n      peak: { fn: max, field: value }`));
    expect(r.out).toContain('  agg  state migrated: store windows: slot max:value added, old values read by Avro resolution');
    expect(r.out).toContain('  unchanged');
    expect(r.code).toBe(0);
  });

  it('an aggregation added before an existing one moves the slots: incompatible', () => {
    const r = diff(old, file('before', TUMBLING, `      peak: { fn: max, field: value }\n${COUNT}`));
    expect(r.out.join('\n')).toContain('store windows: slot count -> slot max:value');
    expect(r.code).toBe(2);
  });

  it('tumbling -> session: the window store would be dropped; topics appear and go', () => {
    const r = diff(old, file('session', '{ type: session, gap: 1m }', COUNT));
    expect(r.out).toContain('  agg  state incompatible: refused unless started with --reset-state: store windows removed (its state would be dropped); store sessions added (starts empty)');
    expect(r.out).toContain('  + shop-agg-sessions-changelog');
    expect(r.out).toContain('  - shop-agg-windows-changelog (no longer used; not deleted)');
    expect(r.code).toBe(2);
  });

  it('the same file: kept; a stateless operator added: no state verdict for it, its topics listed', () => {
    expect(diff(old, old)).toEqual({ code: 0, out: [`state (${old} -> ${old}):`, '  agg  state kept', 'topics:', '  unchanged'] });
    const r = diff(old, file('filter', TUMBLING, COUNT, '  - { name: hot, type: filter, from: metrics, where: value > 90 }\n'));
    expect(r.out).toContain('  agg  state kept');
    expect(r.code).toBe(0);
  });

  it('an invalid file: its diagnostics, exit 1', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nname: shop\nsources: [\n');
    const r = diff(old, bad);
    expect(r.code).toBe(1);
    expect(r.out.some((l) => l.startsWith(`ERR ${bad}:`))).toBe(true);
  });
});
