// The topology test file runner: what a passing, a failing and a broken file report.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { operatorRegistry } from '../../operators/registry.ts';
import { runTopologyTestFile } from '../../runtime/topology-tests.ts';
import { runTestFiles } from '../../cli/test.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-topology-tests-'));
const write = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const run = (f: string) => runTopologyTestFile(f, { operators: operatorRegistry });

const topology = `
topology:
  version: 1
  name: t
  sources:
    - { name: metrics, topic: m, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp }
  operators:
    - { name: hot, type: filter, where: "value > 90" }
    - name: per-minute
      type: aggregate
      group_by: [host]
      window: { type: tumbling, size: 1m }
      aggregations: { n: { fn: count }, top: { fn: max, field: value } }
  sinks:
    - { name: out, topic: out }
`;
const sample = (t: number, host: string, value: number) => `{ timestamp: ${t}, name: cpu, host: ${host}, value: ${value}, unit: null, tags: {} }`;

describe('topology test files', () => {
  it('pass when every expectation holds, checking operator outputs, sinks, restarts and dead letters', async () => {
    const f = write(
      'pass.test.yaml',
      `${topology}
tests:
  - name: windows per host
    steps:
      - input: metrics
        records:
          - { key: a, value: ${sample(1000, 'a', 95)} }
          - { key: a, value: ${sample(2000, 'a', 50)} }
          - { key: a, value: ${sample(3000, 'a', 99)} }
      - expect:
          hot: [{ value: { value: 95 } }, { value: { value: 99 } }]
          out: []
      - restart: true
      - input: metrics
        key: a
        value: ${sample(61000, 'a', 91)}
      - expect:
          out: [{ key: a, timestamp: 59999, value: { host: a, window_start: 0, n: 2, top: 99 } }]
      - input: metrics
        key: a
        value: ${sample(1000, 'a', 92)}
      - expect:
          dead_letters: [{ reason: late, node: per-minute }]
`,
    );
    expect(await run(f)).toEqual([{ file: f, name: 'windows per host', ok: true }]);
  });

  it('fail with the file, the line of the expectation, and expected against actual records', async () => {
    const f = write(
      'fail.test.yaml',
      `${topology}
tests:
  - name: wrong expectation
    steps:
      - input: metrics
        key: a
        value: ${sample(1000, 'a', 95)}
      - expect:
          hot: [{ value: { value: 96 } }]
`,
    );
    const [r] = await run(f);
    expect(r!.ok).toBe(false);
    expect(r!.failure).toContain(`${f}:23: hot: expected 1 record(s), got 1`);
    expect(r!.failure).toContain('- expected #1: {"value":{"value":96}}');
    expect(r!.failure).toContain('+ actual   #1:');
    const lines: string[] = [];
    expect(await runTestFiles([f], (l) => lines.push(l))).toBe(1);
    expect(lines.at(-1)).toBe('0 passed, 1 failed');
  });

  it('report broken files and topologies with their location', async () => {
    expect((await run(write('yaml.test.yaml', 'tests: [\n')))[0]!.failure).toMatch(/yaml\.test\.yaml:2:1: /);
    expect((await run(write('no-tests.test.yaml', `${topology}\ntests: []\n`)))[0]!.failure).toMatch(/no-tests\.test\.yaml:\d+: 'tests' must list at least one test/);
    expect((await run(write('bad-step.test.yaml', `${topology}\ntests:\n  - name: x\n    steps:\n      - { frobnicate: 1 }\n`)))[0]!.failure).toMatch(/bad-step\.test\.yaml:20: unknown step/);
    const badTopology = await run(write('bad-topology.test.yaml', `${topology.replace('value > 90', 'valu > 90')}\ntests:\n  - name: x\n    steps: [{ advance: 1s }]\n`));
    expect(badTopology[0]!.failure).toMatch(/bad-topology\.test\.yaml:\d+:\d+: unknown field 'valu'/);
    expect((await run(write('unknown-output.test.yaml', `${topology}\ntests:\n  - name: x\n    steps: [{ expect: { nope: [] } }]\n`)))[0]!.failure).toMatch(/no sink or operator output 'nope' \(there are: out, hot, per-minute\)/);
  });
});
