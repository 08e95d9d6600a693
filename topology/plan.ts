// Turns a validated Topology into a physical Plan: sub-topologies split at repartition
// boundaries, internal (repartition and changelog) topics, store wiring and partition counts.
//
// Partitioning is tracked as "the fields records are keyed by": a source declares them (`key:`),
// filter and map pass them on (map renames them when they pass through), an operator whose
// partitionBy(config) differs from its input's keying gets a repartition topic in front of it,
// and its output is keyed by partitionBy unless its definition says otherwise (keyFields).
import type { OperatorDefinition } from '../operators/types.ts';
import type { InternalTopic, NodeDef, Plan, PlanNode, PlanSink, Position, SinkDef, SourceDef, SubTopology, Topology } from './types.ts';
import { TopologyError } from './diagnostics.ts';
import type { Diagnostic, DiagnosticCode } from './diagnostics.ts';
import { schemaFullname } from './avro-types.ts';

const MAX_TOPIC_LENGTH = 249;

export function repartitionTopicName(topology: string, node: string, upstream?: string): string {
  return upstream === undefined ? `${topology}-${node}-repartition` : `${topology}-${node}-${upstream}-repartition`;
}

export function changelogTopicName(topology: string, node: string, store: string): string {
  return `${topology}-${node}-${store}-changelog`;
}

