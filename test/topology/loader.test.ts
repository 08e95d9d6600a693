import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadTopology as loadTopologyWith, parseTopology as parseTopologyWith } from '../../topology/loader.ts';
import type { LoadOptions as FullLoadOptions } from '../../topology/loader.ts';
import { operatorRegistry } from '../../operators/registry.ts';
import { planTopology } from '../../topology/plan.ts';
import { TopologyError } from '../../kernel/diagnostics.ts';
import { TestDriver } from '../../runtime/test-driver.ts';

/** The loader with the built-in operators unless a test gives others. */
type LoadOptions = Partial<FullLoadOptions>;
const loadTopology = (file: string, opts: LoadOptions = {}) => loadTopologyWith(file, { operators: operatorRegistry, ...opts });
const parseTopology = (text: string, file: string, opts: LoadOptions = {}) => parseTopologyWith(text, file, { operators: operatorRegistry, ...opts });

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const DEMO = fileURLToPath(new URL('../../topology/examples/demo.yaml', import.meta.url));

/** Header directives of a fixture: `# expect: L:C: [CODE] message`, `# env: A=1, B=2`, `# allow-env: A, B`. */
function fixtureOptions(text: string): { expect: string[]; opts: LoadOptions } {
  const expect = [...text.matchAll(/^# expect: (.*)$/gm)].map((m) => m[1]);
  const env: Record<string, string> = {};
  const e = /^# env: (.*)$/m.exec(text);
  if (e !== null) for (const kv of e[1].split(',')) {
    const [k, v] = kv.trim().split('=');
    env[k] = v;
  }
  const a = /^# allow-env: (.*)$/m.exec(text);
  return { expect, opts: { env, envAllowlist: a === null ? [] : a[1].split(',').map((s) => s.trim()) } };
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof TopologyError) return e.diagnostics.map((d) => `${d.line}:${d.column}: [${d.code}] ${d.message}`);
    throw e;
  }
  return [];
}

const load = (text: string, opts: LoadOptions = {}) => parseTopology(text, join(FIXTURES, 'inline.yaml'), { env: {}, ...opts });
const loadProblems = (text: string, opts: LoadOptions = {}) => problems(() => planTopology(load(text, opts)));

const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml')).sort();

describe('golden fixtures', () => {
  it('covers the required failures', () => {
    const codes = new Set(
      files.filter((f) => f.endsWith('.fail.yaml')).flatMap((f) => fixtureOptions(readFileSync(join(FIXTURES, f), 'utf8')).expect.map((l) => /\[([A-Z_]+)\]/.exec(l)![1])),
    );
    for (const c of ['YAML_TAG', 'FORBIDDEN_KEY', 'ENV_NOT_ALLOWED', 'UNKNOWN_OPERATOR', 'MISSING_FIELD', 'EXPR_UNKNOWN_FIELD', 'CYCLE', 'TOPIC_CONFLICT', 'PATH_NOT_ALLOWED', 'SINK_SCHEMA', 'EXPR_TYPE']) {
      expect(codes, c).toContain(c);
    }
  });

  it.each(files.filter((f) => f.endsWith('.fail.yaml')))('%s is refused with the expected diagnostics', (f) => {
    const path = join(FIXTURES, f);
    const { expect: want, opts } = fixtureOptions(readFileSync(path, 'utf8'));
    expect(want.length, 'a .fail.yaml needs # expect: lines').toBeGreaterThan(0);
    const got = problems(() => planTopology(loadTopology(path, opts)));
    expect(got.length, got.join('\n')).toBe(want.length);
    got.forEach((g, i) => {
      if (want[i].endsWith('...')) expect(g.startsWith(want[i].slice(0, -3)), `${g}\n  vs ${want[i]}`).toBe(true);
      else expect(g).toBe(want[i]);
    });
  });

  it.each(files.filter((f) => !f.endsWith('.fail.yaml')))('%s loads and plans', (f) => {
    const path = join(FIXTURES, f);
    const { opts } = fixtureOptions(readFileSync(path, 'utf8'));
    expect(problems(() => planTopology(loadTopology(path, opts)))).toEqual([]);
  });

  it('the demo topology validates', () => {
    const t = loadTopology(DEMO, { env: {} });
    expect(t.name).toBe('demo-monitor');
    expect(t.sources.map((s) => s.name)).toEqual(['metrics', 'alert-stream', 'silences']);
    expect(t.nodes.map((n) => `${n.name}:${n.type}`)).toEqual(['latency:filter', 'anomalies:detect', 'anomaly-alert:alert', 'outages:incident', 'disk:filter', 'disk-trend:predict', 'disk-alert:alert', 'notify:route']);
    expect(t.sinks.map((s) => `${s.name}<-${s.from.name}${s.from.output ? `.${s.from.output}` : ''}`)).toEqual([
      'anomaly-alerts<-anomaly-alert',
      'disk-alerts<-disk-alert',
      'notifications<-notify.oncall',
      'anomaly-audit<-anomaly-alert.audit',
      'disk-audit<-disk-alert.audit',
      'route-audit<-notify.audit',
      'incident-audit<-outages.audit',
      'incidents<-outages',
    ]);
    expect(t.nodes[2].compiled.outputs[0]!.schema.name).toBe('Alert');
    // the rules and incidents in one sub-topology, the router reading the alerts topic in another
    expect(planTopology(t).subtopologies.filter((s) => s.nodes.length > 0)).toHaveLength(2);
  });
});

