// Backtesting: a topology run in-process over recorded data, in event time. Each input file feeds a
// source (or table); records of all inputs are merged by event time (each file in its own order),
// keyed as the source declares, and piped through the TestDriver with the wall clock following event
// time, so wall-clock timeouts behave as in a live replay. At the end of the input, stream time moves
// past every record (windows close, timers fire) unless told to hold. What comes out goes to a
// listener and, when a directory is given, to JSON lines files:
//
//   DIR/sinks/<sink>.jsonl                 every sink's records
//   DIR/operators/<op>[.<output>].jsonl    every operator output's records
//   DIR/dead-letters.jsonl                 dead letters, with the input file and line when known
//   DIR/summary.json                       records in and out per node, dead letters by reason
//
// A row that does not fit its source's schema stops the run with its file and line, or (badRows:
// 'dead_letter') becomes a dead letter and is counted: never skipped silently.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { recordTy } from '../kernel/avro-types.ts';
import { keyOfRecord, splitPaths } from '../kernel/keys.ts';
import type { BadRow, FieldMapping, FileRecord, RecordFileFormat } from '../connectors/record-files.ts';
import { RecordFileError, readRecordFile } from '../connectors/record-files.ts';
import type { Plan } from '../topology/types.ts';
import type { DeadLetter } from './task.ts';
import type { DriverListener } from './test-driver.ts';
import { TestDriver } from './test-driver.ts';

export interface BacktestInput {
  /** A source or table of the topology, by name. */
  source: string;
  file: string;
  mapping?: FieldMapping;
  format?: RecordFileFormat;
}

export interface BacktestOptions {
  inputs: BacktestInput[];
  /** What a row that does not fit does: stop the run (default) or become a dead letter. */
  badRows?: 'fail' | 'dead_letter';
  /** Keep windows and event-time timers open at the end of the input (as a live stream would). */
  hold?: boolean;
  /** Where to write the JSON lines files and summary.json. */
  outDir?: string;
  listener?: DriverListener;
}

export interface BacktestSummary {
  inputs: Array<{ source: string; file: string; records: number; badRows: number }>;
  /** Event time of the first and last record read (ms), if any. */
  firstEventTime?: number;
  lastEventTime?: number;
  /** Records out per sink and per operator output (`op` or `op.output`). */
  sinks: Record<string, number>;
  operators: Record<string, number>;
  deadLetters: Record<string, number>;
  seconds: number;
}

export class BacktestError extends Error {}

/** JSON with Avro bytes as base64 and the rest as is. */
function json(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x instanceof Uint8Array ? Buffer.from(x).toString('base64') : x));
}

/** Append-only JSON lines files, written in chunks. */
class LineFiles {
  private readonly open = new Map<string, { fd: number; buf: string[]; size: number }>();
  constructor(private readonly dir: string) {}

  write(rel: string, line: string): void {
    let f = this.open.get(rel);
    if (f === undefined) {
      const path = join(this.dir, rel);
      mkdirSync(join(path, '..'), { recursive: true });
      f = { fd: openSync(path, 'w'), buf: [], size: 0 };
      this.open.set(rel, f);
    }
    f.buf.push(line);
    f.size += line.length + 1;
    if (f.size > 1 << 18) this.flush(f);
  }

  private flush(f: { fd: number; buf: string[]; size: number }): void {
    if (f.buf.length > 0) writeSync(f.fd, `${f.buf.join('\n')}\n`);
    f.buf = [];
    f.size = 0;
  }

  close(): void {
    for (const f of this.open.values()) {
      this.flush(f);
      closeSync(f.fd);
    }
    this.open.clear();
  }
}

interface Head {
  input: BacktestInput;
  index: number;
  iter: AsyncGenerator<FileRecord | BadRow>;
  next?: FileRecord & { time: number };
}

