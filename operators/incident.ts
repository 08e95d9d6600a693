// incident: anomalies and alerts of entities linked in a dependency graph, close in time, become one
// incident with its members and a probable root cause (the most upstream anomalous entity), updated
// as members join and closed after a quiet period. The graph is declared in the topology or read
// from a table (a compacted topic of entities and what they depend on).
import type { ConfigIssue, KeyValueStore, OperatorContext, OperatorDefinition, OperatorInstance, StreamRecord, TableView, Timer } from '../kernel/operator.ts';
import { DEFAULT_INPUT, DEFAULT_OUTPUT, compiled, refused } from '../kernel/operator.ts';
import { compileExpression } from '../kernel/expr.ts';
import { describeTy, isStringLike, nonNull, recordTy } from '../kernel/avro-types.ts';
import { suggestion } from '../kernel/diagnostics.ts';
import { keyOfRecord, readPath, splitPaths } from '../kernel/keys.ts';
import { generatedSchemaName } from '../kernel/names.ts';
import type { AvroType, RecordSchema } from '../kernel/schema.ts';
import { unknownTable } from './lib/fields.ts';
import { AUDIT_OUTPUT, audit, auditSchema } from './lib/audit.ts';
import type { AuditKind } from './lib/audit.ts';
import { formatDuration } from '../kernel/spec.ts';

const INCIDENT_EVENT: Record<string, AuditKind> = { open: 'INCIDENT_OPENED', update: 'INCIDENT_UPDATED', merged: 'INCIDENT_MERGED', closed: 'INCIDENT_CLOSED' };

export interface IncidentConfig {
  entity: string;
  when?: string;
  depends_on?: Record<string, string[]>;
  graph?: string;
  graph_field: string;
  window: number;
  max_hops: number;
  quiet: number;
  scope?: string[];
  wall_clock: boolean;
  max_members: number;
}

/** One entity of an incident. */
interface Member {
  entity: string;
  first: number;
  last: number;
  signals: number;
}

/** An open incident, as stored (key: its id). */
interface Incident {
  id: string;
  scope: string | null;
  opened: number;
  last: number;
  signals: number;
  root: string;
  members: Member[];
}

const TS: AvroType = { type: 'long', logicalType: 'timestamp-millis' };

const STATE: AvroType = {
  type: 'record',
  name: 'IncidentState',
  namespace: 'vigil.state',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'scope', type: ['null', 'string'] },
    { name: 'opened', type: 'long' },
    { name: 'last', type: 'long' },
    { name: 'signals', type: 'long' },
    { name: 'root', type: 'string' },
    {
      name: 'members',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'IncidentMemberState',
          fields: [
            { name: 'entity', type: 'string' },
            { name: 'first', type: 'long' },
            { name: 'last', type: 'long' },
            { name: 'signals', type: 'long' },
          ],
        },
      },
    },
  ],
};