describe('the demo topology end to end (in-process test driver)', () => {
  it('raises an anomaly alert at the onset of a latency jump and resolves it at the recovery, and groups it into an incident', () => {
    const d = new TestDriver(planTopology(loadTopology(DEMO, { env: {} })));
    const ts = 1_700_000_000_000;
    const sample = (i: number, value: number) => d.pipe('metrics', { timestamp: ts + i * 10_000, name: 'http.latency.p99', host: 'api', value, unit: 'ms', tags: {} }, { key: 'api' });
    let i = 0;
    for (; i < 60; i++) sample(i, 60 + (i % 5));
    for (; i < 70; i++) sample(i, 240);
    for (; i < 160; i++) sample(i, 60 + (i % 5));
    // Both rules write the `alerts` topic (keyed by the alert's fingerprint): one FIRING, one RESOLVED.
    const alerts = d.output('alerts');
    expect(alerts.map((r) => [r.value.rule, r.value.entity, r.value.status])).toEqual([
      ['LatencyAnomaly', 'api', 'FIRING'],
      ['LatencyAnomaly', 'api', 'RESOLVED'],
    ]);
    // Fired once the anomaly held for 20 s (two samples), at the second anomalous sample.
    expect(alerts[0]!.value).toMatchObject({ timestamp: ts + 620_000, category: 'PERFORMANCE', severity: 'WARNING', value: 240, summary: expect.stringMatching(/^p99 latency of api at 240 ms, expected 6\d/) });
    // Read back from the topic by the router: one notification when it fired, one when it resolved
    // (the router keeps event time, which moves with its alerts: the end of input flushes the last tick).
    d.endOfInput();
    expect(d.output('alerting.notifications').map((r) => [r.value.status, r.value.reason])).toEqual([
      ['FIRING', 'first notification'],
      ['RESOLVED', 'all alerts resolved'],
    ]);
    expect(d.output('alerting.audit').map((r) => r.value.event).filter((e) => !String(e).startsWith('INCIDENT_'))).toEqual(['PENDING', 'FIRING', 'RESOLVED', 'NOTIFIED', 'NOTIFIED']);
    expect(d.output('incidents').map((r) => [r.value.status, r.value.root])).toEqual([
      ['open', 'api'],
      ['closed', 'api'],
    ]);
    expect(d.deadLetters()).toEqual([]);
  });
});

