// The alert-storm benchmark of the incident operator: the generator injects what it says, and the
// operator, with its defaults, finds the injected roots far better than "the first to alert".
import { describe, expect, it } from 'vitest';
import { prng } from '../../connectors/telemetry-generator.ts';
import { DEFAULT_STORMS, runStorms, serviceGraph, stormAlerts } from '../../bench/lib/incident.ts';

describe('alert storms', () => {
  it('generates an acyclic layered graph and storms that cascade only to dependents of the root', () => {
    const rand = prng(7);
    const g = serviceGraph(40, rand);
    expect(g.size).toBe(40);
    // Acyclic: a depth-first walk upstream never meets the service it started from.
    for (const s of g.keys()) {
      const seen = new Set<string>();
      const walk = (x: string): void => {
        for (const d of g.get(x) ?? []) {
          expect(d).not.toBe(s);
          if (!seen.has(d)) {
            seen.add(d);
            walk(d);
          }
        }
      };
      walk(s);
    }
    const { alerts, roots, affected } = stormAlerts(g, { ...DEFAULT_STORMS, storms: 10 }, rand);
    for (let k = 0; k < 10; k++) {
      expect(affected[k]!.has(roots[k]!)).toBe(true);
      // Every affected service other than the root depends on another affected one.
      for (const s of affected[k]!) if (s !== roots[k]) expect(g.get(s)!.some((d) => affected[k]!.has(d))).toBe(true);
      expect(alerts.some((a) => a.storm === k && a.entity === roots[k])).toBe(true);
    }
    expect(alerts.every((a, i) => i === 0 || alerts[i - 1]!.t <= a.t)).toBe(true);
  });

  it('groups each storm into one incident and names the injected root far more often than the first alert does', () => {
    const r = runStorms({ storms: 30, seed: 3 });
    expect(r.incidents).toBeGreaterThan(0);
    expect(r.reduction).toBeGreaterThan(3);
    expect(r.split).toBeLessThanOrEqual(1);
    expect(r.rootTop1).toBeGreaterThanOrEqual(0.8);
    expect(r.rootTop1).toBeGreaterThan(r.firstAlertTop1 + 0.2);
  });
});