function outputSchema(fullname: string, opName: string): RecordSchema {
  const dot = fullname.lastIndexOf('.');
  const name = fullname.slice(dot + 1);
  return {
    type: 'record',
    name,
    namespace: fullname.slice(0, dot),
    doc: `Incidents of incident '${opName}': related anomalous entities and their probable root cause.`,
    fields: [
      { name: 'incident', type: 'string', doc: 'The incident id: the entity and time of its first signal (stable for its life).' },
      { name: 'status', type: 'string', doc: 'open (first signal), update (a member joined, the root changed, or another incident merged in), merged (absorbed by merged_into), closed (quiet for the quiet period).' },
      { name: 'scope', type: ['null', 'string'], doc: 'The scope (its fields\' values) the incident belongs to; null without scope.' },
      { name: 'root', type: 'string', doc: 'The probable root cause: the most upstream anomalous member (explaining most members; ties: earliest onset).' },
      { name: 'root_onset', type: TS, doc: "Time of the root's first signal." },
      { name: 'root_explains', type: 'int', doc: 'Members the root explains: itself and the members that depend on it, directly or not.' },
      { name: 'candidates', type: { type: 'array', items: 'string' }, doc: 'Every member with no anomalous member upstream of it (the root first): other possible causes.' },
      {
        name: 'members',
        type: {
          type: 'array',
          items: {
            type: 'record',
            name: `${name}Member`,
            fields: [
              { name: 'entity', type: 'string' },
              { name: 'first_seen', type: TS, doc: 'Its first signal in this incident.' },
              { name: 'last_seen', type: TS, doc: 'Its latest signal.' },
              { name: 'signals', type: 'long', doc: 'Its signals (anomalous records, alerts) so far.' },
              { name: 'depth', type: ['null', 'int'], doc: 'Dependency hops from it up to the root (0: the root); null when it does not depend on the root.' },
            ],
          },
        },
        doc: 'The members by first signal, at most max_members of them (the root always among them).',
      },
      { name: 'truncated', type: 'int', default: 0, doc: 'Members left out of members (beyond max_members).' },
      { name: 'entities', type: 'int', doc: 'Number of members.' },
      { name: 'signals', type: 'long', doc: 'Signals grouped into the incident so far (the alerts it replaces).' },
      { name: 'opened_at', type: TS, doc: 'Time of the first signal.' },
      { name: 'updated_at', type: TS, doc: 'Time of the latest signal.' },
      { name: 'closed_at', type: ['null', TS], doc: 'closed: latest signal + quiet; else null.' },
      { name: 'merged_into', type: ['null', 'string'], doc: 'merged: the incident that absorbed this one; else null.' },
      { name: 'trigger', type: ['null', 'string'], doc: 'The entity whose signal caused this record (null for closed).' },
    ],
  } as unknown as RecordSchema;
}

const DESCRIPTION = `
Groups signals (anomalous records from \`detect\`, alerts) of entities that are linked in a dependency graph and close
in time into incidents, and names the probable root cause of each: one incident to look at instead of an alert per
service of a cascade.

**Signals.** Each input record whose \`when\` holds (default: every record) is a signal of the entity named by its
\`entity\` field at the record's event time. Records where \`when\` is false are ignored; a null entity is dead-lettered.

**Graph.** \`depends_on\` declares it in the topology (entity -> the entities it depends on), or \`graph\` names a table
source (e.g. \`vigil.inventory.Entity\` rows from a CMDB's compacted topic) whose rows list, in \`graph_field\`, what
the row's entity depends on; the operator re-reads the table when it changes size and at most every 5 s otherwise.
If A depends on B, B is upstream of A: a failure of B shows up in A.

**Grouping.** A signal joins an open incident when one of its members is within \`max_hops\` links of the signal's
entity in the graph (either direction; the entity itself at 0 hops) and that member signalled within \`window\` of
the signal's time. A signal related to several open incidents merges them into the oldest (the others go out once
as \`merged\`). An unrelated signal opens a new incident. An entity not in the graph only groups with itself.

**Root cause.** Among the members, the candidates are those with no other member upstream of them. The root is the
candidate that explains most members (itself and the members depending on it, directly or not), ties broken by
the earliest first signal, then by name. A root that is not the first to alert (its own detector was slower than its
dependents') is still found, as long as it alerts within the window.

**Output** (key: the incident id; one record per change, not per signal): \`open\` at the first signal, \`update\`
when a member joins, the root changes or another incident merges in, \`merged\`, and \`closed\` once no member
signalled for \`quiet\` (event time; with \`wall_clock\`, also when the wall clock passes that time, as in
\`absence\`). Repeated signals of a member only count (\`signals\`). The timestamp is the signal's (closed: its time).

**Size.** An incident record lists at most \`max_members\` members (\`entities\` counts them all, \`truncated\` the ones
left out). The operator keeps an open incident's members in one store entry (about 40 bytes each): some 20,000
members fit in Kafka's default 1 MB record.

**Scope.** With \`scope\` fields (e.g. \`[region]\`), incidents only group signals with the same scope values, and the
input is partitioned by them, which spreads the work over tasks. Without it every signal may relate to any other, so
they all go to one task: the planner repartitions the input into a topic of one partition (unless everything
upstream already has one partition).
`.trim();