describe('loader: the file format', () => {
  const minimal = `version: 1
name: t
sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
operators:
  - name: a
    type: filter
    where: value > 1
  - name: b
    type: map
    fields:
      host: host
      v: value * 2
sinks:
  - name: out
    topic: out
    schema: vigil.telemetry.MetricSample
    key: host
`;

  it('applies defaults: chain, dead-letter topic, commit interval, watermark settings, partitions', () => {
    const t = load(minimal.replace('schema: vigil.telemetry.MetricSample\n    key: host', 'schema: vigil.telemetry.MetricSample\n    from: a\n    key: host'));
    expect(t.guarantee).toBe('at_least_once');
    expect(t.deadLetterTopic).toBe('t.dlq');
    expect(t.commitIntervalMs).toBe(30_000);
    expect(t.sources[0]).toMatchObject({ maxOutOfOrderMs: 0, idleTimeoutMs: 30_000, partitions: 1, schemaName: 'vigil.telemetry.MetricSample' });
    expect(t.sources[0].timestampField).toBeUndefined();
    expect(t.nodes.map((n) => n.inputs.map((i) => i.from))).toEqual([[{ name: 'metrics' }], [{ name: 'a' }]]);
    expect(t.nodes[1].inputs[0]!.schema).toBe(t.nodes[0].compiled.outputs[0]!.schema);
    expect(t.sinks[0]).toMatchObject({ from: { name: 'a' }, keyField: 'host', partitions: 1 });
    expect(t.nodes[0].at).toEqual({ file: join(FIXTURES, 'inline.yaml'), line: 8, column: 5 });
    const eos = load(minimal.replace('name: t\n', 'name: t\nguarantee: exactly_once\n').replace('    key: host\n', '    from: a\n'));
    expect(eos.commitIntervalMs).toBe(100);
  });

  it('a sink defaults to the last operator', () => {
    expect(loadProblems(minimal)).toEqual([
      "19:13: [SINK_SCHEMA] sink 'out': field 'timestamp' (long (timestamp-millis)) of vigil.telemetry.MetricSample has no default and 'b' does not produce it (it produces: host, v)",
      "19:13: [SINK_SCHEMA] sink 'out': field 'name' (string) of vigil.telemetry.MetricSample has no default and 'b' does not produce it (it produces: host, v)",
      "19:13: [SINK_SCHEMA] sink 'out': field 'value' (double) of vigil.telemetry.MetricSample has no default and 'b' does not produce it (it produces: host, v)",
    ]);
  });

  it('orders operators topologically whatever the file order', () => {
    const t = load(`version: 1
name: t
sources:
  - {name: m, topic: m, schema: vigil.telemetry.MetricSample}
operators:
  - {name: c, type: filter, from: b, where: "value > 3"}
  - {name: b, type: filter, from: a, where: "value > 2"}
  - {name: a, type: filter, from: m, where: "value > 1"}
`);
    expect(t.nodes.map((n) => n.name)).toEqual(['a', 'b', 'c']);
  });

  it('requires from when the first operator has several sources to choose from', () => {
    expect(loadProblems(`version: 1
name: t
sources:
  - {name: m, topic: m, schema: vigil.telemetry.MetricSample}
  - {name: l, topic: l, schema: vigil.telemetry.LogLine}
operators:
  - {name: a, type: filter, where: "true"}
  - {name: b, type: filter, from: l, where: "true"}
`)).toEqual(["7:5: [MISSING_FIELD] operator 'a' needs 'from': the first operator defaults to the only source, but there are 2"]);
  });

  it('points into expressions: plain, quoted with escapes, block scalars', () => {
    const text = `version: 1
name: t
sources:
  - {name: m, topic: m, schema: vigil.telemetry.MetricSample}
operators:
  - name: a
    type: filter
    where: "name == \\"x\\" && vlue > 1"
  - name: b
    type: filter
    from: m
    where: |
      name == "x"
        && vlue > 1
  - name: c
    type: filter
    from: m
    where: 'name == ''x'' && vlue > 1'
`;
    expect(loadProblems(text).map((p) => p.slice(0, p.indexOf(' ['))).filter((p) => !p.includes('SOURCE'))).toEqual(['8:30:', '14:12:', '18:30:']);
  });

  it('refuses a file version other than 1, multiple documents and non-mappings', () => {
    expect(loadProblems('version: 2\nname: t\n')).toEqual(['1:10: [VERSION] unsupported topology file version 2: this Vigil reads version 1']);
    expect(loadProblems('version: 1\n---\nversion: 1\n')[0]).toMatch(/^2:1: \[YAML_SYNTAX\] Source contains multiple documents/);
    expect(loadProblems('- a\n- b\n')).toEqual(['1:1: [INVALID_VALUE] a topology file is a mapping with version, name, sources, operators and sinks']);
    expect(loadProblems('name: t\nsources: []\n')).toEqual([
      "1:1: [MISSING_FIELD] missing required field 'version' (write version: 1)",
      "2:10: [INVALID_VALUE] 'sources' needs at least one entry",
    ]);
  });

  it('refuses duplicate keys', () => {
    expect(loadProblems('version: 1\nname: a\nname: b\nsources: []\n')[0]).toMatch(/^3:1: \[YAML_SYNTAX\] duplicate key/);
  });

  it('checks the timestamp field type and duplicate topics', () => {
    expect(loadProblems(`version: 1
name: t
sources:
  - {name: m, topic: m, schema: vigil.telemetry.MetricSample, timestamp: host}
sinks:
  - {name: o, topic: o, schema: vigil.telemetry.MetricSample}
`)).toEqual(["4:74: [INVALID_VALUE] the timestamp field must be an int or long (epoch ms), but 'host' is string"]);
    expect(loadProblems(`version: 1
name: t
sources:
  - {name: m, topic: m, schema: vigil.telemetry.MetricSample}
  - {name: n, topic: m, schema: vigil.telemetry.MetricSample, timestamp: timestamp}
sinks:
  - {name: o, from: m, topic: o, schema: vigil.telemetry.MetricSample}
  - {name: p, from: n, topic: p, schema: vigil.telemetry.MetricSample}
`)).toEqual(["5:22: [TOPIC_CONFLICT] topic 'm' is already read by source 'm': read a topic once and branch with operators"]);
  });

  it('refuses a dead-letter topic that is also a data topic', () => {
    expect(loadProblems(`version: 1
name: t
dead_letter_topic: m
sources:
  - {name: m, topic: m, schema: vigil.telemetry.MetricSample}
sinks:
  - {name: o, topic: o, schema: vigil.telemetry.MetricSample}
`)).toEqual(["3:20: [TOPIC_CONFLICT] the dead-letter topic 'm' is also used by source 'm'"]);
  });

  it('accepts compatible schemas on a topic written by a sink and read by a source', () => {
    expect(loadProblems(`version: 1
name: t
sources:
  - {name: m, topic: m, schema: vigil.telemetry.MetricSample}
  - {name: back, topic: loop, schema: vigil.telemetry.MetricSample}
sinks:
  - {name: o, from: m, topic: loop, schema: vigil.telemetry.MetricSample}
  - {name: p, from: back, topic: other, schema: vigil.telemetry.MetricSample}
`)).toEqual([]);
  });

  it('the sink key must be a field of the sink schema', () => {
    expect(loadProblems(`version: 1
name: t
sources:
  - {name: m, topic: m, schema: vigil.telemetry.MetricSample}
sinks:
  - {name: o, topic: o, schema: vigil.telemetry.MetricSample, key: hots}
`)).toEqual(["6:68: [EXPR_UNKNOWN_FIELD] unknown field 'hots'; did you mean 'host'? (vigil.telemetry.MetricSample has: timestamp, name, host, value, unit, tags)"]);
  });

  it('collects every problem, sorted, and formats them as file:line:column: message', () => {
    try {
      load('version: 1\nname: "bad name"\nguarantee: maybe\nsources:\n  - {name: m, topic: m, schema: vigil.telemetry.Nope}\nsinks: [{name: o, topic: o, schema: vigil.telemetry.MetricSample}]\n');
      throw new Error('expected a TopologyError');
    } catch (e) {
      expect(e).toBeInstanceOf(TopologyError);
      const err = e as TopologyError;
      expect(err.code).toBe('TOPOLOGY_INVALID');
      const file = join(FIXTURES, 'inline.yaml');
      expect(err.format()).toBe(
        [
          `${file}:2:7: 'name' must match ^[a-zA-Z0-9._-]{1,120}$, got 'bad name'`,
          `${file}:3:12: 'guarantee' must be one of at_least_once, exactly_once, got the string 'maybe'`,
          `${file}:5:33: unknown schema 'vigil.telemetry.Nope' (schemas are named by fullname, namespace included)`,
        ].join('\n'),
      );
      expect(err.message).toContain('3 problems in topology');
    }
  });

  it('reports an unreadable file', () => {
    expect(problems(() => loadTopology('/nonexistent/vigil.yaml'))).toEqual([
      "1:1: [FILE_READ] cannot read the topology file: ENOENT: no such file or directory, stat '/nonexistent/vigil.yaml'",
    ]);
  });

  it('accepts a custom operator registry', () => {
    expect(loadProblems(minimal, { operators: new Map() })).toContain(
      '9:11: [UNKNOWN_OPERATOR] unknown operator type \'filter\' (types: )',
    );
  });
});

