// alert beyond the topology tests: what the rule refuses (located), how its input is partitioned,
// classification, and one alert per fingerprint over many samples and series.
import { describe, expect, it } from 'vitest';
import { classify } from '../../operators/alert.ts';
import { fingerprint } from '../../kernel/labels.ts';
import { repartitionTopicName } from '../../topology/plan.ts';
import { TestDriver } from '../../runtime/test-driver.ts';
import { planYamlBuiltin, refusal } from '../helpers/topology.ts';

const topology = (rule: string, source = 'key: [host], partitions: 4') => `version: 1
name: app
sources:
  - { name: metrics, topic: metrics, schema: vigil.telemetry.MetricSample, timestamp: timestamp, ${source} }
operators:
  - name: rule
    type: alert
${rule}
sinks:
  - { name: out, from: rule, topic: alerts }
`;

describe('alert config', () => {
  it('refuses bad label names, the alertname label, non-scalar labels and broken annotation templates, each located', () => {
    const out = refusal(
      topology(`    condition: value > 1
    labels: { "9x": host, alertname: name, tags: tags, ok: host }
    annotations: { summary: "{host", "a-b": x }`),
    );
    expect(out).toMatch(/test\.yaml:9:15: .*'9x' is not a label name/);
    expect(out).toMatch(/test\.yaml:9:27: .*the 'alertname' label is the rule's alertname/);
    expect(out).toMatch(/test\.yaml:9:\d+: .*a label value must be a string, number or boolean, but 'tags' is map/);
    expect(out).toMatch(/test\.yaml:10:\d+: .*unterminated '\{' in annotation 'summary'/);
    expect(out).toMatch(/'a-b' is not an annotation name/);
    expect(refusal(topology('    condition: value'))).toMatch(/test\.yaml:8:16: .*boolean/);
    expect(refusal(topology('    condition: value > 1\n    value: host'))).toMatch(/'value' must be a number, but 'host' is string/);
  });

  it('refuses feedback without a threshold, from a table that is not one of Feedback rows, and actions twice the same', () => {
    const withTable = (schema: string) => `key: [host], partitions: 4 }\n  - { name: fb, topic: fb, schema: ${schema}, table: true, key: [id]`;
    expect(refusal(topology('    condition: value > 1\n    feedback: { table: fb }', withTable('vigil.alerting.Feedback')))).toMatch(/test\.yaml:10:\d+: feedback moves the threshold: set `threshold`/);
    expect(refusal(topology('    condition: value > 1\n    threshold: "1"\n    feedback: { table: fb }', withTable('vigil.alerting.Silence')))).toMatch(/table 'fb' has vigil\.alerting\.Silence rows, not vigil\.alerting\.Feedback/);
    expect(refusal(topology('    condition: value > 1\n    actions: [{ action: restart, target: "{host}" }, { action: restart, target: "{name}" }]'))).toMatch(/action 'restart' is requested twice on firing/);
    expect(refusal(topology('    condition: value > 1\n    actions: [{ action: restart, target: "{nope}" }]'))).toMatch(/nope/);
  });

  it('keeps an input keyed by a field its labels read; repartitions by the label fields otherwise; gathers a rule without labels', () => {
    const subs = (yaml: string) => planYamlBuiltin(yaml).subtopologies;
    expect(subs(topology('    condition: value > 1\n    labels: { host: host, metric: name }'))).toHaveLength(1);
    const by = subs(topology('    condition: value > 1\n    labels: { metric: name }'));
    expect(by).toHaveLength(2);
    expect(by[0]!.sinks).toMatchObject([{ topic: repartitionTopicName('app', 'rule'), keyFields: ['name'] }]);
    const gathered = subs(topology('    condition: value > 1'));
    expect(gathered).toHaveLength(2);
    expect(gathered[1]!.partitions).toBe(1);
    expect(subs(topology('    condition: value > 1', 'partitions: 1'))).toHaveLength(1);
  });
});

describe('classify', () => {
  it('derives the priority from severity and impact, lets known label values override, and caps it at 5', () => {
    const rule = { severity: 'warning' as const, category: undefined, impact: 'medium' as const };
    expect(classify(rule, {})).toEqual({ severity: 'warning', category: undefined, priority: 4 });
    expect(classify({ ...rule, severity: 'critical', impact: 'high' }, {}).priority).toBe(1);
    expect(classify({ ...rule, severity: 'info', impact: 'low' }, {}).priority).toBe(5);
    expect(classify(rule, { severity: 'CRITICAL', impact: 'high', category: 'Security' })).toEqual({ severity: 'critical', category: 'security', priority: 1 });
    expect(classify(rule, { severity: 'page', impact: 'huge' }).severity).toBe('warning');
    expect(classify(rule, { priority: '2' }).priority).toBe(2);
    expect(classify({ ...rule, category: 'business' }, { category: 'system' }).category).toBe('business');
  });
});

describe('alert over many series', () => {
  it('gives one FIRING and one RESOLVED per series whatever the number of samples, with the fingerprint as id', () => {
    const d = new TestDriver(planYamlBuiltin(topology('    condition: value > 50\n    for: 30s\n    labels: { host: host }')), { retain: true });
    const hosts = Array.from({ length: 50 }, (_, i) => `h${i}`);
    // Each host is hot for samples 10..39 (every 5 s), then cool.
    for (let s = 0; s < 60; s++) {
      for (const host of hosts) d.pipe('metrics', { timestamp: s * 5000, name: 'cpu', host, value: s >= 10 && s < 40 ? 90 : 10, unit: null, tags: {} }, { key: host });
    }
    const out = d.output('out');
    expect(out).toHaveLength(100);
    for (const host of hosts) {
      const mine = out.filter((r) => r.value.entity === host);
      const id = fingerprint({ alertname: 'rule', host, severity: 'warning' });
      expect(mine.map((r) => [r.key, r.value.status, r.timestamp, r.value.starts_at])).toEqual([
        [id, 'FIRING', 80_000, 80_000],
        [id, 'RESOLVED', 200_000, 80_000],
      ]);
    }
  });
});
