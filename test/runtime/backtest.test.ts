// vigil backtest: topologies over recorded CSV and JSON lines files, in event time.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../connectors/kafka-jars.ts';
import { MAX_LINE, RecordFileError, parseTimestamp } from '../../connectors/record-files.ts';
import { operatorRegistry } from '../../operators/registry.ts';
import { runBacktest } from '../../runtime/backtest.ts';
import type { BacktestInput } from '../../runtime/backtest.ts';
import { parseTopology } from '../../topology/loader.ts';
import { planTopology } from '../../topology/plan.ts';

const plan = (yaml: string) => planTopology(parseTopology(yaml, 'bt.yaml', { operators: operatorRegistry }));

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'vigil-backtest-'));
}

function file(d: string, name: string, text: string | Buffer): string {
  const f = join(d, name);
  writeFileSync(f, text);
  return f;
}

function jsonl(path: string): Array<Record<string, any>> {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, any>);
}

const H = 3_600_000;
const T0 = Date.UTC(2014, 6, 1);

/** Per host, the count and mean of samples per hour. */
const HOURLY = `
version: 1
name: hourly
sources:
  - { name: metrics, topic: m, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp, max_out_of_order: 10m }
operators:
  - name: hourly
    type: aggregate
    group_by: [host]
    window: { type: tumbling, size: 1h }
    aggregations:
      n: { fn: count }
      mean: { fn: mean, field: value }
sinks:
  - { name: out, topic: hourly, from: hourly }
`;