describe('loader: environment variables', () => {
  const text = `version: 1
name: \${NAME}
sources:
  - name: m
    topic: \${TOPIC:-telemetry.metrics}
    schema: vigil.telemetry.MetricSample
    partitions: \${PARTS}
operators:
  - name: a
    type: filter
    where: value > \${LIMIT}
`;

  it('interpolates allowlisted variables (option or VIGIL_ENV_ALLOWLIST), with defaults and typed whole values', () => {
    const t = load(text, { env: { NAME: 'env-demo', PARTS: '8', LIMIT: '75.5', VIGIL_ENV_ALLOWLIST: 'LIMIT, PARTS' }, envAllowlist: ['NAME', 'TOPIC'] });
    expect(t.name).toBe('env-demo');
    expect(t.sources[0]).toMatchObject({ topic: 'telemetry.metrics', partitions: 8 });
    expect(t.nodes[0].config.where).toBe('value > 75.5');
  });

  it('refuses variables that are not allowlisted, or unset, naming them', () => {
    expect(loadProblems(text, { env: { NAME: 'x', PARTS: '2', LIMIT: '1' }, envAllowlist: ['NAME', 'LIMIT', 'TOPIC'] })).toEqual([
      "7:17: [ENV_NOT_ALLOWED] environment variable 'PARTS' is not allowed: the operator running Vigil must allow it (VIGIL_ENV_ALLOWLIST or --allow-env)",
    ]);
    expect(loadProblems(text, { env: { VIGIL_ENV_ALLOWLIST: 'NAME,TOPIC,PARTS,LIMIT', PARTS: '2', LIMIT: '1' } })).toEqual([
      "2:7: [ENV_UNSET] environment variable 'NAME' is not set (give a default with ${NAME:-value})",
    ]);
  });

  it('the file cannot allow variables itself', () => {
    expect(loadProblems(`version: 1\nname: t\nenv_allowlist: [SECRET]\nsources:\n  - {name: m, topic: "\${SECRET}", schema: vigil.telemetry.MetricSample}\nsinks: [{name: o, topic: o, schema: vigil.telemetry.MetricSample}]\n`, { env: { SECRET: 's' } })).toEqual([
      "3:1: [UNKNOWN_FIELD] unknown field 'env_allowlist' in the topology file",
      "5:23: [ENV_NOT_ALLOWED] environment variable 'SECRET' is not allowed: the operator running Vigil must allow it (VIGIL_ENV_ALLOWLIST or --allow-env)",
    ]);
  });

  it('uses process.env when no env is given', () => {
    process.env.VIGIL_TEST_TOPOLOGY_NAME = 'from-process-env';
    try {
      const t = parseTopology(
        'version: 1\nname: ${VIGIL_TEST_TOPOLOGY_NAME}\nsources:\n  - {name: m, topic: m, schema: vigil.telemetry.MetricSample}\nsinks:\n  - {name: o, topic: o, schema: vigil.telemetry.MetricSample}\n',
        'inline.yaml',
        { envAllowlist: ['VIGIL_TEST_TOPOLOGY_NAME'] },
      );
      expect(t.name).toBe('from-process-env');
    } finally {
      delete process.env.VIGIL_TEST_TOPOLOGY_NAME;
    }
  });
});