/** Runs a planned topology over recorded files; see the top of this file. */
export async function runBacktest(plan: Plan, opts: BacktestOptions): Promise<BacktestSummary> {
  const started = performance.now();
  const sources = new Map(plan.topology.sources.map((s) => [s.name, s]));
  if (opts.inputs.length === 0) throw new BacktestError('no inputs: give at least one source=file');
  for (const i of opts.inputs) {
    const s = sources.get(i.source);
    if (s === undefined) throw new BacktestError(`no source '${i.source}' in topology '${plan.topology.name}' (sources: ${[...sources.keys()].join(', ')})`);
    if (s.timestampField === undefined && !s.table) throw new BacktestError(`source '${i.source}' has no timestamp field: a backtest replays in event time, so the source must declare 'timestamp:'`);
    if (s.table && s.keyFields === undefined) throw new BacktestError(`table '${i.source}' has no key fields: rows of a table file need 'key:' on the table`);
  }
  const summary: BacktestSummary = {
    inputs: opts.inputs.map((i) => ({ source: i.source, file: i.file, records: 0, badRows: 0 })),
    sinks: {},
    operators: {},
    deadLetters: {},
    seconds: 0,
  };
  if (opts.outDir !== undefined) mkdirSync(opts.outDir, { recursive: true });
  const files = opts.outDir === undefined ? undefined : new LineFiles(opts.outDir);
  const firstOutput = new Map(plan.subtopologies.flatMap((s) => s.nodes).map((n) => [n.name, n.outputs[0]?.name]));
  /** The input row being piped (dead letters raised while it is processed point at it). */
  let current: string | undefined;
  const listener: DriverListener = {
    sink(sink, r) {
      summary.sinks[sink] = (summary.sinks[sink] ?? 0) + 1;
      files?.write(`sinks/${sink}.jsonl`, json({ key: r.key, timestamp: r.timestamp, value: r.value }));
      opts.listener?.sink?.(sink, r);
    },
    tap(node, output, r) {
      const name = firstOutput.get(node) === output ? node : `${node}.${output}`;
      summary.operators[name] = (summary.operators[name] ?? 0) + 1;
      files?.write(`operators/${name}.jsonl`, json({ key: r.key, timestamp: r.timestamp, value: r.value }));
      opts.listener?.tap?.(node, output, r);
    },
    deadLetter(dl) {
      const k = dl.node === undefined ? dl.reason : `${dl.node}: ${dl.reason}`;
      summary.deadLetters[k] = (summary.deadLetters[k] ?? 0) + 1;
      files?.write('dead-letters.jsonl', json(deadLetterJson(dl, current)));
      opts.listener?.deadLetter?.(dl);
    },
  };

  const heads: Head[] = [];
  const take = async (h: Head): Promise<void> => {
    const src = sources.get(h.input.source)!;
    for (;;) {
      const r = await h.iter.next();
      if (r.done) {
        h.next = undefined;
        return;
      }
      if ('bad' in r.value) {
        summary.inputs[h.index]!.badRows++;
        const where = `${h.input.file}:${r.value.line}`;
        if (opts.badRows !== 'dead_letter') throw new RecordFileError(`${where}: ${r.value.reason}`);
        listener.deadLetter!({ stage: 'input', reason: 'bad-row', detail: `${where}: ${r.value.reason}`, record: { key: null, value: { row: r.value.raw }, timestamp: 0 } });
        continue;
      }
      const v = r.value.value;
      const t = src.timestampField === undefined ? 0 : (v[src.timestampField] as number);
      h.next = { ...r.value, time: t };
      return;
    }
  };
  let driver: TestDriver | undefined;
  try {
    for (const [index, input] of opts.inputs.entries()) {
      const src = sources.get(input.source)!;
      const iter = readRecordFile(input.file, recordTy(src.schema), {
        ...(src.timestampField !== undefined ? { timestampField: src.timestampField } : {}),
        ...(input.mapping !== undefined ? { mapping: input.mapping } : {}),
        ...(input.format !== undefined ? { format: input.format } : {}),
      });
      const h: Head = { input, index, iter };
      heads.push(h);
      await take(h);
    }
    const first = Math.min(...heads.filter((h) => h.next !== undefined).map((h) => h.next!.time));
    driver = new TestDriver(plan, { retain: false, listener, wallClock: Number.isFinite(first) ? first : 0 });
    const keyPaths = new Map(opts.inputs.map((i) => [i.source, splitPaths(sources.get(i.source)!.keyFields ?? [])]));
    for (;;) {
      // The earliest record of all inputs next; tables before streams at the same time, then input order.
      let h: Head | undefined;
      for (const x of heads) {
        if (x.next === undefined) continue;
        if (h === undefined || x.next.time < h.next!.time || (x.next.time === h.next!.time && sources.get(x.input.source)!.table && !sources.get(h.input.source)!.table)) h = x;
      }
      if (h === undefined) break;
      const rec = h.next!;
      const src = sources.get(h.input.source)!;
      if (!src.table && rec.time > driver.now()) driver.advanceWallClock(rec.time - driver.now());
      const paths = keyPaths.get(h.input.source)!;
      const key = paths.length === 0 ? null : keyOfRecord(rec.value, paths);
      if (src.table && key === null) throw new RecordFileError(`${h.input.file}:${rec.line}: the table's key (${src.keyFields!.join(', ')}) is null`);
      current = `${h.input.file}:${rec.line}`;
      await driver.pipeAsync(h.input.source, rec.value, { key, ...(src.table ? {} : { timestamp: rec.time }) });
      current = undefined;
      summary.inputs[h.index]!.records++;
      if (!src.table) {
        summary.firstEventTime ??= rec.time;
        if (rec.time > (summary.lastEventTime ?? Number.NEGATIVE_INFINITY)) summary.lastEventTime = rec.time;
      }
      await take(h);
    }
    if (opts.hold !== true) driver.endOfInput();
  } finally {
    for (const h of heads) await h.iter.return(undefined);
    summary.seconds = (performance.now() - started) / 1000;
    if (files !== undefined) {
      files.close();
      writeFileSync(join(opts.outDir!, 'summary.json'), `${JSON.stringify(summary, null, 1)}\n`);
    }
  }
  return summary;
}

