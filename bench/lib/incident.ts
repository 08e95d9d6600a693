// Alert storms for the incident operator: a generated service graph, failures injected at one
// service that cascade to the services depending on it (each dependent with some probability,
// after a propagation delay, and alerting repeatedly while affected), with unrelated noise alerts
// throughout; the alerts go through the operator (in-process, event time) with its default
// parameters, and the incidents that come out are compared with what was injected:
// - alert reduction: alerts in / incidents out (closed ones; merged ones are part of another);
// - root-cause top-1 accuracy: storms whose incident (the one holding most of the storm's
//   services) names the injected service as root; beside it the same for "the first service to
//   alert is the cause", the guess of grouping by time alone;
// - storms split over several incidents, and noise alerts grouped into a storm's incident.
import { operatorRegistry } from '../../operators/registry.ts';
import { TestDriver } from '../../runtime/test-driver.ts';
import { parseTopology } from '../../topology/loader.ts';
import { planTopology } from '../../topology/plan.ts';
import { prng } from '../../connectors/telemetry-generator.ts';

export interface StormOptions {
  /** Services in the graph (default 80). */
  services: number;
  /** Failures injected, one at a time, an hour apart (default 200). */
  storms: number;
  /** Probability that a dependent of an affected service is affected too (default 0.7). */
  spread: number;
  /** Noise alerts per hour at random services (default 6). */
  noisePerHour: number;
  seed: number;
}

export const DEFAULT_STORMS: StormOptions = { services: 80, storms: 200, spread: 0.7, noisePerHour: 6, seed: 1 };

export interface StormResult {
  options: StormOptions;
  alerts: number;
  noiseAlerts: number;
  incidents: number;
  reduction: number;
  /** Services alerting per storm, on average. */
  servicesPerStorm: number;
  rootTop1: number;
  firstAlertTop1: number;
  /** Storms whose services ended up in more than one incident. */
  split: number;
  /** Noise alerts grouped into a storm's incident. */
  noiseInStorms: number;
  /** Wall time of the operator's run, ms (alerts/s below). */
  runMs: number;
  alertsPerSec: number;
}

interface Alert {
  t: number;
  entity: string;
  storm: number | null;
}

/** A layered service graph: each service depends on 1 to 3 services of the layers below it. */
export function serviceGraph(n: number, rand: () => number): Map<string, string[]> {
  const layers = 5;
  const names = Array.from({ length: n }, (_, i) => `svc-${String(i).padStart(3, '0')}`);
  // Shuffle the names so that nothing in a name tells its layer.
  for (let i = names.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [names[i], names[j]] = [names[j]!, names[i]!];
  }
  const layerOf = (i: number): number => Math.min(layers - 1, Math.floor((i / n) * layers));
  const byLayer: string[][] = Array.from({ length: layers }, () => []);
  names.forEach((s, i) => byLayer[layerOf(i)]!.push(s));
  const graph = new Map<string, string[]>();
  names.forEach((s, i) => {
    const l = layerOf(i);
    const deps = new Set<string>();
    if (l < layers - 1) {
      const k = 1 + Math.floor(rand() * 3);
      for (let j = 0; j < k; j++) {
        const below = rand() < 0.8 || l === layers - 2 ? l + 1 : l + 2;
        const pool = byLayer[below]!;
        deps.add(pool[Math.floor(rand() * pool.length)]!);
      }
    }
    graph.set(s, [...deps]);
  });
  return graph;
}

/** The alerts of the storms and the noise, in event-time order. */
export function stormAlerts(graph: Map<string, string[]>, o: StormOptions, rand: () => number): { alerts: Alert[]; roots: string[]; affected: Array<Set<string>> } {
  const dependents = new Map<string, string[]>();
  for (const [s, deps] of graph) for (const d of deps) dependents.set(d, [...(dependents.get(d) ?? []), s]);
  const services = [...graph.keys()];
  const withDependents = services.filter((s) => (dependents.get(s)?.length ?? 0) > 0);
  const alerts: Alert[] = [];
  const roots: string[] = [];
  const affected: Array<Set<string>> = [];
  const HOUR = 3_600_000;
  const uniform = (a: number, b: number): number => a + rand() * (b - a);
  const burst = (entity: string, from: number, until: number, storm: number | null): void => {
    for (let t = from; t <= until; t += 30_000 + Math.floor(rand() * 5000)) alerts.push({ t: Math.round(t), entity, storm });
  };
  for (let k = 0; k < o.storms; k++) {
    const t0 = k * HOUR + 10 * 60_000;
    const root = withDependents[Math.floor(rand() * withDependents.length)]!;
    roots.push(root);
    // When the failure reaches each service (the root at t0), then when that service alerts.
    const reached = new Map<string, number>([[root, t0]]);
    const queue = [root];
    while (queue.length > 0) {
      const s = queue.shift()!;
      for (const d of dependents.get(s) ?? [])
        if (!reached.has(d) && rand() < o.spread) {
          reached.set(d, reached.get(s)! + uniform(15_000, 90_000));
          queue.push(d);
        }
    }
    affected.push(new Set(reached.keys()));
    for (const [s, at] of reached) {
      // Detection delay: the root's own detector is not always the first to notice.
      const onset = at + uniform(0, s === root ? 150_000 : 60_000);
      burst(s, onset, onset + uniform(2 * 60_000, 10 * 60_000), k);
    }
  }
  // Noise: short bursts at random services, any time, storms included.
  const span = o.storms * HOUR;
  const noise = Math.round((o.noisePerHour * span) / HOUR);
  for (let i = 0; i < noise; i++) {
    const t = uniform(0, span);
    burst(services[Math.floor(rand() * services.length)]!, t, t + uniform(0, 60_000), null);
  }
  alerts.sort((a, b) => a.t - b.t);
  return { alerts, roots, affected };
}