describe('loader: schema files', () => {
  function dirWith(files: Record<string, string>): string {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-loader-'));
    for (const [name, body] of Object.entries(files)) {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), body);
    }
    return dir;
  }
  const topo = (schemas: string, sinkSchema = 'x.Thing') => `version: 1
name: t
schemas: [${schemas}]
sources:
  - {name: m, topic: m, schema: vigil.telemetry.MetricSample}
operators:
  - {name: a, type: map, fields: {host: host}}
sinks:
  - {name: o, topic: o, schema: ${sinkSchema}}
`;
  const thing = JSON.stringify({ type: 'record', name: 'Thing', namespace: 'x', fields: [{ name: 'host', type: 'string' }, { name: 'n', type: 'int', default: 0 }] });

  it('loads extra schemas relative to the file', () => {
    const dir = dirWith({ 'topology.yaml': topo('s/thing.avsc'), 's/thing.avsc': thing });
    const t = loadTopology(join(dir, 'topology.yaml'), { env: {} });
    expect(t.sinks[0].schemaName).toBe('x.Thing');
  });

  it('refuses symlinks that leave the directory', () => {
    const outside = dirWith({ 'thing.avsc': thing });
    const dir = dirWith({ 'topology.yaml': topo('link.avsc') });
    symlinkSync(join(outside, 'thing.avsc'), join(dir, 'link.avsc'));
    expect(problems(() => loadTopology(join(dir, 'topology.yaml'), { env: {} }))).toEqual([
      "3:11: [PATH_NOT_ALLOWED] 'link.avsc' resolves outside the topology's directory",
      "9:33: [UNKNOWN_SCHEMA] unknown schema 'x.Thing' (schemas are named by fullname, namespace included)",
    ]);
  });

  it('reports missing, malformed and invalid schema files at their entry', () => {
    const dir = dirWith({
      'topology.yaml': topo('missing.avsc, bad.avsc, invalid.avsc, proto.avsc, notavsc.txt', 'vigil.telemetry.MetricSample'),
      'bad.avsc': '{ nope',
      'invalid.avsc': JSON.stringify({ type: 'record', name: 'Bad', namespace: 'x', fields: [{ name: 'n', type: 'int', default: 'zero' }] }),
      'proto.avsc': '{"type": "record", "name": "P", "fields": [], "__proto__": {"x": 1}}',
      'notavsc.txt': '{}',
    });
    const got = problems(() => loadTopology(join(dir, 'topology.yaml'), { env: {} }));
    expect(got[0]).toBe("3:11: [FILE_READ] cannot read schema file 'missing.avsc': ENOENT");
    expect(got[1]).toMatch(/^3:25: \[SCHEMA_INVALID\] schema file .*bad\.avsc: /);
    expect(got[2]).toMatch(/^3:35: \[SCHEMA_INVALID\] schema file .*invalid\.avsc: type x\.Bad: incompatible field default "zero"/);
    expect(got[3]).toMatch(/^3:49: \[FORBIDDEN_KEY\] schema file .*proto\.avsc: '__proto__' is not allowed as a key/);
    expect(got[4]).toBe("3:61: [PATH_NOT_ALLOWED] 'notavsc.txt' is not an .avsc file");
  });

  it('refuses a field named __proto__ (at any depth) and a schema "file" that is not a regular file, without blocking on a FIFO', () => {
    const dir = dirWith({
      'topology.yaml': topo('deep.avsc, fifo.avsc, sub.avsc', 'vigil.telemetry.MetricSample'),
      'deep.avsc': JSON.stringify({ type: 'record', name: 'D', namespace: 'x', fields: [{ name: 'inner', type: { type: 'record', name: 'I', fields: [{ name: '__proto__', type: 'string' }] } }] }),
      'sub.avsc/readme': 'a directory named like a schema',
    });
    execFileSync('mkfifo', [join(dir, 'fifo.avsc')]);
    const got = problems(() => loadTopology(join(dir, 'topology.yaml'), { env: {} }));
    expect(got[0]).toMatch(/^3:11: \[FORBIDDEN_KEY\] schema file .*deep\.avsc: '__proto__' is not allowed as a field name/);
    expect(got[1]).toBe("3:22: [FILE_READ] 'fifo.avsc' is not a regular file");
    expect(got[2]).toBe("3:33: [FILE_READ] 'sub.avsc' is not a regular file");
  });

  it('refuses an extra schema that redefines a built-in type', () => {
    const dir = dirWith({
      'topology.yaml': topo('alert.avsc', 'vigil.telemetry.MetricSample'),
      'alert.avsc': JSON.stringify({ type: 'record', name: 'Alert', namespace: 'vigil.alerting', fields: [] }),
    });
    const got = problems(() => loadTopology(join(dir, 'topology.yaml'), { env: {} }));
    expect(got[0]).toMatch(/^3:11: \[SCHEMA_INVALID\] schema file .*alert\.avsc: type vigil\.alerting\.Alert is already defined in .*schemas\/alert\.avsc$/);
  });
});

