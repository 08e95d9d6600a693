// A windowed-count workload with a reference computation, for the crash, fencing and scale-out
// tests: per-host tumbling windows of count and sum, inputs spread over explicit partitions,
// and a final far-future record per partition so that every real window closes.
import type { OutRecord } from '../../connectors/kafka-client.ts';
import { prng } from '../../connectors/telemetry-generator.ts';
import type { AvroSerde } from '../../schemas/serde.ts';
import { loadSchemaCatalog } from '../../schemas/serde.ts';
import type { Guarantee } from '../../topology/types.ts';

export interface WindowScenario {
  name: string;
  input: string;
  output: string;
  partitions: number;
  yaml: string;
  records: OutRecord[];
  /** "<host>@<window start>" -> expected count and sum. */
  expected: Map<string, { count: number; sum: number }>;
}

const WINDOW_MS = 1000;
const START = 1_700_000_000_000;

function partitionOf(host: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < host.length; i++) h = Math.imul(h ^ host.charCodeAt(i), 0x01000193);
  return (h >>> 0) % partitions;
}

export async function windowScenario(
  serde: AvroSerde,
  opts: { name: string; guarantee: Guarantee; records: number; hosts?: number; partitions?: number; seed?: number },
): Promise<WindowScenario> {
  const { name } = opts;
  const partitions = opts.partitions ?? 4;
  const input = `${name}.metrics`;
  const output = `${name}.windows`;
  const yaml = `
version: 1
name: ${name}
guarantee: ${opts.guarantee}
commit_interval: 100ms
sources:
  - name: metrics
    topic: ${input}
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
    partitions: ${partitions}
operators:
  - name: per-second
    type: aggregate
    group_by: [host]
    window: { type: tumbling, size: 1s }
    emit: final
    aggregations:
      n: { fn: count }
      total: { fn: sum, field: value }
sinks:
  - name: windows
    topic: ${output}
`;
  const schema = loadSchemaCatalog().get('vigil.telemetry.MetricSample')!;
  const id = await serde.register(`${input}-value`, schema);
  const rnd = prng(opts.seed ?? 42);
  const hosts = Array.from({ length: opts.hosts ?? 20 }, (_, i) => `host-${i}`);
  const records: OutRecord[] = [];
  const expected = new Map<string, { count: number; sum: number }>();
  const last = new Array<number>(partitions).fill(START);
  for (let i = 0; i < opts.records; i++) {
    const host = hosts[Math.floor(rnd() * hosts.length)]!;
    const ts = START + i * 5;
    const value = Math.floor(rnd() * 100);
    const partition = partitionOf(host, partitions);
    last[partition] = ts;
    records.push({ topic: input, key: host, partition, value: serde.encode(id, { timestamp: ts, name: 'cpu.utilization', host, value, unit: null, tags: {} }) });
    const k = `${host}@${ts - (ts % WINDOW_MS)}`;
    const e = expected.get(k) ?? { count: 0, sum: 0 };
    e.count++;
    e.sum += value;
    expected.set(k, e);
  }
  // One far-future record per partition moves its watermark past every real window.
  for (let p = 0; p < partitions; p++)
    records.push({ topic: input, key: 'flush', partition: p, value: serde.encode(id, { timestamp: last[p]! + 3_600_000, name: 'flush', host: 'flush', value: 0, unit: null, tags: {} }) });
  return { name, input, output, partitions, yaml, records, expected };
}

/** Window results as read from the output: "<host>@<start>" -> every emission (count, sum). */
export function collect(values: Array<Record<string, unknown>>): Map<string, Array<{ count: number; sum: number }>> {
  const out = new Map<string, Array<{ count: number; sum: number }>>();
  for (const v of values) {
    if (v.host === 'flush') continue;
    const k = `${v.host}@${Number(v.window_start)}`;
    const list = out.get(k) ?? [];
    list.push({ count: Number(v.n), sum: Number(v.total) });
    out.set(k, list);
  }
  return out;
}
