// The Grafana dashboard and the Prometheus rules for Vigil itself (observability/) query metrics by
// name: every name they use must be one the engine exports, so they cannot drift from the code.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EngineMetrics } from '../runtime/metrics.ts';

const dir = fileURLToPath(new URL('../observability/', import.meta.url));
const dashboard = JSON.parse(readFileSync(`${dir}grafana/dashboards/vigil.json`, 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
const rules = parse(readFileSync(`${dir}prometheus/vigil-rules.yml`, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string; for: string; labels: { severity: string }; annotations: { summary: string } }> }> };

/** The metric names the engine exports, with the series names of histograms. */
async function exported(): Promise<Set<string>> {
  const m = new EngineMetrics();
  const names = new Set<string>();
  for (const x of await m.registry.getMetricsAsJSON()) {
    names.add(x.name);
    if (String(x.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${x.name}${s}`);
  }
  return names;
}

const used = (expr: string): string[] => [...expr.matchAll(/\bvigil_[a-z0-9_]+/g)].map((m) => m[0]);

describe('observability', () => {
  it('the dashboard queries only metrics the engine exports, and covers throughput, lag, watermarks, dead letters, restores and commits', async () => {
    const names = await exported();
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    for (const e of exprs) for (const n of used(e)) expect(names, `${n} in ${e}`).toContain(n);
    const all = exprs.flatMap(used);
    for (const n of ['vigil_operator_records_in_total', 'vigil_consumer_lag', 'vigil_task_watermark_ms', 'vigil_dead_lettered_total', 'vigil_restore_remaining_records', 'vigil_commit_seconds_bucket']) expect(all).toContain(n);
  });

  it("the rules for Vigil itself use exported metrics, and each has a duration, a severity and a summary", async () => {
    const names = await exported();
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.map((r) => r.alert).sort()).toEqual(['VigilConsumerLagGrowing', 'VigilDeadLetterRate', 'VigilDown', 'VigilNoCommits', 'VigilRestoreStuck']);
    for (const r of all) {
      for (const n of used(r.expr)) expect(names, `${n} in ${r.alert}`).toContain(n);
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(['warning', 'critical'], r.alert).toContain(r.labels.severity);
      expect(r.annotations.summary.length, r.alert).toBeGreaterThan(10);
    }
  });
});