describe('hostile input: directives, huge keys, control characters', () => {
  /** The diagnostics of a refused topology as `vigil validate` prints them. */
  const formatted = (text: string): string => {
    try {
      load(text);
    } catch (x) {
      if (x instanceof TopologyError) return x.format();
      throw x;
    }
    throw new Error('the topology loaded');
  };
  const base = `version: 1
name: t
sources:
  - { name: m, topic: m, schema: vigil.telemetry.MetricSample }
sinks:
  - { name: out, topic: out }
`;

  it('refuses a %YAML directive other than 1.2 (it would read 010 as 8), and accepts %YAML 1.2', () => {
    expect(loadProblems(`%YAML 1.1\n---\n${base}`)).toEqual(['1:1: [YAML_SYNTAX] %YAML 1.1 is not supported: topology files are YAML 1.2 (remove the directive)']);
    expect(loadProblems(`%YAML 1.2\n---\n${base}`)).toEqual([]);
  });

  it('answers a huge unknown key at once, without a suggestion, and cuts the message', () => {
    const key = 'k'.repeat(2_000_000);
    const got = problems(() => load(`${base}? ${key}\n: 1\n`));
    expect(got).toHaveLength(1);
    expect(got[0]!).toMatch(/^7:3: \[UNKNOWN_FIELD\] /);
    expect(got[0]!).not.toMatch(/did you mean/);
    expect(formatted(`${base}? ${key}\n: 1\n`).length).toBeLessThan(2000);
  });

  it('prints control characters in values escaped, so a value cannot forge terminal output', () => {
    const out = formatted(base.replace('name: t', 'name: "t\\u001b[2K\\rOK topology.yaml"'));
    expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f]/);
    expect(out).toContain('\\u001b');
  });
});