export const incidentOperator: OperatorDefinition<IncidentConfig> = {
  type: 'incident',
  category: 'analysis',
  summary: 'Groups anomalies and alerts of related entities (a dependency graph) into incidents with a probable root cause.',
  description: DESCRIPTION,
  outputs: [
    { name: DEFAULT_OUTPUT, description: 'Incident records: open, update, merged, closed, with members and root.' },
    { name: AUDIT_OUTPUT, description: '`vigil.alerting.AuditEvent` records: INCIDENT_OPENED, _UPDATED, _MERGED, _CLOSED, with what changed.' },
  ],
  config: {
    entity: { kind: 'field', description: 'The input field naming the entity a signal is about (a string: service, host).', examples: ['entity', 'service'] },
    when: { kind: 'expression', optional: true, returns: 'boolean', description: 'Which records are signals (default: all).', examples: ['anomalous', 'severity == "CRITICAL"'] },
    depends_on: {
      kind: 'map',
      optional: true,
      items: { kind: 'array', items: { kind: 'string', description: 'An entity.' }, description: 'What the entity depends on.' },
      description: 'The dependency graph, declared: entity -> the entities it depends on (upstream of it).',
      examples: [{ web: ['api'], api: ['db', 'cache'] }],
    },
    graph: { kind: 'string', optional: true, description: 'Instead of depends_on: a table source whose rows say what their entity depends on.', examples: ['cmdb'] },
    graph_field: { kind: 'string', default: 'depends_on', description: "The table row's field listing what its entity depends on (an array of strings)." },
    window: { kind: 'duration', default: '5m', min: 1, description: 'How close in time a signal must be to a related member to join its incident.' },
    max_hops: { kind: 'integer', default: 2, min: 0, max: 10, description: 'How many dependency links may separate two related entities (0: only the same entity).' },
    quiet: { kind: 'duration', default: '10m', min: 1, description: 'An incident closes when none of its members signalled for this long.' },
    scope: { kind: 'array', optional: true, min: 1, items: { kind: 'field', description: 'An input field.' }, description: 'Fields whose values separate incidents (the input is partitioned by them).', examples: [['region']] },
    wall_clock: { kind: 'boolean', default: true, description: 'Also close incidents when the wall clock passes their quiet deadline. Turn off for backtests on recorded data.' },
    max_members: { kind: 'integer', default: 100, min: 1, max: 100_000, description: 'Members listed in an incident record (the first by first signal, and the root); `entities` counts them all and `truncated` the ones left out, as Alertmanager\'s max_alerts.' },
  },
  examples: [
    {
      title: 'Anomalies of services grouped along a declared dependency graph',
      yaml: `sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
operators:
  - name: latency
    type: detect
    value: value
  - name: outages
    type: incident
    from: latency.anomalies
    entity: host
    depends_on:
      web: [api]
      api: [db, cache]
      worker: [db, queue]
    window: 5m
    quiet: 10m
sinks:
  - name: incidents
    from: outages
    topic: incidents
`,
    },
    {
      title: 'Alerts grouped along the dependencies of a CMDB table, per region',
      yaml: `sources:
  - name: alerts
    topic: alerts
    schema: vigil.alerting.Alert
    timestamp: timestamp
  - name: cmdb
    topic: cmdb.entities
    schema: vigil.inventory.Entity
    table: true
    key: [entity]
operators:
  - name: outages
    type: incident
    entity: entity
    when: severity == "CRITICAL" || severity == "ERROR"
    graph: cmdb
    scope: [labels.region]
sinks:
  - name: incidents
    from: outages
    topic: incidents
`,
    },
  ],
  compile(config, ctx) {
    const input = ctx.inputs[0]!;
    const issues: ConfigIssue[] = [];
    const inTy = recordTy(input.schema);
    const entityPath = config.entity.split('.');
    const entityField = entityPath.length === 1 ? inTy.byName.get(config.entity) : undefined;
    if (entityField !== undefined && !isStringLike(nonNull(entityField.ty))) issues.push({ path: ['entity'], message: `'${config.entity}' is ${describeTy(entityField.ty)}; an entity is a string or enum field` });
    if (config.depends_on === undefined && config.graph === undefined) issues.push({ path: [], code: 'MISSING_FIELD', message: 'incident needs a dependency graph: depends_on (declared) or graph (a table source)' });
    if (config.depends_on !== undefined && config.graph !== undefined) issues.push({ path: ['graph'], message: 'give the dependency graph once: depends_on (declared) or graph (a table source), not both' });
    if (config.graph !== undefined) {
      const t = ctx.table(config.graph);
      if (t === undefined) issues.push(unknownTable(ctx, config.graph, ['graph']));
      else {
        const f = recordTy(t.schema).byName.get(config.graph_field);
        const ty = f === undefined ? undefined : nonNull(f.ty);
        if (ty === undefined) issues.push({ path: ['graph_field'], message: `table '${t.name}' has no field '${config.graph_field}'${suggestion(config.graph_field, recordTy(t.schema).fields.map((x) => x.name))}` });
        else if (ty.k !== 'array' || !isStringLike(nonNull(ty.items))) issues.push({ path: ['graph_field'], message: `field '${config.graph_field}' of table '${t.name}' is ${describeTy(ty)}; it must be an array of strings` });
      }
    }
    const auditOut = auditSchema(ctx.resolveSchema, issues);
    if (issues.length > 0 || auditOut === undefined) return refused(issues);
    const when = config.when === undefined ? undefined : compileExpression(config.when, input.schema).evaluate;
    const settings: Settings = {
      entity: entityPath,
      when,
      declared: config.depends_on === undefined ? undefined : new Graph(Object.entries(config.depends_on)),
      graph: config.graph,
      graphField: config.graph_field,
      window: config.window,
      hops: config.max_hops,
      quiet: config.quiet,
      scope: config.scope === undefined ? undefined : splitPaths(config.scope),
      wall: config.wall_clock,
      maxMembers: config.max_members,
      name: ctx.name,
    };
    return compiled({
      outputs: [
        { name: DEFAULT_OUTPUT, schema: outputSchema(generatedSchemaName(ctx.name), ctx.name) },
        { name: AUDIT_OUTPUT, schema: auditOut },
      ],
      ...(config.scope !== undefined ? { partitionBy: { [DEFAULT_INPUT]: config.scope } } : { gather: [DEFAULT_INPUT] }),
      stores: [{ name: 'incidents', kind: 'kv', value: STATE }],
      ...(config.graph !== undefined ? { tables: [{ table: config.graph, mode: 'global' as const, input: DEFAULT_INPUT, keyFields: [config.entity] }] } : {}),
      create: () => new IncidentInstance(settings),
    });
  },
};

