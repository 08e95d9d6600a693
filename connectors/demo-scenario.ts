// The demo's telemetry: the metrics of a small service graph in simulated time (one sample per
// series every 10 s of event time), with a daily-style traffic swing and noise, and incidents
// injected on a 25-minute cycle, each with its ground truth:
// - a level shift: the cache's latency jumps 2.5x for 4 minutes;
// - a slow leak: the database's disk fills by 0.6 % per sample, from 55 % to 91 % (it would be full,
//   at 95 %, a minute later), then is cleaned up;
// - a cascade: the database slows down 6x, then every service depending on it, directly or not,
//   slows down 3x, each a little later than what it depends on.
// scoreDemo() compares what the demo topology raised (alerts, incidents, notifications) with that
// truth: which incidents were caught and how late (or, for the leak, how early), how many
// notifications each gave (one when it started, one when it was over), which alerts were false.
import { prng } from './telemetry-generator.ts';

/** The service graph: service -> the services it depends on. */
export const DEMO_GRAPH: Readonly<Record<string, readonly string[]>> = {
  lb: ['web'],
  web: ['api'],
  api: ['db', 'cache'],
  worker: ['db', 'queue'],
  db: [],
  cache: [],
  queue: [],
};

/** Normal p99 latency per service (ms). */
const BASE_LATENCY: Record<string, number> = { lb: 40, web: 80, api: 60, worker: 200, db: 10, cache: 2, queue: 5 };

export const DEMO_TICK_MS = 10_000;
/** Ticks of one cycle of injected incidents (25 minutes of event time). */
export const DEMO_CYCLE = 150;
/** How long after an incident ends alerts about it still count as true (ticks). */
const MARGIN = 30;
const DISK_NORMAL = 55;
const DISK_FULL = 95;

export type TruthKind = 'level shift' | 'disk leak' | 'cascade';

export interface Truth {
  kind: TruthKind;
  /** The service at fault (the cascade's root). */
  entity: string;
  /** The services whose alerts it explains. */
  affected: string[];
  start: number;
  end: number;
  /** disk leak: when the disk would have reached DISK_FULL had it not been cleaned up. */
  fullAt?: number;
}

export interface DemoRecord {
  key: string;
  value: { timestamp: number; name: string; host: string; value: number; unit: string; tags: Record<string, string> };
  anomaly: boolean;
}

/** Cascade: ticks after the root's slowdown at which each service slows down. */
const CASCADE_DELAY: Record<string, number> = { db: 0, api: 2, worker: 3, web: 4, lb: 5 };
const PHASES = { shift: [35, 60], leak: [50, 110], cascade: [95, 125] } as const;

export class DemoScenario {
  private readonly rnd: () => number;
  private tick = 0;
  private queue: DemoRecord[] = [];
  private disk = DISK_NORMAL;
  readonly services = Object.keys(DEMO_GRAPH);

  constructor(
    readonly start: number,
    seed = 1,
  ) {
    this.rnd = prng(seed);
  }

  /** Ticks generated so far. */
  get ticks(): number {
    return this.tick;
  }

  /** Event time of a tick. */
  timeOf(tick: number): number {
    return this.start + tick * DEMO_TICK_MS;
  }