function sameFields(a: readonly string[] | undefined, b: readonly string[]): boolean {
  if (a === undefined || a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

class UnionFind {
  private readonly parent = new Map<string, string>();
  find(x: string): string {
    let p = this.parent.get(x) ?? x;
    if (p !== x) {
      p = this.find(p);
      this.parent.set(x, p);
    }
    return p;
  }
  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent.set(rb, ra);
  }
}

interface Edge {
  from: string;
  to: string;
  /** Set when the edge goes through a repartition topic. */
  repartition?: { topic: string; keyFields: string[] };
}

/** Plans a topology. Throws TopologyError when inputs that must be co-partitioned are not. */
export function planTopology(t: Topology): Plan {
  const diags: Diagnostic[] = [];
  const diag = (at: Position, code: DiagnosticCode, message: string): void => {
    diags.push({ file: at.file, line: at.line, column: at.column, code, message });
  };
  const sources = new Map<string, SourceDef>(t.sources.map((s) => [s.name, s]));
  const nodes = new Map<string, NodeDef>(t.nodes.map((n) => [n.name, n]));
  const keyed = new Map<string, string[] | undefined>();
  for (const s of t.sources) keyed.set(s.name, s.keyFields === undefined || s.keyFields.length === 0 ? undefined : [...s.keyFields]);

  // Edges and partitioning, in topological order.
  const edges: Edge[] = [];
  for (const n of t.nodes) {
    const def = n.def as OperatorDefinition<any>;
    const need = def.partitionBy?.(n.config);
    const inputs: (string[] | undefined)[] = [];
    const multi = n.from.filter((f) => need !== undefined && need.length > 0 && !sameFields(keyed.get(f), need)).length > 1;
    for (const f of n.from) {
      const upKey = keyed.get(f);
      if (need !== undefined && need.length > 0 && !sameFields(upKey, need)) {
        edges.push({ from: f, to: n.name, repartition: { topic: repartitionTopicName(t.name, n.name, multi ? f : undefined), keyFields: [...need] } });
        inputs.push([...need]);
      } else {
        edges.push({ from: f, to: n.name });
        inputs.push(upKey);
      }
    }
    const out = def.keyFields !== undefined ? def.keyFields(n.config, inputs) : need !== undefined && need.length > 0 ? [...need] : undefined;
    keyed.set(n.name, out === undefined || out.length === 0 ? undefined : out);
  }
  for (const s of t.sinks) edges.push({ from: s.from, to: s.name });

  // Sub-topologies: connected components over the edges that are not repartitioned.
  const uf = new UnionFind();
  for (const e of edges) if (e.repartition === undefined) uf.union(e.from, e.to);
  const byTopic = new Map<string, string>();
  for (const s of t.sources) {
    const other = byTopic.get(s.topic);
    if (other !== undefined) uf.union(other, s.name);
    else byTopic.set(s.topic, s.name);
  }
  const order = [...t.sources.map((s) => s.name), ...t.nodes.map((n) => n.name), ...t.sinks.map((s) => s.name)];
  const idOf = new Map<string, number>();
  for (const v of order) {
    const root = uf.find(v);
    if (!idOf.has(root)) idOf.set(root, idOf.size);
  }
  const sub = (v: string): number => idOf.get(uf.find(v))!;
  const subs: SubTopology[] = [...idOf.values()].map((id) => ({ id, sources: [], nodes: [], sinks: [], partitions: 0 }));

  const downstream = new Map<string, string[]>();
  const push = (from: string, to: string): void => {
    const l = downstream.get(from);
    if (l === undefined) downstream.set(from, [to]);
    else if (!l.includes(to)) l.push(to);
  };
  for (const e of edges) push(e.from, e.repartition === undefined ? e.to : e.repartition.topic);

  const outputSchemaOf = (v: string) => sources.get(v)?.schema ?? nodes.get(v)!.outputSchema;
  const outputSchemaName = (v: string): string => sources.get(v)?.schemaName ?? schemaFullname(nodes.get(v)!.outputSchema);

  // Upstream user sources of a vertex (for watermark settings of repartition topics).
  const ancestors = (v: string, seen = new Set<string>()): SourceDef[] => {
    if (seen.has(v)) return [];
    seen.add(v);
    const s = sources.get(v);
    if (s !== undefined) return [s];
    return (nodes.get(v)?.from ?? []).flatMap((f) => ancestors(f, seen));
  };

  for (const s of t.sources) {
    subs[sub(s.name)].sources.push({
      name: s.name,
      topic: s.topic,
      schemaName: s.schemaName,
      schema: s.schema,
      ...(s.timestampField !== undefined ? { timestampField: s.timestampField } : {}),
      maxOutOfOrderMs: s.maxOutOfOrderMs,
      idleTimeoutMs: s.idleTimeoutMs,
      downstream: downstream.get(s.name) ?? [],
    });
  }
  const repartitionEdges = edges.filter((e) => e.repartition !== undefined);
  for (const e of repartitionEdges) {
    const r = e.repartition!;
    const ups = ancestors(e.from);
    subs[sub(e.to)].sources.push({
      name: e.from,
      topic: r.topic,
      schemaName: outputSchemaName(e.from),
      schema: outputSchemaOf(e.from),
      maxOutOfOrderMs: Math.max(0, ...ups.map((s) => s.maxOutOfOrderMs)),
      idleTimeoutMs: Math.max(0, ...ups.map((s) => s.idleTimeoutMs)),
      downstream: [e.to],
    });
    subs[sub(e.from)].sinks.push({
      name: r.topic,
      topic: r.topic,
      schemaName: outputSchemaName(e.from),
      schema: outputSchemaOf(e.from),
      ...(r.keyFields.length === 1 ? { keyField: r.keyFields[0] } : {}),
      keyFields: r.keyFields,
      internal: true,
    });
  }

  const internalTopics: InternalTopic[] = [];
  const changelogs: { sub: number; topic: string; at: Position }[] = [];
  for (const n of t.nodes) {
    const def = n.def as OperatorDefinition<any>;
    const stores = (def.stores?.(n.config) ?? []).map((d) => {
      const topic = changelogTopicName(t.name, n.name, d.name);
      changelogs.push({ sub: sub(n.name), topic, at: n.at });
      return { name: d.name, kind: d.kind, ...(d.retentionMs !== undefined ? { retentionMs: d.retentionMs } : {}), changelogTopic: topic };
    });
    const node: PlanNode = {
      name: n.name,
      type: n.type,
      def: n.def,
      config: n.config,
      inputSchemas: n.inputSchemas,
      outputSchema: n.outputSchema,
      stores,
      downstream: downstream.get(n.name) ?? [],
    };
    subs[sub(n.name)].nodes.push(node);
  }
  for (const s of t.sinks) subs[sub(s.name)].sinks.push(planSink(s));

  // Partition counts, in id order (a sub-topology's upstreams have smaller ids).
  const repartitionPartitions = new Map<string, number>();
  for (const st of subs) {
    const user = st.sources.filter((s) => sources.has(s.name) && sources.get(s.name)!.topic === s.topic);
    const counts = new Set(user.map((s) => sources.get(s.name)!.partitions));
    if (counts.size > 1) {
      const list = user.map((s) => `${s.name} (${s.topic}): ${sources.get(s.name)!.partitions}`).join(', ');
      for (const s of user) {
        diag(sources.get(s.name)!.at, 'COPARTITION', `sources ${user.map((u) => `'${u.name}'`).join(', ')} feed one sub-topology and must have the same partition count, but have ${list}`);
      }
    }
    let n: number;
    if (user.length > 0) {
      n = Math.max(...user.map((s) => sources.get(s.name)!.partitions));
    } else {
      const ups = st.sources.map((s) => subs[sub(s.name)].partitions);
      n = Math.max(1, ...ups);
    }
    st.partitions = n;
    for (const s of st.sources) if (!user.includes(s)) repartitionPartitions.set(s.topic, n);
  }
  for (const e of repartitionEdges) {
    internalTopics.push({ name: e.repartition!.topic, kind: 'repartition', partitions: repartitionPartitions.get(e.repartition!.topic)!, configs: { 'cleanup.policy': 'delete' } });
  }
  for (const c of changelogs) {
    internalTopics.push({ name: c.topic, kind: 'changelog', partitions: subs[c.sub].partitions, configs: { 'cleanup.policy': 'compact' } });
  }

  // Internal topic names must be valid and must not collide with the file's topics.
  const userTopics = new Set([...t.sources.map((s) => s.topic), ...t.sinks.map((s) => s.topic), t.deadLetterTopic]);
  const seen = new Set<string>();
  for (const it of internalTopics) {
    const owner = it.kind === 'changelog' ? changelogs.find((c) => c.topic === it.name)!.at : nodes.get(repartitionEdges.find((e) => e.repartition!.topic === it.name)!.to)!.at;
    if (it.name.length > MAX_TOPIC_LENGTH) diag(owner, 'TOPIC_NAME', `internal topic name '${it.name}' is longer than ${MAX_TOPIC_LENGTH} characters: shorten the topology or operator name`);
    if (userTopics.has(it.name)) diag(owner, 'TOPIC_NAME', `internal topic '${it.name}' is also a topic of the file`);
    if (seen.has(it.name)) diag(owner, 'TOPIC_NAME', `internal topic '${it.name}' is generated twice`);
    seen.add(it.name);
  }

  if (diags.length > 0) throw new TopologyError(diags);
  return { topology: t, subtopologies: subs, internalTopics };
}

function planSink(s: SinkDef): PlanSink {
  return {
    name: s.name,
    topic: s.topic,
    schemaName: s.schemaName,
    schema: s.schema,
    ...(s.keyField !== undefined ? { keyField: s.keyField } : {}),
    internal: false,
  };
}

/** A human-readable outline of a plan (for `vigil validate --plan`). */
export function describePlan(plan: Plan): string {
  const lines: string[] = [];
  const t = plan.topology;
  lines.push(`topology ${t.name} (${t.guarantee}, commit every ${t.commitIntervalMs} ms, dead letters -> ${t.deadLetterTopic})`);
  for (const st of plan.subtopologies) {
    lines.push(`sub-topology ${st.id} (${st.partitions} partition${st.partitions === 1 ? '' : 's'})`);
    for (const s of st.sources) lines.push(`  source ${s.topic} [${s.schemaName}] -> ${s.downstream.join(', ') || '(nothing)'}`);
    for (const n of st.nodes) {
      const stores = n.stores.length === 0 ? '' : ` stores: ${n.stores.map((s) => `${s.name} (${s.kind}, ${s.changelogTopic})`).join(', ')}`;
      lines.push(`  ${n.type} ${n.name} [${schemaFullname(n.outputSchema)}] -> ${n.downstream.join(', ') || '(nothing)'}${stores}`);
    }
    for (const s of st.sinks) {
      const key = s.keyFields !== undefined ? ` key: ${s.keyFields.join(', ')}` : s.keyField !== undefined ? ` key: ${s.keyField}` : '';
      lines.push(`  ${s.internal ? 'repartition' : 'sink'} ${s.name === s.topic ? s.topic : `${s.name} -> ${s.topic}`} [${s.schemaName}]${key}`);
    }
  }
  if (plan.internalTopics.length > 0) {
    lines.push('internal topics');
    for (const it of plan.internalTopics) lines.push(`  ${it.name} (${it.kind}, ${it.partitions} partition${it.partitions === 1 ? '' : 's'}, ${Object.entries(it.configs).map(([k, v]) => `${k}=${v}`).join(' ')})`);
  }
  return lines.join('\n');
}

