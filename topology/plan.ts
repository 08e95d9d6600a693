// Turns a validated Topology into a physical Plan: sub-topologies split at repartition
// boundaries, internal (repartition and changelog) topics, store wiring, tables and partition
// counts.
//
// Partitioning is tracked as "the fields records are keyed by": a source declares them (`key:`),
// each operator output declares its own (the compile step derives them from its inputs'), and an
// input whose operator needs other fields (CompiledOperator.partitionBy, per input) reads through
// a repartition topic keyed by them. Everything connected without a repartition is one
// sub-topology; its input topics (streams and partitioned tables) must have equal partition counts.
import type { TableUse } from '../kernel/operator.ts';
import { DEFAULT_INPUT } from '../kernel/operator.ts';
import { TopologyError } from '../kernel/diagnostics.ts';
import type { Diagnostic, DiagnosticCode } from '../kernel/diagnostics.ts';
import { schemaFullname } from '../kernel/avro-types.ts';
import type {
  GlobalTable,
  InternalTopic,
  NodeDef,
  Plan,
  PlanNode,
  PlanSink,
  PlanSource,
  PlanTable,
  Position,
  Ref,
  SinkDef,
  SourceDef,
  SubTopology,
  Target,
  Topology,
} from './types.ts';
import { outputOf, refText } from './types.ts';

const MAX_TOPIC_LENGTH = 249;

/** Kafka Streams' settings for repartition topics: never deleted by time, purged once consumed. */
export const REPARTITION_TOPIC_CONFIGS: Readonly<Record<string, string>> = {
  'cleanup.policy': 'delete',
  'retention.ms': '-1',
  'segment.ms': '600000',
};

export function repartitionTopicName(topology: string, node: string, input?: string): string {
  return input === undefined ? `${topology}-${node}-repartition` : `${topology}-${node}-${input}-repartition`;
}

export function changelogTopicName(topology: string, node: string, store: string): string {
  return `${topology}-${node}-${store}-changelog`;
}