describe('topics Kafka refuses, and loops through a topic', () => {
  it("refuses '.' and '..', names that collide in Kafka's metrics, and a sink writing a topic its own input comes from", () => {
    const got = loadProblems(`version: 1
name: t
sources:
  - { name: a, topic: "..", schema: vigil.telemetry.MetricSample }
  - { name: b, topic: m.x, schema: vigil.telemetry.MetricSample }
operators:
  - { name: f, type: filter, from: b, where: value > 1 }
  - { name: g, type: filter, from: a, where: value > 1 }
sinks:
  - { name: loop, from: f, topic: m.x }
  - { name: clash, from: g, topic: m_x }
`);
    expect(got).toEqual([
      "4:23: [TOPIC_NAME] Kafka refuses '..' as a topic name",
      "10:35: [TOPIC_CONFLICT] sink 'loop' writes topic 'm.x', which source 'b' upstream of it reads: every record would come back for ever",
      "11:36: [TOPIC_NAME] topics 'm.x' and 'm_x' collide in Kafka ('.' and '_' are the same in its metric names): Kafka refuses to create the second",
    ]);
  });

  it('accepts a topic written by one branch and read back by another (the demo reads its alerts back for the router)', () => {
    expect(loadProblems(readFileSync(DEMO, 'utf8'))).toEqual([]);
  });
});

describe('generated schema names', () => {
  it('refuses two operator names that give one generated schema name', () => {
    const got = loadProblems(`version: 1
name: t
sources:
  - { name: m, topic: m, schema: vigil.telemetry.MetricSample }
operators:
  - { name: a-b, type: filter, where: value > 1 }
  - { name: aB, type: filter, where: value > 2 }
sinks:
  - { name: out, topic: out }
`);
    expect(got).toEqual(["7:13: [DUPLICATE_NAME] operators 'a-b' and 'aB' would both name their output schema vigil.generated.AB: rename one"]);
  });
});

describe('odd files and encodings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-odd-'));
  const write = (name: string, bytes: Buffer | string): string => {
    writeFileSync(join(dir, name), bytes);
    return join(dir, name);
  };
  const located = (file: string): string[] => problems(() => loadTopology(file, { env: {} })).map((p) => p.replace(/^(\d+:\d+): /, '$1 '));

  it('names the encoding: UTF-16 (with or without a byte-order mark), invalid UTF-8 at its line and column, a NUL where it is', () => {
    expect(located(write('bom16.yaml', Buffer.from('\ufeffversion: 1\n', 'utf16le')))).toEqual(['1:1 [FILE_READ] the topology file is UTF-16 (or another wide encoding): save it as UTF-8']);
    expect(located(write('raw16.yaml', Buffer.from('version: 1\n', 'utf16le')))).toEqual(['1:1 [FILE_READ] the topology file is UTF-16 (or another wide encoding): save it as UTF-8']);
    expect(located(write('latin1.yaml', Buffer.from('version: 1\nname: "caf\xe9"\n', 'latin1')))).toEqual(['2:11 [FILE_READ] the topology file is not valid UTF-8: save it as UTF-8']);
    expect(located(write('nul.yaml', 'version: 1\nna\u0000me: t\n'))).toEqual(['2:3 [YAML_SYNTAX] a NUL character: a topology file is text']);
  });

  it('refuses a FIFO (without blocking) and a directory as the topology file', () => {
    execFileSync('mkfifo', [join(dir, 'fifo.yaml')]);
    expect(located(join(dir, 'fifo.yaml'))).toEqual(['1:1 [FILE_READ] the topology file is not a regular file']);
    mkdirSync(join(dir, 'd.yaml'));
    expect(located(join(dir, 'd.yaml'))).toEqual(['1:1 [FILE_READ] the topology file is not a regular file']);
  });
});