  private gauss(): number {
    const u = Math.max(this.rnd(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.rnd());
  }

  next(): DemoRecord {
    if (this.queue.length === 0) this.queue = this.samples(this.tick++);
    return this.queue.shift()!;
  }

  private samples(tick: number): DemoRecord[] {
    const c = tick % DEMO_CYCLE;
    const t = this.timeOf(tick);
    const traffic = 1 + 0.15 * Math.sin((2 * Math.PI * tick) / 360);
    const out: DemoRecord[] = [];
    for (const s of this.services) {
      let factor = traffic;
      let anomaly = false;
      if (s === 'cache' && c >= PHASES.shift[0] && c < PHASES.shift[1]) {
        factor *= 2.5;
        anomaly = true;
      }
      const delay = CASCADE_DELAY[s];
      if (delay !== undefined && c >= PHASES.cascade[0] + delay && c < PHASES.cascade[1]) {
        factor *= s === 'db' ? 6 : 3;
        anomaly = true;
      }
      const base = BASE_LATENCY[s]!;
      const v = base * factor * (1 + 0.05 * this.gauss());
      out.push({ key: s, value: { timestamp: t, name: 'http.latency.p99', host: s, value: Math.round(v * 100) / 100, unit: 'ms', tags: { service: s } }, anomaly });
    }
    if (c === PHASES.leak[1] || c === 0) this.disk = DISK_NORMAL;
    const leaking = c >= PHASES.leak[0] && c < PHASES.leak[1];
    if (leaking) this.disk += 0.6;
    out.push({ key: 'db', value: { timestamp: t, name: 'disk.used', host: 'db', value: Math.round((this.disk + 0.1 * this.gauss()) * 100) / 100, unit: 'percent', tags: { service: 'db' } }, anomaly: leaking });
    return out;
  }

  /** The incidents injected in ticks [0, upTo), as truth. */
  truth(upTo = this.tick): Truth[] {
    const out: Truth[] = [];
    for (let k = 0; k * DEMO_CYCLE < upTo; k++) {
      const at = (c: number) => this.timeOf(k * DEMO_CYCLE + c);
      out.push({ kind: 'level shift', entity: 'cache', affected: ['cache'], start: at(PHASES.shift[0]), end: at(PHASES.shift[1]) });
      const fullTick = PHASES.leak[0] + Math.ceil((DISK_FULL - DISK_NORMAL) / 0.6) - 1;
      out.push({ kind: 'disk leak', entity: 'db', affected: ['db'], start: at(PHASES.leak[0]), end: at(PHASES.leak[1]), fullAt: at(fullTick) });
      out.push({ kind: 'cascade', entity: 'db', affected: Object.keys(CASCADE_DELAY), start: at(PHASES.cascade[0]), end: at(PHASES.cascade[1]) });
    }
    return out.filter((x) => x.start < this.timeOf(upTo));
  }
}

/** The alerting rules of the demo topology. */
export const DEMO_RULES = { anomaly: 'LatencyAnomaly', disk: 'DiskFullSoon' } as const;

/** What the demo topology raised, as read back from its topics. */
export interface Observed {
  /** Alerts (vigil.alerting.Alert): FIRING and RESOLVED transitions of the latency anomaly and disk rules. */
  alerts: Array<{ timestamp: number; rule: string; entity: string; status: string; labels: Record<string, string> }>;
  /** Notifications of the route operator (vigil.alerting.Notification). */
  notifications: Array<{ timestamp: number; status: string; reason: string; alerts: Array<{ rule: string; entity: string; status: string }> }>;
  /** Incident records of the incident operator. */
  incidents: Array<{ timestamp: number; status: string; root: string; incident: string; entities: number; signals: number; members: Array<{ entity: string }>; merged_into: string | null }>;
}

export interface TruthOutcome {
  truth: Truth;
  /** Whether the incident is over (its end plus the margin lies before the latest event time seen). */
  complete: boolean;
  caught: boolean;
  /** Event time from the start of the incident to the first alert or incident naming it (ms). */
  lateMs?: number;
  /** disk leak: how long before the disk would have been full the warning came (ms). */
  earlyMs?: number;
  /** cascade: the incident's id, how many services it grouped, how many alerts it replaced. */
  incident?: { id: string; entities: number; signals: number };
  /** Notifications about it: firing (it started) and resolved (it is over). */
  notified: { firing: number; resolved: number };
}

export interface DemoScore {
  outcomes: TruthOutcome[];
  firing: number;
  falseFiring: number;
  incidents: number;
  falseIncidents: number;
  notifications: { firing: number; resolved: number };
}

export function scoreDemo(truth: readonly Truth[], observed: Observed, latest: number): DemoScore {
  const covers = (x: Truth, entity: string, t: number): boolean => x.affected.includes(entity) && t >= x.start && t <= x.end + MARGIN * DEMO_TICK_MS;
  // A notification is about an incident when one of its alerts of the incident's rule is about an
  // affected service, in its time (a resolved one up to two group intervals later than alerts count).
  const about = (x: Truth, status: string) =>
    observed.notifications.filter((n) => n.status === status && n.timestamp >= x.start && n.timestamp <= x.end + (MARGIN + (status === 'RESOLVED' ? 60 : 0)) * DEMO_TICK_MS && n.alerts.some((a) => a.rule === (x.kind === 'disk leak' ? DEMO_RULES.disk : DEMO_RULES.anomaly) && x.affected.includes(a.entity))).length;
  const notified = (x: Truth) => ({ firing: about(x, 'FIRING'), resolved: about(x, 'RESOLVED') });
  const firing = observed.alerts.filter((a) => a.rule === DEMO_RULES.anomaly && a.status === 'FIRING');
  const outcomes = truth.map((x): TruthOutcome => {
    const complete = x.end + MARGIN * DEMO_TICK_MS <= latest;
    if (x.kind === 'disk leak') {
      const w = observed.alerts.find((a) => a.rule === DEMO_RULES.disk && a.status === 'FIRING' && a.entity === x.entity && a.timestamp >= x.start && a.timestamp <= x.end);
      return { truth: x, complete, caught: w !== undefined, notified: notified(x), ...(w ? { lateMs: w.timestamp - x.start, earlyMs: x.fullAt! - w.timestamp } : {}) };
    }
    if (x.kind === 'cascade') {
      const inc = observed.incidents.find((i) => i.status !== 'closed' && i.root === x.entity && covers(x, x.entity, i.timestamp));
      // Its latest state, following merges into other incidents.
      let final = inc;
      for (let hops = 0; final !== undefined && hops < 100; hops++) {
        const id: string = final.incident;
        final = [...observed.incidents].reverse().find((i) => i.incident === id)!;
        if (final.status !== 'merged' || final.merged_into === null) break;
        const into = final.merged_into;
        final = observed.incidents.find((i) => i.incident === into) ?? final;
      }
      return { truth: x, complete, caught: inc !== undefined, notified: notified(x), ...(inc ? { lateMs: inc.timestamp - x.start, incident: { id: final!.incident, entities: final!.entities, signals: final!.signals } } : {}) };
    }
    const a = firing.find((f) => covers(x, f.entity, f.timestamp));
    return { truth: x, complete, caught: a !== undefined, notified: notified(x), ...(a ? { lateMs: a.timestamp - x.start } : {}) };
  });
  const opened = observed.incidents.filter((i) => i.status === 'open');
  return {
    outcomes,
    firing: firing.length,
    falseFiring: firing.filter((f) => !truth.some((x) => x.kind !== 'disk leak' && covers(x, f.entity, f.timestamp))).length,
    incidents: opened.length,
    falseIncidents: opened.filter((i) => !truth.some((x) => x.kind !== 'disk leak' && covers(x, i.members[0]!.entity, i.timestamp))).length,
    notifications: { firing: observed.notifications.filter((n) => n.status === 'FIRING').length, resolved: observed.notifications.filter((n) => n.status === 'RESOLVED').length },
  };
}

const minutes = (ms: number): string => (ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${(ms / 60_000).toFixed(1)} min`);

/** The ground-truth summary the demo prints. */
export function demoSummary(score: DemoScore, start: number): string[] {
  const lines: string[] = [];
  const done = score.outcomes.filter((o) => o.complete || o.caught);
  for (const o of done) {
    const at = minutes(o.truth.start - start);
    const what = `${o.truth.kind} at ${o.truth.entity}, injected at +${at}`;
    const n = o.notified;
    const notes = `; ${n.firing} notification${n.firing === 1 ? '' : 's'}${n.resolved > 0 ? `, ${n.resolved} resolved` : ''}`;
    if (!o.caught) lines.push(`  MISSED  ${what}`);
    else if (o.truth.kind === 'disk leak') lines.push(`  caught  ${what}: "disk full soon" ${minutes(o.earlyMs!)} before it would be full${notes}`);
    else if (o.truth.kind === 'cascade') lines.push(`  caught  ${what}: incident with root ${o.truth.entity} after ${minutes(o.lateMs!)}, ${o.incident!.entities} services and ${o.incident!.signals} anomalous samples in one incident${notes}`);
    else lines.push(`  caught  ${what}: anomaly after ${minutes(o.lateMs!)}${notes}`);
  }
  const caught = done.filter((o) => o.caught).length;
  lines.unshift(`[vigil] ground truth: ${caught} of ${done.length} injected incidents caught`);
  lines.push(`  false alerts: ${score.falseFiring} of ${score.firing} anomaly alerts; false incidents: ${score.falseIncidents} of ${score.incidents}; notifications: ${score.notifications.firing} firing, ${score.notifications.resolved} resolved`);
  return lines;
}