function deadLetterJson(dl: DeadLetter, at: string | undefined): Record<string, unknown> {
  return {
    stage: dl.stage,
    reason: dl.reason,
    ...(dl.node !== undefined ? { node: dl.node } : {}),
    ...(dl.detail !== undefined ? { detail: dl.detail } : {}),
    ...(dl.input !== undefined && at !== undefined ? { at } : {}),
    ...(dl.record !== undefined ? { record: { key: dl.record.key, timestamp: dl.record.timestamp, value: dl.record.value } } : {}),
  };
}

/** The summary as text: records in per input, out per sink and operator output, dead letters. */
export function backtestSummaryText(s: BacktestSummary): string {
  const out: string[] = [];
  const iso = (t: number | undefined) => (t === undefined ? '–' : new Date(t).toISOString());
  out.push(`event time ${iso(s.firstEventTime)} .. ${iso(s.lastEventTime)}, ${s.seconds.toFixed(1)} s`);
  for (const i of s.inputs) out.push(`in   ${i.source} <- ${i.file}: ${i.records} records${i.badRows > 0 ? `, ${i.badRows} bad rows` : ''}`);
  for (const [k, n] of Object.entries(s.operators)) out.push(`op   ${k}: ${n}`);
  for (const [k, n] of Object.entries(s.sinks)) out.push(`out  ${k}: ${n}`);
  const dead = Object.entries(s.deadLetters);
  if (dead.length === 0) out.push('dead letters: 0');
  for (const [k, n] of dead) out.push(`dead ${k}: ${n}`);
  return `${out.join('\n')}\n`;
}