interface Settings {
  entity: string[];
  when: ((v: Record<string, unknown>) => unknown) | undefined;
  declared: Graph | undefined;
  graph: string | undefined;
  graphField: string;
  window: number;
  hops: number;
  quiet: number;
  scope: string[][] | undefined;
  wall: boolean;
  maxMembers: number;
  /** The operator's name (who changed the incident, in the audit). */
  name: string;
}

/** A dependency graph: what each entity depends on (up) and what depends on it (down). */
export class Graph {
  private readonly up = new Map<string, string[]>();
  private readonly down = new Map<string, string[]>();

  constructor(edges: Iterable<[string, readonly string[]]>) {
    for (const [entity, deps] of edges) {
      const ups = [...new Set(deps.filter((d) => d !== entity))];
      this.up.set(entity, ups);
      for (const d of ups) {
        const l = this.down.get(d);
        if (l === undefined) this.down.set(d, [entity]);
        else l.push(entity);
      }
    }
  }

  /** Entities within `hops` links of `from`, either direction, with their distance. */
  near(from: string, hops: number): Map<string, number> {
    const dist = new Map<string, number>([[from, 0]]);
    let frontier = [from];
    for (let d = 1; d <= hops && frontier.length > 0; d++) {
      const next: string[] = [];
      for (const e of frontier)
        for (const list of [this.up.get(e), this.down.get(e)])
          for (const n of list ?? [])
            if (!dist.has(n)) {
              dist.set(n, d);
              next.push(n);
            }
      frontier = next;
    }
    return dist;
  }

