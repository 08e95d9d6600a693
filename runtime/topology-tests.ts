// Topology tests as files (Redpanda Connect's config tests are the model): a YAML file names a
// topology and lists tests, each a sequence of steps (records into sources and tables, wall-clock
// steps, restarts) and expectations on what came out of sinks, operator outputs and the dead-letter
// topic. `vigil test` runs them in-process with the TestDriver; `npm test` runs every
// `*.test.yaml` of the repository.
//
//   topology: ../topology.yaml        # relative to this file; or the topology itself, as a mapping
//   env: { THRESHOLD: "90" }          # variables the topology may interpolate (allowlisted here)
//   tests:
//     - name: a deploy then errors
//       steps:
//         - input: deploys            # a source or table, by name
//           key: web-1                # optional (tables need one)
//           timestamp: 1000           # Kafka timestamp: ms or ISO 8601 (default: the wall clock)
//           value: { ... }            # the record (null deletes a table row)
//         - input: errors
//           records: [{ key, timestamp, value }, ...]
//         - advance: 30s              # move the wall clock (wall-clock timers fire)
//         - restart: true             # crash and restore every task from its changelogs
//         - expect:                   # what came out since the last expect, in order
//             alerts:                 # a sink, an operator (its first output) or operator.output
//               - value: { host: web-1 }   # the listed fields must match; key/timestamp when given
//             dead_letters: [{ reason: late, node: per-minute }]
//
// Each `expect` must list every record that came out of the outputs it names since the previous
// `expect` (none left over, none missing); an output it does not name is not checked.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, stringify } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import type { OperatorDefinition } from '../kernel/operator.ts';
import type { StreamRecord } from '../kernel/record.ts';
import { parseDuration } from '../kernel/spec.ts';
import { TopologyError } from '../kernel/diagnostics.ts';
import type { LoadOptions } from '../topology/loader.ts';
import type { Topology } from '../topology/types.ts';
import { loadTopology, parseTopology } from '../topology/loader.ts';
import { planTopology } from '../topology/plan.ts';
import type { Plan } from '../topology/types.ts';
import { TestDriver } from './test-driver.ts';
import type { DeadLetter } from './task.ts';

export interface TopologyTestResult {
  file: string;
  name: string;
  ok: boolean;
  /** Why it failed: a located message and, for a mismatch, the expected and actual records. */
  failure?: string;
}

export interface TopologyTestOptions {
  operators: ReadonlyMap<string, OperatorDefinition<any>>;
}

class TestFileError extends Error {}

interface Located {
  line: number;
}

type Step =
  | ({ kind: 'input'; input: string; records: Array<{ key?: string | null; timestamp?: number; value: Record<string, unknown> | null; headers?: Record<string, string> }> } & Located)
  | ({ kind: 'advance'; ms: number } & Located)
  | ({ kind: 'restart' } & Located)
  | ({ kind: 'expect'; outputs: Map<string, ExpectedRecord[]>; deadLetters?: Array<Record<string, unknown>> } & Located);

interface ExpectedRecord {
  key?: string | null;
  timestamp?: number;
  value?: Record<string, unknown>;
}

