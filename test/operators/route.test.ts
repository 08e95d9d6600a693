// route beyond the topology tests: what it refuses (located), its outputs and partitioning, and
// Alertmanager's routing-tree semantics on their own.
import { describe, expect, it } from 'vitest';
import { routingLabels } from '../../kernel/labels.ts';
import { TestDriver } from '../../runtime/test-driver.ts';
import { planYamlBuiltin, refusal } from '../helpers/topology.ts';

const INVENTORY = '  - { name: inventory, topic: inventory, schema: vigil.inventory.Entity, table: true, key: [entity] }\n';
const topology = (route: string, source = 'schema: vigil.alerting.Alert, partitions: 1', more = '') => `version: 1
name: app
sources:
  - { name: alerts, topic: alerts, timestamp: timestamp, ${source} }
${more}operators:
  - name: notify
    type: route
    wall_clock: false
${route}
`;

describe('route config', () => {
  it('refuses bad matchers, matchers on the root, a missing root receiver, the receiver name out and bad group_by labels, each located', () => {
    const out = refusal(
      topology(`    route:
      matchers: ['a="b"']
      group_by: [alertname, "a-b"]
      routes:
        - matchers: ['severity==critical', 'x=~"("']
          receiver: out
    inhibit_rules:
      - { source_matchers: ['a="1"'], target_matchers: ['b'], equal: ["9"] }`),
    );
    expect(out).toMatch(/test\.yaml:10:17: the root route takes every alert: it cannot have matchers/);
    expect(out).toMatch(/test\.yaml:10:7: the root route needs a receiver/);
    expect(out).toMatch(/test\.yaml:11:\d+: 'a-b' is not a label name/);
    expect(out).toMatch(/test\.yaml:13:\d+: the value of matcher 'severity==critical' must be quoted/);
    expect(out).toMatch(/test\.yaml:13:\d+: matcher 'x=~"\("': invalid regular expression/);
    expect(out).toMatch(/test\.yaml:14:\d+: 'out' is the output of every notification/);
    expect(out).toMatch(/test\.yaml:16:\d+: 'b' is not a matcher/);
    expect(out).toMatch(/test\.yaml:16:\d+: '9' is not a label name/);
  });

  it('reads Alert records only, and silences from a table of Silence rows', () => {
    expect(refusal(topology('    route: { receiver: chat }', 'schema: vigil.telemetry.MetricSample'))).toMatch(/route reads vigil\.alerting\.Alert records, but its input has vigil\.telemetry\.MetricSample/);
    expect(refusal(topology('    route: { receiver: chat }\n    silences: inventory', undefined, INVENTORY))).toMatch(/table 'inventory' has vigil\.inventory\.Entity rows, not vigil\.alerting\.Silence/);
    expect(refusal(topology('    route: { receiver: chat }\n    silences: silencez'))).toMatch(/silencez/);
  });

  it('declares an output per receiver besides the default and audit ones, and gathers its input', () => {
    const yaml = topology(`    route:
      receiver: chat
      routes: [{ matchers: ['severity="critical"'], receiver: pager }, { matchers: ['team="db"'], receiver: pager }]`, 'schema: vigil.alerting.Alert, partitions: 3');
    const plan = planYamlBuiltin(yaml);
    const node = plan.subtopologies.flatMap((s) => s.nodes).find((n) => n.name === 'notify')!;
    expect(node.outputs.map((o) => o.name)).toEqual(['out', 'audit', 'chat', 'pager']);
    expect(plan.subtopologies.find((s) => s.nodes.includes(node))!.partitions).toBe(1);
  });
});

describe('routing', () => {
  it('sees labels completed from the Alert fields, the labels winning', () => {
    expect(routingLabels({ rule: 'R', severity: 'CRITICAL', category: 'UNCLASSIFIED', priority: 2, entity: 'db', labels: { entity: 'db-1', x: '' } })).toEqual({
      alertname: 'R',
      severity: 'critical',
      priority: '2',
      entity: 'db-1',
    });
  });

  it("takes the first matching child unless it continues, and stays at the parent when no child matches (Alertmanager's Route.Match)", () => {
    const yaml = topology(`    route:
      receiver: default
      routes:
        - matchers: ['team="db"']
          receiver: db
          continue: true
          routes: [{ matchers: ['severity="critical"'], receiver: db-pager }]
        - matchers: ['team=~"db|web"']
          receiver: web
        - matchers: ['team="db"']
          receiver: never
      group_wait: 0s
sinks:
${['default', 'db', 'db-pager', 'web', 'never'].map((r) => `  - { name: ${r}, from: notify.${r}, topic: ${r} }`).join('\n')}
  - { name: all, from: notify, topic: all }`);
    const d = new TestDriver(planYamlBuiltin(yaml), { retain: true });
    const alert = (id: string, labels: Record<string, string>, severity = 'WARNING') => ({ id, timestamp: 0, starts_at: 0, rule: 'R', entity: id, severity, summary: 's', labels });
    d.pipe('alerts', alert('crit-db', { team: 'db' }, 'CRITICAL'));
    d.pipe('alerts', alert('warn-db', { team: 'db' }));
    d.pipe('alerts', alert('web', { team: 'web' }));
    d.pipe('alerts', alert('other', { team: 'ops' }));
    // group_wait 0: each group is notified with its first alert at once; what joins later waits for
    // the group's next tick (group_interval, 5 m), which a later alert's event time reaches.
    expect(d.output('web').map((n) => (n.value.alerts as Array<{ id: string }>).map((a) => a.id))).toEqual([['crit-db']]);
    d.pipe('alerts', { ...alert('later', { team: 'ops' }), timestamp: 300_000, starts_at: 300_000 });
    const got = (out: string) => d.output(out).flatMap((n) => (n.value.alerts as Array<{ id: string }>).map((a) => a.id));
    expect(got('db-pager')).toEqual(['crit-db']);
    expect(got('db')).toEqual(['warn-db']);
    expect(d.output('web').map((n) => (n.value.alerts as Array<{ id: string }>).map((a) => a.id))).toEqual([['crit-db'], ['crit-db', 'warn-db', 'web']]);
    expect(got('default')).toEqual(['other', 'other', 'later']);
    expect(d.output('never')).toEqual([]);
    expect(d.output('all')).toHaveLength(d.output('db-pager').length + d.output('db').length + d.output('web').length + d.output('default').length);
  });
});

describe('time', () => {
  it('a firing group catches up to the watermark in one step, also at the end of a bounded input', () => {
    const d = new TestDriver(planYamlBuiltin(topology('    route: { receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1m, repeat_interval: 1h }')));
    const alert = { id: 'a', timestamp: 60_000, rule: 'R', entity: 'e', summary: 's', labels: {}, status: 'FIRING', starts_at: 1_000, ends_at: null, annotations: {} };
    d.pipe('alerts', alert, { key: 'a' });
    // Ten days later: one repeat, not one timer per minute in between.
    d.pipe('alerts', { ...alert, id: 'b', rule: 'S', timestamp: 60_000 + 10 * 86_400_000 }, { key: 'b' });
    const seqOfR = () => d.recorded('notify').filter((n) => String(n.value.group_key).includes('"R"')).map((n) => n.value.sequence);
    expect(seqOfR()).toEqual([1, 2]);
    // Stream time at its end: terminates, with one more repeat.
    d.endOfInput();
    expect(seqOfR()).toEqual([1, 2, 3]);
  });
});
