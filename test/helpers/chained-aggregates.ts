// The chained-aggregate case of the operator contract issue: a count per host over 10 s hopping
// windows (2 s slide), then the max of those counts per upstream window (grace 2 s), through a
// repartition topic. Eight records in one second (hosts a, a, a, b, b, b, c, c), then event time
// jumps 60 s: the 5 windows holding that second are due, each with a max count of 3.
export function chainedAggregatesYaml(name: string, input: string, output: string, partitions = 1): string {
  return `
version: 1
name: ${name}
commit_interval: 200ms
sources:
  - name: metrics
    topic: ${input}
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
    partitions: ${partitions}
operators:
  - name: counts
    type: aggregate
    group_by: [host]
    window: { type: hopping, size: 10s, advance: 2s }
    aggregations:
      n: { fn: count }
  - name: per-window
    type: map
    fields:
      upstream_start: window_start
      host: host
      n: n
  - name: peak
    type: aggregate
    group_by: [upstream_start]
    window: { type: tumbling, size: 2s }
    grace: 2s
    aggregations:
      top: { fn: max, field: n }
      hosts: { fn: count }
sinks:
  - name: out
    topic: ${output}
`;
}

export const T0 = 1_700_000_000_000;

export const metric = (timestamp: number, host: string) => ({ timestamp, name: 'cpu', host, value: 1, unit: null, tags: {} });

/** The eight records of one second. */
export const burst = (): Array<{ timestamp: number; host: string }> =>
  ['a', 'a', 'a', 'b', 'b', 'b', 'c', 'c'].map((host, i) => ({ timestamp: T0 + 100 * i, host }));

/** What must come out: the 5 hopping windows holding T0..T0+700, each with 3 hosts and a max count of 3. */
export function expectedPeaks(): Array<{ upstream_start: number; top: number; hosts: number }> {
  const last = Math.floor(T0 / 2000) * 2000;
  return [4, 3, 2, 1, 0].map((k) => ({ upstream_start: last - k * 2000, top: 3, hosts: 3 }));
}