interface TestCase {
  name: string;
  line: number;
  steps: Step[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function timestampOf(v: unknown, where: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  throw new TestFileError(`${where}: timestamp must be epoch milliseconds or an ISO 8601 date, got ${JSON.stringify(v)}`);
}

/** One test file, read and planned: its cases' names, and a way to run each. */
export interface TopologyTestFile {
  file: string;
  /** Set when the file cannot be read, parsed or planned: the one failed result. */
  broken?: TopologyTestResult;
  names: string[];
  run(index: number): Promise<TopologyTestResult>;
}

/** Reads and runs one test file; a file that cannot be read or planned gives one failed result. */
export async function runTopologyTestFile(file: string, opts: TopologyTestOptions): Promise<TopologyTestResult[]> {
  const f = readTopologyTestFile(file, opts);
  if (f.broken !== undefined) return [f.broken];
  const out: TopologyTestResult[] = [];
  for (let i = 0; i < f.names.length; i++) out.push(await f.run(i));
  return out;
}

/** Reads and plans a test file without running it. */
export function readTopologyTestFile(file: string, opts: TopologyTestOptions): TopologyTestFile {
  const broken = (r: TopologyTestResult): TopologyTestFile => ({ file, broken: r, names: [], run: async () => r });
  const parsed = parseTestFile(file, opts);
  if (!('plan' in parsed)) return broken(parsed);
  const { plan, cases } = parsed;
  return { file, names: cases.map((c) => c.name), run: (i) => runCase(plan, cases[i]!, file) };
}

function parseTestFile(file: string, opts: TopologyTestOptions): TopologyTestResult | { plan: Plan; cases: TestCase[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { file, name: '(file)', ok: false, failure: `${file}: cannot read: ${(e as Error).message}` };
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, version: '1.2', uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const { line, col } = lc.linePos(e.pos[0]);
    return { file, name: '(file)', ok: false, failure: `${file}:${line}:${col}: ${e.message.split('\n')[0]}` };
  }
  const lineOf = (path: (string | number)[]): number => {
    const node = doc.getIn(path, true) as { range?: [number, number] } | undefined;
    return node?.range ? lc.linePos(node.range[0]).line : 1;
  };
  let plan: Plan;
  let cases: TestCase[];
  try {
    const root = doc.toJS() as unknown;
    if (!isObject(root)) throw new TestFileError(`${file}:1: a topology test file is a mapping with 'topology' and 'tests'`);
    const env = isObject(root.env) ? Object.fromEntries(Object.entries(root.env).map(([k, v]) => [k, String(v)])) : {};
    const loadOpts = { operators: opts.operators, env, envAllowlist: Object.keys(env) };
    if (typeof root.topology === 'string') plan = planTopology(loadTopology(resolve(dirname(file), root.topology), loadOpts));
    else if (isObject(root.topology)) plan = planTopology(inlineTopology(text, doc.getIn(['topology'], true) as YamlNode, file, lc, loadOpts));
    else throw new TestFileError(`${file}:${lineOf(['topology'])}: 'topology' must be a path (relative to this file) or a topology mapping`);
    if (!Array.isArray(root.tests) || root.tests.length === 0) throw new TestFileError(`${file}:${lineOf(['tests'])}: 'tests' must list at least one test`);
    cases = root.tests.map((t, i) => parseCase(t, i, file, lineOf));
  } catch (e) {
    if (e instanceof TopologyError) return { file, name: '(topology)', ok: false, failure: e.format() };
    if (e instanceof TestFileError) return { file, name: '(file)', ok: false, failure: e.message };
    throw e;
  }
  return { plan, cases };
}

/**
 * A topology written inside the test file: its lines are loaded as they stand (dedented), so that
 * problems are reported at their line and column in the test file.
 */
function inlineTopology(text: string, node: YamlNode, file: string, lc: LineCounter, opts: LoadOptions): Topology {
  const [start, end] = node.range!;
  const { line, col } = lc.linePos(start);
  const indent = col - 1;
  const block = text.slice(start - indent, end);
  const lines = block.split('\n');
  const dedentable = !('flow' in node && node.flow === true) && lines.every((l) => l.trim() === '' || l.startsWith(' '.repeat(indent)));
  if (!dedentable) return parseTopology(stringify(node.toJSON()), file, opts);
  try {
    return parseTopology(lines.map((l) => l.slice(indent)).join('\n'), file, opts);
  } catch (e) {
    if (!(e instanceof TopologyError)) throw e;
    throw new TopologyError(e.diagnostics.map((d) => ({ ...d, line: d.line + line - 1, column: d.column + indent })));
  }
}

function parseCase(raw: unknown, i: number, file: string, lineOf: (p: (string | number)[]) => number): TestCase {
  const at = (p: (string | number)[]) => `${file}:${lineOf(['tests', i, ...p])}`;
  if (!isObject(raw)) throw new TestFileError(`${at([])}: a test is a mapping with 'name' and 'steps'`);
  const name = typeof raw.name === 'string' ? raw.name : `test ${i + 1}`;
  if (!Array.isArray(raw.steps) || raw.steps.length === 0) throw new TestFileError(`${at([])}: test '${name}' needs 'steps'`);
  const steps: Step[] = raw.steps.map((s, j): Step => {
    const where = at(['steps', j]);
    const line = lineOf(['tests', i, 'steps', j]);
    if (!isObject(s)) throw new TestFileError(`${where}: a step is a mapping (input, advance, restart or expect)`);
    if (typeof s.input === 'string') {
      const one = (r: Record<string, unknown>, w: string) => {
        if (!('value' in r)) throw new TestFileError(`${w}: a record needs 'value' (null deletes a table row)`);
        if (r.value !== null && !isObject(r.value)) throw new TestFileError(`${w}: 'value' must be a mapping of the record's fields, or null`);
        return {
          key: r.key === undefined ? undefined : r.key === null ? null : String(r.key),
          timestamp: timestampOf(r.timestamp, w),
          value: r.value as Record<string, unknown> | null,
          ...(isObject(r.headers) ? { headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, String(v)])) } : {}),
        };
      };
      const records = Array.isArray(s.records)
        ? s.records.map((r, k) => {
            if (!isObject(r)) throw new TestFileError(`${at(['steps', j, 'records', k])}: a record is a mapping with 'value'`);
            return one(r, at(['steps', j, 'records', k]));
          })
        : [one(s, where)];
      return { kind: 'input', input: s.input, records, line };
    }
    if (s.advance !== undefined) {
      const ms = parseDuration(s.advance);
      if (typeof ms !== 'number') throw new TestFileError(`${where}: advance: ${ms.error}`);
      return { kind: 'advance', ms, line };
    }
    if (s.restart === true) return { kind: 'restart', line };
    if (isObject(s.expect)) {
      const outputs = new Map<string, ExpectedRecord[]>();
      let deadLetters: Array<Record<string, unknown>> | undefined;
      for (const [k, v] of Object.entries(s.expect)) {
        if (!Array.isArray(v)) throw new TestFileError(`${at(['steps', j, 'expect', k])}: expect.${k} must be a list of records (may be empty)`);
        if (k === 'dead_letters') deadLetters = v.map((d) => (isObject(d) ? d : {}));
        else
          outputs.set(
            k,
            v.map((r, n) => {
              if (!isObject(r)) throw new TestFileError(`${at(['steps', j, 'expect', k, n])}: an expected record is a mapping (value, key, timestamp)`);
              return {
                ...(r.key !== undefined ? { key: r.key === null ? null : String(r.key) } : {}),
                ...(r.timestamp !== undefined ? { timestamp: timestampOf(r.timestamp, at(['steps', j, 'expect', k, n])) } : {}),
                ...(isObject(r.value) ? { value: r.value } : {}),
              };
            }),
          );
      }
      return { kind: 'expect', outputs, deadLetters, line };
    }
    throw new TestFileError(`${where}: unknown step (use input, advance, restart or expect)`);
  });
  return { name, line: lineOf(['tests', i]), steps };
}