describe('vigil backtest', () => {
  it('replays a CSV file in event time: columns by name, constants and renamed columns, three timestamp forms', async () => {
    const d = dir();
    const rows = [
      'when,reading,node',
      '2014-07-01 00:00:00,1,a',
      `${T0 + 600_000},3,a`, // epoch ms
      '2014-07-01T00:20:00Z,5,b', // ISO 8601 with a zone
      '2014-07-01 01:00:00,10,a',
      '2014-07-01 02:30:00,20,a',
    ];
    const input: BacktestInput = { source: 'metrics', file: file(d, 'm.csv', `${rows.join('\n')}\n`), mapping: { columns: { timestamp: 'when', value: 'reading', host: 'node' }, constants: { name: 'cpu' } } };
    const out = join(d, 'out');
    const s = await runBacktest(plan(HOURLY), { inputs: [input], outDir: out });
    expect(s.inputs).toEqual([{ source: 'metrics', file: input.file, records: 5, badRows: 0 }]);
    expect(s.firstEventTime).toBe(T0);
    expect(s.lastEventTime).toBe(T0 + 2.5 * H);
    // At the end of the input every window closes, the last one included.
    expect(jsonl(join(out, 'sinks', 'out.jsonl')).map((r) => [r.key, r.value.window_start - T0, r.value.n, r.value.mean])).toEqual([
      ['a', 0, 2, 2],
      ['b', 0, 1, 5],
      ['a', H, 1, 10],
      ['a', 2 * H, 1, 20],
    ]);
    expect(jsonl(join(out, 'operators', 'hourly.jsonl'))).toHaveLength(4);
    expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))).toMatchObject({ sinks: { out: 4 }, operators: { hourly: 4 }, deadLetters: {} });
  });

  it('with hold, windows still open at the end of the input stay open', async () => {
    const d = dir();
    const f = file(d, 'm.csv', 'timestamp,value,host,name\n2014-07-01 00:00:00,1,a,cpu\n2014-07-01 01:30:00,2,a,cpu\n');
    const s = await runBacktest(plan(HOURLY), { inputs: [{ source: 'metrics', file: f }], hold: true });
    // 01:30 - 10 min of allowed lateness closes the first hour only.
    expect(s.sinks).toEqual({ out: 1 });
  });

  it('reads JSON lines (nested values as JSON) and semicolon CSV with decimal commas', async () => {
    const d = dir();
    const a = file(d, 'a.jsonl', ['{"timestamp":"2014-07-01 00:00:00","name":"cpu","host":"a","value":1.5,"tags":{"dc":"x"}}', '', '{"timestamp":1404173000000,"name":"cpu","host":"a","value":2.5}'].join('\n'));
    const b = file(d, 'b.csv', 'timestamp;name;host;value;tags\n2014-07-01 00:10:00;cpu;b;1,25;"{""dc"":""y""}"\r\n2014-07-01 00:11:00;cpu;b;0,75;{}\r\n');
    const seen: Array<Record<string, unknown>> = [];
    const yaml = HOURLY.replace('operators:', 'operators:\n  - { name: pass, type: filter, where: "true" }').replace('type: aggregate', 'type: aggregate\n    from: pass');
    await runBacktest(plan(yaml), { inputs: [{ source: 'metrics', file: a }, { source: 'metrics', file: b }], listener: { tap: (node, _o, r) => node === 'pass' && seen.push(r.value) } });
    // Merged by event time across the two files.
    expect(seen.map((v) => [v.host, v.value, v.tags])).toEqual([
      ['a', 1.5, { dc: 'x' }],
      ['a', 2.5, {}],
      ['b', 1.25, { dc: 'y' }],
      ['b', 0.75, {}],
    ]);
  });

  it('merges two inputs by event time for a join, with a table file before the streams', async () => {
    const d = dir();
    const yaml = `
version: 1
name: bt-join
sources:
  - { name: deploys, topic: d, schema: vigil.telemetry.Event, key: [entity], timestamp: timestamp }
  - { name: errors, topic: e, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp }
  - { name: cmdb, topic: c, schema: vigil.inventory.Entity, table: true, key: [entity] }
operators:
  - name: after-deploy
    type: join
    from: { left: deploys, right: errors }
    left_key: [entity]
    right_key: [host]
    after: 10m
    before: 0s
    fields:
      service: left.entity
      errors: right.value
  - name: owned
    type: lookup
    table: cmdb
    mode: global
    key: [service]
    fields:
      team: team ?? "?"
sinks:
  - { name: out, topic: out, from: owned }
`;
    const deploys = file(d, 'deploys.csv', 'timestamp,type,source,entity,severity\n2014-07-01 00:00:00,deploy,ci,web,INFO\n2014-07-01 01:00:00,deploy,ci,db,INFO\n');
    const errors = file(d, 'errors.jsonl', ['{"timestamp":"2014-07-01 00:05:00","name":"err","host":"web","value":7}', '{"timestamp":"2014-07-01 00:30:00","name":"err","host":"web","value":9}', '{"timestamp":"2014-07-01 01:02:00","name":"err","host":"db","value":3}'].join('\n'));
    const cmdb = file(d, 'cmdb.csv', 'entity,team\nweb,payments\ndb,storage\n');
    const out = join(d, 'out');
    await runBacktest(plan(yaml), { inputs: [{ source: 'deploys', file: deploys }, { source: 'errors', file: errors }, { source: 'cmdb', file: cmdb }], outDir: out });
    expect(jsonl(join(out, 'sinks', 'out.jsonl')).map((r) => r.value)).toEqual([
      { service: 'web', errors: 7, team: 'payments' },
      { service: 'db', errors: 3, team: 'storage' },
    ]);
  });

  it('stops at a row that does not fit, naming the file and line; or, asked to, dead-letters it and counts it', async () => {
    const d = dir();
    const f = file(d, 'm.csv', 'timestamp,value,host,name\n2014-07-01 00:00:00,1,a,cpu\n2014-07-01 00:01:00,oops,a,cpu\n2014-07-01 00:02:00,3,a\n2014-07-01 00:03:00,4,a,cpu\n');
    await expect(runBacktest(plan(HOURLY), { inputs: [{ source: 'metrics', file: f }] })).rejects.toThrow(new RecordFileError(`${f}:3: value: 'oops' is not a number`));
    const out = join(d, 'out');
    const s = await runBacktest(plan(HOURLY), { inputs: [{ source: 'metrics', file: f }], badRows: 'dead_letter', outDir: out });
    expect(s.inputs[0]).toMatchObject({ records: 2, badRows: 2 });
    expect(s.deadLetters).toEqual({ 'bad-row': 2 });
    expect(jsonl(join(out, 'dead-letters.jsonl')).map((r) => r.detail)).toEqual([`${f}:3: value: 'oops' is not a number`, `${f}:4: 3 columns where the header has 4`]);
    expect(jsonl(join(out, 'sinks', 'out.jsonl'))[0]!.value.n).toBe(2);
  });

  it('dead-letters records later than the allowed lateness, with the file and line they came from', async () => {
    const d = dir();
    const f = file(d, 'm.csv', 'timestamp,value,host,name\n2014-07-01 02:00:00,1,a,cpu\n2014-07-01 00:30:00,2,a,cpu\n');
    const out = join(d, 'out');
    const s = await runBacktest(plan(HOURLY), { inputs: [{ source: 'metrics', file: f }], outDir: out });
    expect(s.deadLetters).toEqual({ 'hourly: late': 1 });
    expect(jsonl(join(out, 'dead-letters.jsonl'))).toEqual([expect.objectContaining({ reason: 'late', node: 'hourly', at: `${f}:3` })]);
  });

  it('refuses, with a located message, a header that cannot fill the schema and a mapping to an unknown field', async () => {
    const d = dir();
    const f = file(d, 'm.csv', 'timestamp,value\n2014-07-01 00:00:00,1\n');
    await expect(runBacktest(plan(HOURLY), { inputs: [{ source: 'metrics', file: f }] })).rejects.toThrow(`${f}:1: no column for 'name' (string, no default; columns: timestamp, value); name a column for it or give it a value`);
    await expect(runBacktest(plan(HOURLY), { inputs: [{ source: 'metrics', file: f, mapping: { constants: { nam: 'x' } } }] })).rejects.toThrow(`${f}:1: vigil.telemetry.MetricSample has no field 'nam'`);
    await expect(runBacktest(plan(HOURLY), { inputs: [{ source: 'metric', file: f }] })).rejects.toThrow("no source 'metric' in topology 'hourly' (sources: metrics)");
  });

  it('refuses odd files quickly with a located message: a directory, UTF-16, binary, invalid UTF-8, a line over 1 MiB', async () => {
    const d = dir();
    mkdirSync(join(d, 'adir.csv'));
    const run = (f: string) => runBacktest(plan(HOURLY), { inputs: [{ source: 'metrics', file: f, mapping: { constants: { name: 'x', host: 'h' } } }] });
    await expect(run(join(d, 'adir.csv'))).rejects.toThrow(`${join(d, 'adir.csv')}: not a regular file`);
    await expect(run(join(d, 'missing.csv'))).rejects.toThrow(`${join(d, 'missing.csv')}: cannot read it (ENOENT)`);
    const u16 = file(d, 'u16.csv', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('timestamp,value\n', 'utf16le')]));
    await expect(run(u16)).rejects.toThrow(`${u16}:1: the file is UTF-16; convert it to UTF-8`);
    const bin = file(d, 'bin.jsonl', Buffer.from([0x7b, 0, 1, 2, 3]));
    await expect(run(bin)).rejects.toThrow(`${bin}:1: the file holds NUL bytes: not a text file`);
    const latin = file(d, 'latin.jsonl', Buffer.concat([Buffer.from('{"timestamp":1,"value":1}\n{"timestamp":2,"value":1,"unit":"'), Buffer.from([0xb5]), Buffer.from('s"}\n')]));
    await expect(run(latin)).rejects.toThrow(`${latin}:2: not valid UTF-8`);
    const long = file(d, 'long.jsonl', `{"timestamp":1,"value":1}\n{"unit":"${'x'.repeat(MAX_LINE + 10)}"}\n`);
    await expect(run(long)).rejects.toThrow(`${long}:2: a line longer than ${MAX_LINE} characters`);
    const longCsv = file(d, 'long.csv', `timestamp,value,unit\n1,1,${'x'.repeat(MAX_LINE + 10)}\n`);
    await expect(run(longCsv)).rejects.toThrow(new RegExp(`^${longCsv.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: `));
  });

  it('reads timestamps as epoch ms, YYYY-MM-DD hh:mm[:ss[.fff]] (UTC) and ISO 8601 with a zone, and nothing else', () => {
    expect(parseTimestamp('1404172800000')).toBe(T0);
    expect(parseTimestamp('2014-07-01 00:00:00')).toBe(T0);
    expect(parseTimestamp('2014-07-01 00:00')).toBe(T0);
    expect(parseTimestamp('2014-07-01 00:00:00.250')).toBe(T0 + 250);
    expect(parseTimestamp('2014-07-01T02:00:00+02:00')).toBe(T0);
    expect(parseTimestamp('2014-02-30 00:00:00')).toBeUndefined();
    expect(parseTimestamp('2014-07-01T00:00:00')).toBe(T0);
    expect(parseTimestamp('yesterday')).toBeUndefined();
    expect(parseTimestamp('07/01/2014')).toBeUndefined();
  });

  it('runs from the command line and writes its files', () => {
    const d = dir();
    const topo = file(d, 'hourly.yaml', HOURLY);
    const f = file(d, 'm.csv', 'ts,v\n2014-07-01 00:00:00,1\n2014-07-01 00:10:00,3\n');
    const out = join(d, 'out');
    const vigil = (args: string[]) => spawnSync(process.execPath, ['bin/vigil.mjs', 'backtest', ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
    const r = vigil([topo, '--input', `metrics=${f}`, '--map', 'metrics.timestamp=ts', '--map', 'metrics.value=v', '--set', 'metrics.name=cpu', '--set', 'metrics.host=a', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`in   metrics <- ${f}: 2 records`);
    expect(r.stdout).toContain('out  out: 1');
    expect(existsSync(join(out, 'summary.json'))).toBe(true);
    expect(jsonl(join(out, 'sinks', 'out.jsonl'))[0]!.value).toMatchObject({ host: 'a', n: 2, mean: 2 });
    const bad = vigil([topo, '--input', `metrics=${f}`, '--set', 'metricz.name=cpu', '--out', out]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe("vigil: --set metricz.name=cpu: no --input for source 'metricz'\n");
  });
});