  private readonly upstreams = new Map<string, Map<string, number>>();

  /** Everything `from` depends on, directly or not, with the shortest number of links (kept: the graph does not change). */
  upstream(from: string): Map<string, number> {
    const known = this.upstreams.get(from);
    if (known !== undefined) return known;
    const dist = new Map<string, number>();
    let frontier = [from];
    for (let d = 1; frontier.length > 0; d++) {
      const next: string[] = [];
      for (const e of frontier)
        for (const n of this.up.get(e) ?? [])
          if (n !== from && !dist.has(n)) {
            dist.set(n, d);
            next.push(n);
          }
      frontier = next;
    }
    this.upstreams.set(from, dist);
    return dist;
  }
}

/** The root of a set of members, the candidates (root first) and each member's depth below the root. */
export function rootCause(members: readonly Member[], graph: Graph): { root: Member; candidates: string[]; explains: number; depth: Map<string, number> } {
  const names = new Set(members.map((m) => m.entity));
  const ups = new Map(members.map((m) => [m.entity, graph.upstream(m.entity)]));
  // In one pass over each member's upstream members: whether it is a candidate (no member upstream
  // of it, but for members on a cycle with it), and how many members each one explains.
  const explains = new Map<string, number>(members.map((m) => [m.entity, 1]));
  const candidates = members.filter((m) => {
    let candidate = true;
    for (const u of ups.get(m.entity)!.keys())
      if (names.has(u)) {
        explains.set(u, explains.get(u)! + 1);
        if (!ups.get(u)!.has(m.entity)) candidate = false;
      }
    return candidate;
  });
  const ranked = candidates.map((m) => ({ m, n: explains.get(m.entity)! }));
  ranked.sort((a, b) => b.n - a.n || a.m.first - b.m.first || (a.m.entity < b.m.entity ? -1 : a.m.entity > b.m.entity ? 1 : 0));
  const root = ranked[0]!;
  const depth = new Map<string, number>([[root.m.entity, 0]]);
  for (const m of members) {
    const d = ups.get(m.entity)!.get(root.m.entity);
    if (d !== undefined) depth.set(m.entity, d);
  }
  return { root: root.m, candidates: ranked.map((r) => r.m.entity), explains: root.n, depth };
}

/** The members an incident record lists: the first `max` by first signal, the root always among them. */
function listed(members: readonly Member[], root: Member, max: number): readonly Member[] {
  if (members.length <= max) return members;
  const first = members.slice(0, max);
  if (!first.includes(root)) first[max - 1] = root;
  return first;
}

/** How often a graph read from a table is read again when its size did not change (ms). */
const GRAPH_REFRESH_MS = 5000;