/** Whether `actual` has every field of `expected` with an equal value (objects compared the same way). */
function contains(actual: unknown, expected: unknown): boolean {
  if (isObject(expected)) {
    if (!isObject(actual)) return false;
    return Object.keys(expected).every((k) => Object.hasOwn(actual, k) && contains(actual[k], expected[k]));
  }
  if (Array.isArray(expected)) return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => contains(actual[i], e));
  if (typeof expected === 'number' && typeof actual === 'number') return expected === actual || Math.abs(expected - actual) <= 1e-9 * Math.max(1, Math.abs(expected));
  return actual === expected;
}

function matches(actual: StreamRecord, expected: ExpectedRecord): boolean {
  if (expected.key !== undefined && actual.key !== expected.key) return false;
  if (expected.timestamp !== undefined && actual.timestamp !== expected.timestamp) return false;
  return expected.value === undefined || contains(actual.value, expected.value);
}

const show = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

async function runCase(plan: Plan, c: TestCase, file: string): Promise<TopologyTestResult> {
  const driver = new TestDriver(plan);
  const seen = new Map<string, number>();
  let deadSeen = 0;
  const fail = (line: number, message: string): TopologyTestResult => ({ file, name: c.name, ok: false, failure: `${file}:${line}: ${message}` });
  try {
    for (const step of c.steps) {
      if (step.kind === 'input') {
        for (const r of step.records) {
          try {
            // Deferred work (HTTP lookups) settles before the next record, as after each batch.
            await driver.pipeAsync(step.input, r.value, { key: r.key, timestamp: r.timestamp, headers: r.headers });
          } catch (e) {
            return fail(step.line, (e as Error).message);
          }
        }
      } else if (step.kind === 'advance') driver.advanceWallClock(step.ms);
      else if (step.kind === 'restart') driver.restart();
      else {
        for (const [name, want] of step.outputs) {
          let all: StreamRecord[];
          try {
            all = driver.recorded(name);
          } catch (e) {
            return fail(step.line, (e as Error).message);
          }
          const got = all.slice(seen.get(name) ?? 0);
          seen.set(name, all.length);
          const problem = compare(got, want);
          if (problem !== undefined) return fail(step.line, `${name}: ${problem}`);
        }
        if (step.deadLetters !== undefined) {
          const all = driver.deadLetters();
          const got = all.slice(deadSeen);
          deadSeen = all.length;
          const problem = compareDeadLetters(got, step.deadLetters);
          if (problem !== undefined) return fail(step.line, `dead_letters: ${problem}`);
        }
      }
    }
  } catch (e) {
    return fail(c.line, `the test driver failed: ${(e as Error).message}`);
  }
  return { file, name: c.name, ok: true };
}

function compare(got: StreamRecord[], want: ExpectedRecord[]): string | undefined {
  const lines: string[] = [];
  const n = Math.max(got.length, want.length);
  let bad = got.length !== want.length;
  for (let i = 0; i < n; i++) {
    const g = got[i];
    const w = want[i];
    const ok = g !== undefined && w !== undefined && matches(g, w);
    if (!ok) bad = true;
    if (w !== undefined) lines.push(`  ${ok ? ' ' : '-'} expected #${i + 1}: ${show(w)}`);
    if (g !== undefined && !ok) lines.push(`  + actual   #${i + 1}: ${show({ key: g.key, timestamp: g.timestamp, value: g.value })}`);
  }
  return bad ? `expected ${want.length} record(s), got ${got.length}\n${lines.join('\n')}` : undefined;
}

function compareDeadLetters(got: DeadLetter[], want: Array<Record<string, unknown>>): string | undefined {
  const view = (d: DeadLetter) => ({ stage: d.stage, reason: d.reason, node: d.node, detail: d.detail });
  const ok = got.length === want.length && want.every((w, i) => contains(view(got[i]!), w));
  if (ok) return undefined;
  return `expected ${want.length} dead letter(s), got ${got.length}\n${want.map((w) => `  - expected: ${show(w)}`).join('\n')}\n${got.map((g) => `  + actual:   ${show(view(g))}`).join('\n')}`;
}
