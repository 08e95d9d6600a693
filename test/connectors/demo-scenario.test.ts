// The demo's monitoring loop, in-process: the demo topology over the demo scenario's telemetry (two
// 25-minute cycles of injected incidents) catches every injected incident, names the cascade's
// root, warns of the disk before it is full, raises (almost) no false alerts, and notifies each
// incident once when it starts and once when it is over (the alerts come back to the router
// through the alerts topic, as they do on Kafka).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEMO_CYCLE, DEMO_RULES, DemoScenario, demoSummary, scoreDemo } from '../../connectors/demo-scenario.ts';
import type { Observed } from '../../connectors/demo-scenario.ts';
import { DEMO_TOPOLOGY } from '../../cli/demo.ts';
import { TestDriver } from '../../runtime/test-driver.ts';
import { planYaml } from '../helpers/pipeline.ts';

const T0 = 1_700_000_000_000;

function run(seed: number, ticks: number) {
  const scenario = new DemoScenario(T0, seed);
  const observed: Observed = { alerts: [], incidents: [], notifications: [] };
  const driver = new TestDriver(planYaml(readFileSync(DEMO_TOPOLOGY, 'utf8')), {
    retain: false,
    listener: {
      sink(sink, r) {
        if (sink === 'incidents') observed.incidents.push({ ...(r.value as unknown as Observed['incidents'][number]), timestamp: r.timestamp });
        else if (sink === 'anomaly-alerts' || sink === 'disk-alerts') observed.alerts.push(r.value as unknown as Observed['alerts'][number]);
        else if (sink === 'notifications') observed.notifications.push(r.value as unknown as Observed['notifications'][number]);
      },
    },
  });
  let latest = 0;
  while (scenario.ticks < ticks) {
    const r = scenario.next();
    driver.pipe('metrics', r.value, { key: r.key });
    latest = r.value.timestamp;
  }
  return { score: scoreDemo(scenario.truth(), observed, latest), observed };
}

describe('the demo scenario through the demo topology', () => {
  it.each([1, 2, 3])('seed %i: every injected incident is caught, the cascade as one incident rooted at db', (seed) => {
    const { score, observed } = run(seed, 2 * DEMO_CYCLE + 60);
    const complete = score.outcomes.filter((o) => o.complete);
    expect(complete.map((o) => o.truth.kind).sort()).toEqual(['cascade', 'cascade', 'disk leak', 'disk leak', 'level shift', 'level shift']);
    for (const o of complete) expect(o.caught, `${o.truth.kind} at ${o.truth.start}`).toBe(true);
    for (const o of complete.filter((x) => x.truth.kind === 'cascade')) expect(o.incident!.entities).toBe(5);
    for (const o of complete.filter((x) => x.truth.kind === 'disk leak')) expect(o.earlyMs!).toBeGreaterThan(5 * 60_000);
    expect(score.falseFiring).toBeLessThanOrEqual(2);
    expect(score.falseIncidents).toBeLessThanOrEqual(1);
    // One alert per onset and per recovery, not one per anomalous sample.
    const samples = observed.incidents.filter((i) => i.status === 'closed').reduce((n, i) => n + i.signals, 0);
    expect(observed.alerts.filter((a) => a.rule === DEMO_RULES.anomaly).length).toBeLessThan(samples / 4);
    // One notification per injected incident when it starts, one when it is over.
    for (const o of complete) expect(o.notified, `${o.truth.kind} at ${o.truth.start}`).toEqual({ firing: 1, resolved: 1 });
    const started = score.outcomes.length;
    expect(score.notifications.firing).toBeLessThanOrEqual(started + score.falseFiring);
    const lines = demoSummary(score, T0);
    expect(lines[0]).toBe(`[vigil] ground truth: ${score.outcomes.filter((o) => o.caught).length} of ${score.outcomes.filter((o) => o.complete || o.caught).length} injected incidents caught`);
  });

  it('scores a topology that raises nothing as catching nothing', () => {
    const scenario = new DemoScenario(T0, 1);
    while (scenario.ticks < DEMO_CYCLE + 40) scenario.next();
    const score = scoreDemo(scenario.truth(), { alerts: [], incidents: [], notifications: [] }, scenario.timeOf(DEMO_CYCLE + 40));
    expect(score.outcomes.filter((o) => o.complete).length).toBe(3);
    expect(score.outcomes.some((o) => o.caught)).toBe(false);
    expect(demoSummary(score, T0).filter((l) => l.includes('MISSED')).length).toBe(3);
  });
});
