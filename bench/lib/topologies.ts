// The benchmark's topologies: the workload files, renamed per run so that every run (and every
// workload) has its own topics and consumer group, and generated chains of operators for the
// in-process scaling curves.
import { fileURLToPath } from 'node:url';
import { loadTopology, parseTopology } from '../../topology/loader.ts';
import { operatorRegistry } from '../../operators/registry.ts';
import { planTopology } from '../../topology/plan.ts';
import type { Plan, Topology } from '../../topology/types.ts';
import { SCHEMA_OF_KIND } from '../../connectors/telemetry-generator.ts';

export type WorkloadName = 'passthrough' | 'window' | 'monitor' | 'enrich' | 'correlate';
export const WORKLOADS: readonly WorkloadName[] = ['passthrough', 'window', 'monitor', 'enrich', 'correlate'];

export const TOPOLOGY_DIR = fileURLToPath(new URL('../topologies/', import.meta.url));

/** The topology file of each workload; `monitor` is the demo topology itself. */
export const WORKLOAD_FILES: Record<WorkloadName, string> = {
  passthrough: fileURLToPath(new URL('../topologies/passthrough.yaml', import.meta.url)),
  window: fileURLToPath(new URL('../topologies/window.yaml', import.meta.url)),
  monitor: fileURLToPath(new URL('../../topology/examples/demo.yaml', import.meta.url)),
  enrich: fileURLToPath(new URL('../topologies/enrich.yaml', import.meta.url)),
  correlate: fileURLToPath(new URL('../topologies/correlate.yaml', import.meta.url)),
};

/** Prefixes the topology's name (its group id and internal topics) and every topic it names. */
export function renameTopology(t: Topology, prefix: string): Topology {
  if (!prefix) return t;
  return {
    ...t,
    name: `${prefix}-${t.name}`,
    deadLetterTopic: `${prefix}.${t.deadLetterTopic}`,
    sources: t.sources.map((s) => ({ ...s, topic: `${prefix}.${s.topic}` })),
    sinks: t.sinks.map((s) => ({ ...s, topic: `${prefix}.${s.topic}` })),
  };
}

/**
 * The sources a benchmark feeds: those with a generator for their schema, and not topics the
 * topology writes itself (the demo's router reads back the alerts its rules wrote).
 */
export function fedSources(t: Topology): Topology['sources'] {
  const written = new Set(t.sinks.map((s) => s.topic));
  const generated = new Set(Object.values(SCHEMA_OF_KIND));
  return t.sources.filter((s) => !written.has(s.topic) && generated.has(s.schemaName));
}

/** Loads, renames and plans a topology file. */
export function loadBenchPlan(file: string, prefix = ''): Plan {
  return planTopology(renameTopology(loadTopology(file, { operators: operatorRegistry }), prefix));
}

/** Plans topology text (for generated chains); `schemas:` paths resolve in bench/topologies/. */
export function planText(yaml: string, prefix = ''): Plan {
  return planTopology(renameTopology(parseTopology(yaml, `${TOPOLOGY_DIR}generated.yaml`, { operators: operatorRegistry }), prefix));
}

const CHAIN_HEAD = `version: 1
name: chain
guarantee: at_least_once
sources:
  - name: metrics
    topic: bench.metrics
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
    max_out_of_order: 1s
    partitions: 1
`;

/** One operator of a generated chain; each keeps MetricSample's shape so chains compose. */
export type ChainOperator = 'filter' | 'map';

function chainStep(op: ChainOperator, i: number): string {
  // Each step does real work on every record and passes every record on, so cost is linear in k.
  if (op === 'filter') return `  - name: f${i}\n    type: filter\n    where: value > -1000000 && host != "none"\n`;
  return `  - name: m${i}\n    type: map\n    keep_input: true\n    fields:\n      value: value * 1.0001\n`;
}

/**
 * A chain of k operators of one kind between the metrics source and a MetricSample sink (k = 0:
 * the source feeds the sink directly, i.e. decode + task dispatch + encode).
 */
export function chainYaml(op: ChainOperator, k: number): string {
  let ops = '';
  for (let i = 1; i <= k; i++) ops += chainStep(op, i);
  const from = k === 0 ? 'metrics' : op === 'filter' ? `f${k}` : `m${k}`;
  return `${CHAIN_HEAD}${k > 0 ? `operators:\n${ops}` : ''}sinks:
  - name: out
    from: ${from}
    topic: bench.chain.out
    schema: vigil.telemetry.MetricSample
`;
}

/**
 * The chain run on Kafka: a filter that drops a quarter of the records (as the passthrough
 * workload does), then k - 1 maps.
 */
export function kafkaChainYaml(k: number): string {
  let ops = '  - name: keep\n    type: filter\n    where: name != "disk.io_wait"\n';
  for (let i = 1; i < k; i++) ops += chainStep('map', i);
  return `${CHAIN_HEAD.replace('partitions: 1', 'partitions: 4')}operators:\n${ops}sinks:
  - name: out
    from: ${k > 1 ? `m${k - 1}` : 'keep'}
    topic: bench.chain.out
    schema: vigil.telemetry.MetricSample
`;
}