describe('depth and size limits, located', () => {
  const head = `version: 1
name: t
sources:
  - { name: m, topic: m, schema: vigil.telemetry.MetricSample }
operators:
`;
  const tail = 'sinks:\n  - { name: out, topic: out }\n';

  it('refuses more than 1000 operators at once, and plans a chain of 1000', () => {
    const ops = (n: number) => Array.from({ length: n }, (_, i) => `  - { name: f${i}, type: filter, where: value > 1 }\n`).join('');
    expect(loadProblems(head + ops(10_000) + tail)).toEqual(['5:1: [INVALID_VALUE] 10000 operators: a topology has at most 1000 (split it into several topologies joined by topics)']);
    expect(loadProblems(head + ops(1000) + tail)).toEqual([]);
  });

  it('refuses nesting deeper than 64 levels, in block or flow style, where it is', () => {
    expect(loadProblems(`${head}  - { name: f, type: filter, where: value > 1, x: ${'['.repeat(100)}${']'.repeat(100)} }\n${tail}`)).toContainEqual(expect.stringMatching(/^6:\d+: \[INVALID_VALUE\] nested deeper than 64 levels: a topology file is not that deep$/));
    const deep = loadProblems(`${head}  - { name: f, type: filter, where: value > 1, x: ${'['.repeat(20_000)}${']'.repeat(20_000)} }\n${tail}`);
    expect(deep).toContainEqual(expect.stringMatching(/^6:\d+: \[(YAML_SYNTAX|INVALID_VALUE)\] nested (too deeply \(at most 64 levels\)|deeper than 64 levels)/));
  });
});

describe('source start', () => {
  const yaml = (extra: string) => `version: 1
name: s
sources:
  - { name: metrics, topic: m, schema: vigil.telemetry.MetricSample${extra} }
operators:
  - { name: all, type: filter, where: value >= 0 }
sinks:
  - { name: out, from: all, topic: o }
`;
  it('defaults to earliest; latest marks the planned source; tables refuse latest', () => {
    const src = (extra: string) => planTopology(parseTopology(yaml(extra), 't.yaml')).subtopologies[0]!.sources[0]!;
    expect(src('').startLatest).toBeUndefined();
    expect(src(', start: latest').startLatest).toBe(true);
    expect(problems(() => parseTopology(yaml(', start: newest'), 't.yaml'))[0]).toMatch(/^4:.*start/);
    expect(problems(() => parseTopology(yaml(', table: true, start: latest'), 't.yaml'))).toContain(
      "4:90: [INVALID_VALUE] a table reads its topic from the earliest offset (the latest value of every key): 'start: latest' only applies to streams",
    );
  });
});

describe('interpolated environment values in messages', () => {
  it('are shown as the ${NAME} that brought them, never as their value', () => {
    const yaml = `version: 1
name: s
sources:
  - { name: metrics, topic: "\${TOPIC}", schema: vigil.telemetry.MetricSample }
operators:
  - { name: all, type: filter, where: value >= 0 }
sinks:
  - { name: out, from: all, topic: o }
`;
    const found = problems(() => parseTopology(yaml, 't.yaml', { env: { TOPIC: 'no spaces s3cr3t' }, envAllowlist: ['TOPIC'] }));
    expect(found).toEqual(["4:29: [INVALID_VALUE] 'topic' must match ^[a-zA-Z0-9._-]{1,249}$, got '${TOPIC}'"]);
    expect(found.join('\n')).not.toContain('s3cr3t');
  });
});