function topology(graph: Map<string, string[]>): string {
  const deps = [...graph].map(([s, d]) => `        ${s}: [${d.join(', ')}]`).join('\n');
  return `version: 1
name: incident-bench
sources:
  - { name: alerts, topic: alerts, schema: vigil.alerting.Alert, timestamp: timestamp, partitions: 1 }
operators:
  - name: grouped
    type: incident
    entity: entity
    wall_clock: false
    depends_on:
${deps}
sinks:
  - { name: incidents, from: grouped, topic: incidents }
`;
}

interface Closed {
  root: string;
  members: Set<string>;
  first: string;
  from: number;
  to: number;
}

export function runStorms(options: Partial<StormOptions> = {}): StormResult {
  const o = { ...DEFAULT_STORMS, ...options };
  const rand = prng(o.seed);
  const graph = serviceGraph(o.services, rand);
  const { alerts, roots, affected } = stormAlerts(graph, o, rand);
  const plan = planTopology(parseTopology(topology(graph), 'incident-bench.yaml', { operators: operatorRegistry }));
  const closed: Closed[] = [];
  const driver = new TestDriver(plan, {
    retain: false,
    listener: {
      sink(_sink, r) {
        const v = r.value as { status: string; root: string; members: Array<{ entity: string }>; opened_at: number; updated_at: number };
        if (v.status === 'closed') closed.push({ root: v.root, members: new Set(v.members.map((m) => m.entity)), first: v.members[0]!.entity, from: v.opened_at, to: v.updated_at });
      },
    },
  });
  const started = performance.now();
  alerts.forEach((a, i) => {
    driver.pipe('alerts', { id: `a${i}`, timestamp: a.t, rule: 'detector', entity: a.entity, summary: 'anomalous', labels: {} });
  });
  driver.endOfInput();
  const runMs = performance.now() - started;

  let rootHits = 0;
  let firstHits = 0;
  let split = 0;
  const stormIncident = new Set<Closed>();
  const span = new Map<number, { from: number; to: number }>();
  for (const a of alerts)
    if (a.storm !== null) {
      const s = span.get(a.storm);
      if (s === undefined) span.set(a.storm, { from: a.t, to: a.t });
      else s.to = a.t;
    }
  for (let k = 0; k < o.storms; k++) {
    const { from, to } = span.get(k)!;
    // The incidents holding the storm's alerts: a storm's service, signalling during the storm.
    const inStorm = closed.filter((c) => c.from <= to && c.to >= from && [...c.members].some((m) => affected[k]!.has(m)));
    if (inStorm.length === 0) continue;
    if (inStorm.length > 1) split++;
    const best = inStorm.reduce((a, b) => ([...b.members].filter((m) => affected[k]!.has(m)).length > [...a.members].filter((m) => affected[k]!.has(m)).length ? b : a));
    stormIncident.add(best);
    if (best.root === roots[k]) rootHits++;
    if (best.first === roots[k]) firstHits++;
  }
  const noise = alerts.filter((a) => a.storm === null);
  const noiseInStorms = noise.filter((a) => [...stormIncident].some((c) => c.members.has(a.entity) && a.t >= c.from && a.t <= c.to && !affected[Math.floor(a.t / 3_600_000)]?.has(a.entity))).length;
  return {
    options: o,
    alerts: alerts.length,
    noiseAlerts: noise.length,
    incidents: closed.length,
    reduction: alerts.length / Math.max(1, closed.length),
    servicesPerStorm: affected.reduce((n, s) => n + s.size, 0) / o.storms,
    rootTop1: rootHits / o.storms,
    firstAlertTop1: firstHits / o.storms,
    split,
    noiseInStorms,
    runMs,
    alertsPerSec: alerts.length / (runMs / 1000),
  };
}

export function stormMarkdown(r: StormResult): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;
  return [
    `Alert storms: ${r.options.storms} failures injected in a graph of ${r.options.services} services (spread ${r.options.spread}, ${r.options.noisePerHour} noise alerts/h, seed ${r.options.seed}); incident operator with its defaults (window 5m, max_hops 2, quiet 10m)`,
    '',
    '| measure | value |',
    '|---|---:|',
    `| alerts in (of them noise) | ${r.alerts} (${r.noiseAlerts}) |`,
    `| services alerting per storm | ${r.servicesPerStorm.toFixed(1)} |`,
    `| incidents out | ${r.incidents} |`,
    `| alert reduction (alerts / incident) | ${r.reduction.toFixed(1)} |`,
    `| root cause top-1 accuracy | ${pct(r.rootTop1)} |`,
    `| ... "first to alert is the cause" | ${pct(r.firstAlertTop1)} |`,
    `| storms split over several incidents | ${r.split} |`,
    `| noise alerts grouped into a storm's incident | ${r.noiseInStorms} of ${r.noiseAlerts} |`,
    `| operator throughput (in-process) | ${Math.round(r.alertsPerSec)} alerts/s |`,
    '',
  ].join('\n');
}