class IncidentInstance implements OperatorInstance {
  private incidents!: KeyValueStore<Incident>;
  /** "<scope>\u0000<entity>" -> id of the open incident the entity is a member of. */
  private readonly memberOf = new Map<string, string>();
  private table: TableView | undefined;
  private graph: Graph;
  private graphSize = -1;
  private graphAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly s: Settings) {
    this.graph = s.declared ?? new Graph([]);
  }

  open(ctx: OperatorContext): void {
    this.incidents = ctx.kv<Incident>('incidents');
    if (this.s.graph !== undefined) this.table = ctx.table(this.s.graph);
    for (const [, inc] of this.incidents.entries()) for (const m of inc.members) this.memberOf.set(`${inc.scope ?? ''}\u0000${m.entity}`, inc.id);
  }

  private unindex(inc: Incident): void {
    for (const m of inc.members) {
      const k = `${inc.scope ?? ''}\u0000${m.entity}`;
      if (this.memberOf.get(k) === inc.id) this.memberOf.delete(k);
    }
  }

  private currentGraph(ctx: OperatorContext): Graph {
    const t = this.table;
    if (t === undefined) return this.graph;
    const now = ctx.now();
    if (t.size !== this.graphSize || now - this.graphAt >= GRAPH_REFRESH_MS) {
      const edges: Array<[string, string[]]> = [];
      for (const [key, row] of t.entries()) {
        const deps = row[this.s.graphField];
        edges.push([key, Array.isArray(deps) ? deps.filter((d): d is string => typeof d === 'string') : []]);
      }
      this.graph = new Graph(edges);
      this.graphSize = t.size;
      this.graphAt = now;
    }
    return this.graph;
  }

  process(record: StreamRecord, ctx: OperatorContext): void {
    const s = this.s;
    if (s.when !== undefined && s.when(record.value) !== true) {
      ctx.count('ignored');
      return;
    }
    const e = readPath(record.value, s.entity);
    if (e === null || e === undefined) {
      ctx.count('null-entity');
      ctx.deadLetter('null-entity', `the entity field '${s.entity.join('.')}' is null`);
      return;
    }
    const entity = String(e);
    const scope = s.scope === undefined ? null : keyOfRecord(record.value, s.scope);
    const t = record.timestamp;
    const graph = this.currentGraph(ctx);
    ctx.count('signals');

    // Open incidents with a member near the entity, in the graph and in time.
    const related: Incident[] = [];
    for (const [n] of graph.near(entity, s.hops)) {
      const id = this.memberOf.get(`${scope ?? ''}\u0000${n}`);
      if (id === undefined || related.some((r) => r.id === id)) continue;
      const inc = this.incidents.get(id)!;
      if (t >= inc.last + s.quiet) {
        // Quiet for long enough before this signal, though the watermark has not closed it yet.
        this.closeIncident(inc, ctx);
        continue;
      }
      const m = inc.members.find((x) => x.entity === n)!;
      if (t <= m.last + s.window && t >= m.first - s.window) related.push(inc);
    }

    let inc: Incident;
    let status: 'open' | 'update' | undefined;
    if (related.length === 0) {
      let id = `${scope === null ? '' : `${scope}/`}${entity}@${new Date(t).toISOString()}`;
      for (let i = 2; this.incidents.has(id); i++) id = `${id.replace(/#\d+$/, '')}#${i}`;
      inc = { id, scope, opened: t, last: t, signals: 0, root: entity, members: [] };
      status = 'open';
      ctx.count('opened');
    } else {
      related.sort((a, b) => a.opened - b.opened || (a.id < b.id ? -1 : 1));
      inc = related[0]!;
      const byEntity = new Map(inc.members.map((m) => [m.entity, m]));
      for (const other of related.slice(1)) {
        this.incidents.delete(other.id);
        ctx.cancel('event', other.id);
        ctx.cancel('wall', other.id);
        ctx.count('merged');
        this.send(ctx, this.out(other, 'merged', graph, { t, mergedInto: inc.id, trigger: entity }));
        for (const m of other.members) {
          this.memberOf.set(`${scope ?? ''}\u0000${m.entity}`, inc.id);
          const mine = byEntity.get(m.entity);
          if (mine === undefined) {
            const copy = { ...m };
            inc.members.push(copy);
            byEntity.set(m.entity, copy);
          } else {
            mine.first = Math.min(mine.first, m.first);
            mine.last = Math.max(mine.last, m.last);
            mine.signals += m.signals;
          }
        }
        inc.opened = Math.min(inc.opened, other.opened);
        inc.last = Math.max(inc.last, other.last);
        inc.signals += other.signals;
        status = 'update';
      }
    }
    let member = inc.members.find((x) => x.entity === entity);
    if (member === undefined) {
      member = { entity, first: t, last: t, signals: 0 };
      inc.members.push(member);
      this.memberOf.set(`${scope ?? ''}\u0000${entity}`, inc.id);
      status ??= 'update';
    }
    const reordered = status !== undefined || t < member.first;
    member.first = Math.min(member.first, t);
    member.last = Math.max(member.last, t);
    member.signals++;
    inc.signals++;
    inc.opened = Math.min(inc.opened, t);
    inc.last = Math.max(inc.last, t);
    const rc = status === undefined ? undefined : rootCause(inc.members, graph);
    const root = rc === undefined ? inc.root : rc.root.entity;
    if (root !== inc.root) status ??= 'update';
    inc.root = root;
    if (reordered) inc.members.sort((a, b) => a.first - b.first || (a.entity < b.entity ? -1 : a.entity > b.entity ? 1 : 0));
    this.incidents.put(inc.id, inc);
    ctx.schedule({ kind: 'event', at: inc.last + s.quiet, key: inc.id });
    if (s.wall) ctx.schedule({ kind: 'wall', at: inc.last + s.quiet, key: inc.id });
    if (status !== undefined) this.send(ctx, this.out(inc, status, graph, { t, trigger: entity, rc }));
  }

  onTimer(timer: Timer, ctx: OperatorContext): void {
    const inc = this.incidents.get(timer.key);
    if (inc === undefined) return;
    if (inc.last + this.s.quiet > timer.at) return; // a later signal set its own timer
    this.closeIncident(inc, ctx);
  }

  private closeIncident(inc: Incident, ctx: OperatorContext): void {
    const at = inc.last + this.s.quiet;
    this.unindex(inc);
    this.incidents.delete(inc.id);
    ctx.cancel('event', inc.id);
    ctx.cancel('wall', inc.id);
    ctx.count('closed');
    this.send(ctx, this.out(inc, 'closed', this.currentGraph(ctx), { t: at, closedAt: at }));
  }

  /** Forwards an incident record, and audits the change. */
  private send(ctx: OperatorContext, r: StreamRecord): void {
    ctx.forward(r);
    const v = r.value as { incident: string; status: string; root: string; entities: number; trigger: string | null; merged_into: string | null };
    const why =
      v.status === 'open'
        ? `first signal, of ${v.trigger ?? v.root}`
        : v.status === 'merged'
          ? `merged into ${v.merged_into ?? '?'}`
          : v.status === 'closed'
            ? `quiet for ${formatDuration(this.s.quiet)}`
            : `signal of ${v.trigger ?? '?'}: ${v.entities} members, probable root ${v.root}`;
    audit(ctx, INCIDENT_EVENT[v.status] ?? 'INCIDENT_UPDATED', { id: v.incident, entity: v.root }, r.timestamp, { who: `incident:${this.s.name}`, why });
  }

  private out(inc: Incident, status: string, graph: Graph, o: { t: number; mergedInto?: string; closedAt?: number; trigger?: string; rc?: ReturnType<typeof rootCause> }): StreamRecord {
    const rc = o.rc ?? rootCause(inc.members, graph);
    return {
      key: inc.id,
      timestamp: o.t,
      value: {
        incident: inc.id,
        status,
        scope: inc.scope,
        root: rc.root.entity,
        root_onset: rc.root.first,
        root_explains: rc.explains,
        candidates: rc.candidates,
        members: listed(inc.members, rc.root, this.s.maxMembers).map((m) => ({ entity: m.entity, first_seen: m.first, last_seen: m.last, signals: m.signals, depth: rc.depth.get(m.entity) ?? null })),
        truncated: Math.max(0, inc.members.length - this.s.maxMembers),
        entities: inc.members.length,
        signals: inc.signals,
        opened_at: inc.opened,
        updated_at: inc.last,
        closed_at: o.closedAt ?? null,
        merged_into: o.mergedInto ?? null,
        trigger: o.trigger ?? null,
      },
    };
  }
}