/** The user sources upstream of a vertex (a source: itself). */
function sourcesOf(t: Topology, v: string, seen = new Set<string>()): SourceDef[] {
  if (seen.has(v)) return [];
  seen.add(v);
  const s = t.sources.find((x) => x.name === v);
  if (s !== undefined) return [s];
  return (t.nodes.find((n) => n.name === v)?.inputs ?? []).flatMap((i) => sourcesOf(t, i.from.name, seen));
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

/** One record flow: from a source or a node's output, to a node's input or a sink. */
interface Edge {
  from: Ref;
  to: Target;
  /**
   * Set when the edge goes through a repartition topic; gather: into one partition (keyFields empty:
   * records keep their keys).
   */
  repartition?: { topic: string; keyFields: string[]; gather?: true };
}

const targetName = (t: Target): string => ('sink' in t ? t.sink : t.node);

/** Plans a topology. Throws TopologyError when inputs that must be co-partitioned are not. */
export function planTopology(t: Topology): Plan {
  const diags: Diagnostic[] = [];
  const diag = (at: Position, code: DiagnosticCode, message: string): void => {
    diags.push({ file: at.file, line: at.line, column: at.column, code, message });
  };
  const sources = new Map<string, SourceDef>(t.sources.map((s) => [s.name, s]));
  const nodes = new Map<string, NodeDef>(t.nodes.map((n) => [n.name, n]));

  // Edges, with a repartition where an input's keying differs from what its operator needs.
  const edges: Edge[] = [];
  for (const n of t.nodes) {
    const need = n.compiled.partitionBy ?? {};
    // Gathered inputs need no repartition when every source upstream has one partition.
    const gathered = (n.compiled.gather ?? []).filter((name) => {
      const input = n.inputs.find((i) => i.name === name);
      return input !== undefined && !sourcesOf(t, input.from.name).every((s) => s.partitions === 1);
    });
    const repartitioned = n.inputs.filter((i) => {
      if (gathered.includes(i.name)) return true;
      const k = need[i.name];
      return k !== undefined && k.length > 0 && !sameFields(outputOf(t, i.from)?.keyFields, k);
    });
    for (const input of n.inputs) {
      const to: Target = { node: n.name, input: input.name };
      if (repartitioned.includes(input)) {
        const topic = repartitionTopicName(t.name, n.name, repartitioned.length > 1 ? input.name : undefined);
        const gather = gathered.includes(input.name);
        edges.push({ from: input.from, to, repartition: { topic, keyFields: gather ? [] : [...need[input.name]!], ...(gather ? { gather: true } : {}) } });
      } else edges.push({ from: input.from, to });
    }
  }
  for (const s of t.sinks) edges.push({ from: s.from, to: { sink: s.name } });

  // Sub-topologies: connected components over the edges that are not repartitioned, sources of
  // one topic, and tables read partitioned.
  const uf = new UnionFind();
  for (const e of edges) if (e.repartition === undefined) uf.union(e.from.name, targetName(e.to));
  const byTopic = new Map<string, string>();
  for (const s of t.sources) {
    const other = byTopic.get(s.topic);
    if (other !== undefined) uf.union(other, s.name);
    else byTopic.set(s.topic, s.name);
  }
  const uses: Array<{ node: NodeDef; use: TableUse }> = t.nodes.flatMap((n) => (n.compiled.tables ?? []).map((use) => ({ node: n, use })));
  const partitionedBy = new Map<string, NodeDef>();
  const partitioned = (node: NodeDef, table: string): void => {
    const first = partitionedBy.get(table);
    if (first !== undefined && uf.find(first.name) !== uf.find(node.name)) {
      diag(node.at, 'COPARTITION', `table '${table}' is read partitioned by '${first.name}' and by '${node.name}', which run in different sub-topologies: read it global in one of them (mode: global)`);
      return;
    }
    partitionedBy.set(table, node);
    uf.union(table, node.name);
  };
  for (const { node, use } of uses) if (use.mode === 'partitioned') partitioned(node, use.table);

  const order = [...t.sources.map((s) => s.name), ...t.nodes.map((n) => n.name), ...t.sinks.map((s) => s.name)];
  const ids = (): Map<string, number> => {
    const idOf = new Map<string, number>();
    for (const v of order) {
      const root = uf.find(v);
      if (!idOf.has(root)) idOf.set(root, idOf.size);
    }
    return idOf;
  };
  // Partition counts of the components so far, to resolve `auto` tables.
  const countsOf = (): Map<string, number> => {
    const counts = new Map<string, number>();
    for (const s of t.sources) {
      const r = uf.find(s.name);
      counts.set(r, Math.max(counts.get(r) ?? 0, s.partitions));
    }
    return counts;
  };
  const modes = new Map<TableUse, 'partitioned' | 'global'>();
  {
    const counts = countsOf();
    for (const { node, use } of uses) {
      if (use.mode === 'partitioned') modes.set(use, 'partitioned');
      else if (use.mode === 'global') modes.set(use, 'global');
      else {
        const table = sources.get(use.table)!;
        const input = node.inputs.find((i) => i.name === use.input)!;
        const keyed = sameFields(outputOf(t, input.from)?.keyFields, use.keyFields) && table.keyFields !== undefined;
        const fits = counts.get(uf.find(node.name)) === table.partitions;
        const other = partitionedBy.get(use.table);
        const sameSub = other === undefined || uf.find(other.name) === uf.find(node.name);
        if (keyed && fits && sameSub && !edges.some((e) => 'node' in e.to && e.to.node === node.name && e.to.input === use.input && e.repartition)) {
          modes.set(use, 'partitioned');
          partitioned(node, use.table);
        } else modes.set(use, 'global');
      }
      if (use.watch && modes.get(use) !== 'partitioned')
        diag(node.at, 'COPARTITION', `'${node.name}' watches table '${use.table}', which needs the table partitioned like its input: key the table by ${use.keyFields.join(', ')} with the same partition count`);
    }
  }

  const idOf = ids();
  const sub = (v: string): number => idOf.get(uf.find(v))!;
  const subs: SubTopology[] = [...idOf.values()].map((id) => ({ id, sources: [], nodes: [], sinks: [], partitions: 0 }));

  // Downstream targets per source and per node output (repartition edges go to their sink).
  const downstream = new Map<string, Target[]>();
  const outKey = (r: Ref): string => {
    const n = nodes.get(r.name);
    return `${r.name}\u0000${r.output ?? n?.compiled.outputs[0]?.name ?? ''}`;
  };
  const push = (from: Ref, to: Target): void => {
    const k = outKey(from);
    const l = downstream.get(k);
    const same = (x: Target) => ('sink' in x && 'sink' in to ? x.sink === to.sink : 'node' in x && 'node' in to && x.node === to.node && x.input === to.input);
    if (l === undefined) downstream.set(k, [to]);
    else if (!l.some(same)) l.push(to);
  };
  for (const e of edges) push(e.from, e.repartition === undefined ? e.to : { sink: e.repartition.topic });

  const schemaOf = (r: Ref) => outputOf(t, r)!.schema;
  const schemaNameOf = (r: Ref): string => (sources.has(r.name) ? sources.get(r.name)!.schemaName : schemaFullname(schemaOf(r)));

  const globalTables: GlobalTable[] = [];
  for (const s of t.sources) {
    if (s.table) {
      if (partitionedBy.has(s.name)) subs[sub(s.name)]!.sources.push(planSource(s, 'table', []));
      if ([...modes].some(([u, m]) => u.table === s.name && m === 'global'))
        globalTables.push({ name: s.name, topic: s.topic, schemaName: s.schemaName, schema: s.schema });
      continue;
    }
    subs[sub(s.name)]!.sources.push(planSource(s, 'stream', downstream.get(outKey({ name: s.name })) ?? []));
  }
  const repartitionEdges = edges.filter((e) => e.repartition !== undefined);
  /** repartition topic -> the sub-topology that writes it */
  const writer = new Map<string, number>();
  for (const e of repartitionEdges) {
    const r = e.repartition!;
    writer.set(r.topic, sub(e.from.name));
    const ups = sourcesOf(t, e.from.name);
    subs[sub(targetName(e.to))]!.sources.push({
      name: refText(e.from),
      topic: r.topic,
      kind: 'stream',
      schemaName: schemaNameOf(e.from),
      schema: schemaOf(e.from),
      maxOutOfOrderMs: Math.max(0, ...ups.map((s) => s.maxOutOfOrderMs)),
      idleTimeoutMs: Math.max(0, ...ups.map((s) => s.idleTimeoutMs)),
      downstream: [e.to],
    });
    subs[sub(e.from.name)]!.sinks.push({
      name: r.topic,
      topic: r.topic,
      schemaName: schemaNameOf(e.from),
      schema: schemaOf(e.from),
      ...(r.keyFields.length === 1 ? { keyField: r.keyFields[0] } : {}),
      keyFields: r.keyFields,
      internal: true,
    });
  }

  const internalTopics: InternalTopic[] = [];
  const changelogs: { sub: number; topic: string; at: Position }[] = [];
  for (const n of t.nodes) {
    const stores = (n.compiled.stores ?? []).map((d) => {
      const topic = changelogTopicName(t.name, n.name, d.name);
      changelogs.push({ sub: sub(n.name), topic, at: n.at });
      return { ...d, changelogTopic: topic };
    });
    const tables: PlanTable[] = (n.compiled.tables ?? []).map((u) => ({ table: u.table, topic: sources.get(u.table)!.topic, mode: modes.get(u)!, watch: u.watch === true }));
    const node: PlanNode = {
      name: n.name,
      type: n.type,
      config: n.config,
      compiled: n.compiled,
      inputs: n.inputs.map((i) => ({ name: i.name, schema: i.schema, from: i.from })),
      outputs: n.compiled.outputs.map((o) => ({ name: o.name, schema: o.schema, downstream: downstream.get(`${n.name}\u0000${o.name}`) ?? [] })),
      stores,
      tables,
    };
    subs[sub(n.name)]!.nodes.push(node);
  }
  for (const s of t.sinks) subs[sub(s.name)]!.sinks.push(planSink(s));

  // Partition counts, in id order (a sub-topology's upstreams have smaller ids).
  const repartitionPartitions = new Map<string, number>();
  const gatheredTopics = new Set(repartitionEdges.filter((e) => e.repartition!.gather === true).map((e) => e.repartition!.topic));
  for (const st of subs) {
    const user = st.sources.filter((s) => sources.has(s.name) && sources.get(s.name)!.topic === s.topic);
    const counts = new Set(user.map((s) => sources.get(s.name)!.partitions));
    if (counts.size > 1) {
      const list = user.map((s) => `${s.name} (${s.topic}): ${sources.get(s.name)!.partitions}`).join(', ');
      for (const s of user) {
        diag(
          sources.get(s.name)!.at,
          'COPARTITION',
          `sources ${user.map((u) => `'${u.name}'`).join(', ')} feed one sub-topology and must have the same partition count, but have ${list}`,
        );
      }
    }
    let n: number;
    if (user.length > 0) {
      n = Math.max(...user.map((s) => sources.get(s.name)!.partitions));
    } else if (st.sources.length > 0 && st.sources.every((s) => gatheredTopics.has(s.topic))) {
      n = 1;
    } else {
      const ups = st.sources.map((s) => subs[writer.get(s.topic)!]!.partitions);
      n = Math.max(1, ...ups);
    }
    st.partitions = n;
    for (const s of st.sources) if (!user.includes(s)) repartitionPartitions.set(s.topic, n);
  }
  for (const e of repartitionEdges) {
    internalTopics.push({ name: e.repartition!.topic, kind: 'repartition', partitions: repartitionPartitions.get(e.repartition!.topic)!, configs: { ...REPARTITION_TOPIC_CONFIGS } });
  }
  for (const c of changelogs) {
    internalTopics.push({ name: c.topic, kind: 'changelog', partitions: subs[c.sub]!.partitions, configs: { 'cleanup.policy': 'compact' } });
  }

  // Sinks that deliver outside Kafka: an outbox topic, read by the sink's delivery operator in a
  // sub-topology of its own.
  const owners = new Map<string, Position>();
  for (const s of t.sinks) {
    if (s.deliver === undefined) continue;
    const upstream = subs[sub(s.name)]!;
    const ups = sourcesOf(t, s.from.name);
    const delivery: SubTopology = {
      id: subs.length,
      partitions: upstream.partitions,
      sources: [
        {
          name: s.name,
          topic: s.topic,
          kind: 'stream',
          schemaName: s.schemaName,
          schema: s.schema,
          maxOutOfOrderMs: Math.max(0, ...ups.map((x) => x.maxOutOfOrderMs)),
          idleTimeoutMs: Math.max(0, ...ups.map((x) => x.idleTimeoutMs)),
          downstream: [{ node: s.name, input: DEFAULT_INPUT }],
        },
      ],
      nodes: [
        {
          name: s.name,
          type: `sink:${s.type}`,
          config: {},
          compiled: s.deliver.compiled,
          inputs: [{ name: DEFAULT_INPUT, schema: s.schema, from: s.from }],
          outputs: [],
          stores: (s.deliver.compiled.stores ?? []).map((d) => {
            const topic = changelogTopicName(t.name, s.name, d.name);
            internalTopics.push({ name: topic, kind: 'changelog', partitions: upstream.partitions, configs: { 'cleanup.policy': 'compact' } });
            owners.set(topic, s.at);
            return { ...d, changelogTopic: topic };
          }),
          tables: [],
        },
      ],
      sinks: [],
    };
    subs.push(delivery);
    internalTopics.push({ name: s.topic, kind: 'outbox', partitions: upstream.partitions, configs: { ...REPARTITION_TOPIC_CONFIGS } });
    owners.set(s.topic, s.at);
  }

  // Internal topic names must be valid and must not collide with the file's topics.
  const userTopics = new Set([...t.sources.map((s) => s.topic), ...t.sinks.filter((s) => s.deliver === undefined).map((s) => s.topic), t.deadLetterTopic]);
  const seen = new Set<string>();
  for (const it of internalTopics) {
    const owner =
      owners.get(it.name) ??
      (it.kind === 'changelog' ? changelogs.find((c) => c.topic === it.name)!.at : nodes.get(targetName(repartitionEdges.find((e) => e.repartition!.topic === it.name)!.to))!.at);
    if (it.name.length > MAX_TOPIC_LENGTH) diag(owner, 'TOPIC_NAME', `internal topic name '${it.name}' is longer than ${MAX_TOPIC_LENGTH} characters: shorten the topology or operator name`);
    if (userTopics.has(it.name)) diag(owner, 'TOPIC_NAME', `internal topic '${it.name}' is also a topic of the file`);
    if (seen.has(it.name)) diag(owner, 'TOPIC_NAME', `internal topic '${it.name}' is generated twice`);
    seen.add(it.name);
  }

  if (diags.length > 0) throw new TopologyError(diags);
  return { topology: t, subtopologies: subs, internalTopics, globalTables };
}

function planSource(s: SourceDef, kind: 'stream' | 'table', downstream: Target[]): PlanSource {
  return {
    name: s.name,
    topic: s.topic,
    kind,
    schemaName: s.schemaName,
    schema: s.schema,
    ...(s.timestampField !== undefined ? { timestampField: s.timestampField } : {}),
    maxOutOfOrderMs: s.maxOutOfOrderMs,
    idleTimeoutMs: s.idleTimeoutMs,
    downstream,
    ...(kind === 'stream' && s.start === 'latest' ? { startLatest: true } : {}),
    ...(s.keyFields !== undefined && s.keyFields.length > 0 ? { checkKeyPlacement: true } : {}),
  };
}

function planSink(s: SinkDef): PlanSink {
  return {
    name: s.name,
    topic: s.topic,
    schemaName: s.schemaName,
    schema: s.schema,
    ...(s.keyField !== undefined ? { keyField: s.keyField } : {}),
    // An outbox topic is read by the topology itself, as a repartition topic is.
    internal: s.deliver !== undefined,
  };
}

/** `name`, or `name.input` when the node has several inputs. */
function describeTarget(plan: Plan, t: Target): string {
  if ('sink' in t) return t.sink;
  const n = plan.topology.nodes.find((x) => x.name === t.node);
  return n !== undefined && n.inputs.length > 1 ? `${t.node}.${t.input}` : t.node;
}

/** A human-readable outline of a plan (for `vigil validate --plan`). */
export function describePlan(plan: Plan): string {
  const lines: string[] = [];
  const t = plan.topology;
  const targets = (ts: Target[]) => ts.map((x) => describeTarget(plan, x)).join(', ') || '(nothing)';
  const kinds = new Map(plan.internalTopics.map((it) => [it.name, it.kind]));
  lines.push(`topology ${t.name} (${t.guarantee}, commit every ${t.commitIntervalMs} ms, dead letters -> ${t.deadLetterTopic})`);
  for (const st of plan.subtopologies) {
    lines.push(`sub-topology ${st.id} (${st.partitions} partition${st.partitions === 1 ? '' : 's'})`);
    for (const s of st.sources) {
      if (s.kind === 'table') lines.push(`  table ${s.topic} [${s.schemaName}] (partitioned)`);
      else lines.push(`  source ${s.topic} [${s.schemaName}] -> ${targets(s.downstream)}`);
    }
    for (const n of st.nodes) {
      const stores = n.stores.length === 0 ? '' : ` stores: ${n.stores.map((s) => `${s.name} (${s.kind}, ${s.changelogTopic})`).join(', ')}`;
      const tables = n.tables.length === 0 ? '' : ` tables: ${n.tables.map((x) => `${x.table} (${x.mode})`).join(', ')}`;
      const [first, ...rest] = n.outputs;
      lines.push(`  ${n.type} ${n.name} [${first !== undefined ? schemaFullname(first.schema) : '-'}] -> ${targets(first?.downstream ?? [])}${stores}${tables}`);
      for (const o of rest) lines.push(`    .${o.name} [${schemaFullname(o.schema)}] -> ${targets(o.downstream)}`);
    }
    for (const s of st.sinks) {
      const key = s.keyFields !== undefined ? (s.keyFields.length > 0 ? ` key: ${s.keyFields.join(', ')}` : ' (gathered into one partition)') : s.keyField !== undefined ? ` key: ${s.keyField}` : '';
      lines.push(`  ${s.internal ? (kinds.get(s.topic) ?? 'repartition') : 'sink'} ${s.name === s.topic ? s.topic : `${s.name} -> ${s.topic}`} [${s.schemaName}]${key}`);
    }
  }
  if (plan.globalTables.length > 0) {
    lines.push('global tables');
    for (const g of plan.globalTables) lines.push(`  ${g.name}: ${g.topic} [${g.schemaName}]`);
  }
  if (plan.internalTopics.length > 0) {
    lines.push('internal topics');
    for (const it of plan.internalTopics) lines.push(`  ${it.name} (${it.kind}, ${it.partitions} partition${it.partitions === 1 ? '' : 's'}, ${Object.entries(it.configs).map(([k, v]) => `${k}=${v}`).join(' ')})`);
  }
  return lines.join('\n');
}
