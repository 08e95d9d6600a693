// Recorded data read as records of a source schema: CSV (a header row; comma, semicolon or tab,
// found from the header) or JSON lines. What `vigil backtest` and `vigil bench nab` replay.
//
// Columns (CSV) or properties (JSON lines) map onto the schema's top-level fields by name, unless a
// mapping names another column for a field; constants can fill fields the file lacks. A field with
// neither takes its default, or null when it may be null. Unknown columns are ignored. Timestamps
// (the event-time field and timestamp-millis fields) are read as epoch milliseconds, ISO 8601, or
// `YYYY-MM-DD hh:mm:ss[.fff]` (UTC); in semicolon-separated files a number may use a decimal comma. A row that does not fit is a RecordFileError naming the file
// and line; so is a file that is not a regular file, not UTF-8 text, or has a line over 1 MiB.
import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import type { RecordTy, RecordTyField, Ty } from '../kernel/avro-types.ts';
import { describeTy } from '../kernel/avro-types.ts';
import { jsonAsAvro } from '../kernel/json-avro.ts';

export class RecordFileError extends Error {}

/** The longest line (CSV record or JSON line) read, in characters. */
export const MAX_LINE = 1 << 20;

export interface FieldMapping {
  /** field -> column (CSV) or property (JSON lines) to read it from. */
  columns?: Record<string, string>;
  /** field -> constant, as text (CSV cell rules apply). */
  constants?: Record<string, string>;
}

export interface FileRecord {
  value: Record<string, unknown>;
  /** 1-based line of the record (its first line, for a quoted CSV cell spanning lines). */
  line: number;
}

export type RecordFileFormat = 'csv' | 'jsonl';

/** The format of a file: by extension (.csv, .tsv; .jsonl, .ndjson, .json), else by its first character. */
export function formatOf(file: string, firstChar?: string): RecordFileFormat {
  if (/\.(csv|tsv|txt)$/i.test(file)) return 'csv';
  if (/\.(jsonl|ndjson|json)$/i.test(file)) return 'jsonl';
  return firstChar === '{' ? 'jsonl' : 'csv';
}

const NAB_LIKE = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/;

/**
 * A timestamp as epoch ms: an integer (epoch ms), `YYYY-MM-DD hh:mm[:ss[.fff]]` read as UTC, or
 * ISO 8601 with a zone. Undefined when it is none of these.
 */
export function parseTimestamp(text: string): number | undefined {
  const s = text.trim();
  if (/^-?\d{1,16}$/.test(s)) return Number(s);
  const m = NAB_LIKE.exec(s);
  if (m !== null) {
    const [, y, mo, d, h, mi, se, frac] = m;
    const ms = Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, se === undefined ? 0 : +se) + (frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000));
    const back = new Date(ms);
    if (back.getUTCFullYear() !== +y! || back.getUTCMonth() !== +mo! - 1 || back.getUTCDate() !== +d! || back.getUTCHours() !== +h! || back.getUTCMinutes() !== +mi!) return undefined;
    return ms;
  }
  // ISO 8601 with a zone (Z or ±hh:mm); Date.parse alone would read a zoneless date-time as local time.
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(s)) {
    const t = Date.parse(s);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

function isTimestampField(f: RecordTyField, timestampField: string | undefined): boolean {
  const t = f.ty.k === 'nullable' ? f.ty.inner : f.ty;
  return (t.k === 'long' || t.k === 'int') && (f.name === timestampField || t.attrs?.logicalType === 'timestamp-millis');
}

/** A CSV cell (or a constant) as a value of `ty`, for field `name`; throws a message naming the field. */
function cellAs(ty: Ty, cell: string, timestamp: boolean, name: string, decimalComma = false): unknown {
  if (ty.k === 'nullable') return cell === '' ? null : cellAs(ty.inner, cell, timestamp, name, decimalComma);
  const s = cell.trim();
  const fail = (what: string): never => {
    throw new Error(`${name}: '${cell.slice(0, 60)}' is not ${what}`);
  };
  switch (ty.k) {
    case 'int':
    case 'long': {
      if (timestamp) {
        const t = parseTimestamp(s);
        if (t === undefined) fail('a timestamp (epoch ms, YYYY-MM-DD hh:mm:ss or ISO 8601 with a zone)');
        return t;
      }
      const n = /^[+-]?\d+$/.test(s) ? Number(s) : Number.NaN;
      if (!Number.isSafeInteger(n) || (ty.k === 'int' && (n < -2147483648 || n > 2147483647))) fail(ty.k === 'int' ? 'an int' : 'a long');
      return n;
    }
    case 'float':
    case 'double': {
      // Semicolon-separated files (spreadsheet exports in many locales) may write 1,5 for 1.5.
      const n = s === '' ? Number.NaN : Number(decimalComma && /^[+-]?\d*,\d+$/.test(s) ? s.replace(',', '.') : s);
      if (!Number.isFinite(n)) fail('a number');
      return n;
    }
    case 'boolean': {
      const b = s.toLowerCase();
      if (b === 'true' || b === '1') return true;
      if (b === 'false' || b === '0') return false;
      return fail('a boolean (true, false, 1, 0)');
    }
    case 'string':
      return cell;
    case 'enum':
      if (!ty.symbols.includes(s)) fail(`one of ${ty.symbols.join(', ')}`);
      return s;
    default: {
      // Maps, lists and records: the cell holds JSON.
      let json: unknown;
      try {
        json = JSON.parse(cell);
      } catch {
        return fail(`JSON (${describeTy(ty)} is read from a JSON cell)`);
      }
      return jsonAsAvro(ty, json, name);
    }
  }
}

/** How each field of the schema is filled from a row. */
interface FieldPlan {
  field: RecordTyField;
  timestamp: boolean;
  /** The column (CSV index or JSON property) to read, if any. */
  column?: string | number;
  /** A constant value, when set. */
  constant?: unknown;
}

function planFields(schema: RecordTy, mapping: FieldMapping, where: string, timestampField: string | undefined, columns: string[] | undefined): FieldPlan[] {
  for (const f of [...Object.keys(mapping.columns ?? {}), ...Object.keys(mapping.constants ?? {})])
    if (!schema.byName.has(f)) throw new RecordFileError(`${where}: ${schema.fullname} has no field '${f}' (fields: ${schema.fields.map((x) => x.name).join(', ')})`);
  return schema.fields.map((field) => {
    const timestamp = isTimestampField(field, timestampField);
    const constant = mapping.constants?.[field.name];
    if (constant !== undefined) {
      try {
        return { field, timestamp, constant: cellAs(field.ty, constant, timestamp, field.name) };
      } catch (e) {
        throw new RecordFileError(`${where}: the value given for ${(e as Error).message}`);
      }
    }
    const name = mapping.columns?.[field.name] ?? field.name;
    if (columns === undefined) return { field, timestamp, column: name };
    const i = columns.indexOf(name);
    if (i >= 0) return { field, timestamp, column: i };
    if (mapping.columns?.[field.name] !== undefined) throw new RecordFileError(`${where}: no column '${name}' for field '${field.name}' (columns: ${columns.join(', ')})`);
    if (!field.hasDefault && field.ty.k !== 'nullable' && field.ty.k !== 'null')
      throw new RecordFileError(`${where}: no column for '${field.name}' (${describeTy(field.ty)}, no default; columns: ${columns.join(', ')}); name a column for it or give it a value`);
    return { field, timestamp };
  });
}

/** A copy of a constant or default for one record (objects are copied, primitives are not). */
const copy = (v: unknown): unknown => (v !== null && typeof v === 'object' ? structuredClone(v) : v);

function fill(plan: FieldPlan[], read: (p: FieldPlan) => { present: boolean; value: unknown }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of plan) {
    if (p.constant !== undefined) {
      out[p.field.name] = copy(p.constant);
      continue;
    }
    const r = p.column === undefined ? { present: false, value: undefined } : read(p);
    if (r.present) out[p.field.name] = r.value;
    else if (p.field.hasDefault) out[p.field.name] = copy(p.field.default);
    else if (p.field.ty.k === 'nullable' || p.field.ty.k === 'null') out[p.field.name] = null;
    else throw new Error(`'${p.field.name}' is missing (${describeTy(p.field.ty)}, no default)`);
  }
  return out;
}

/** Refuses what is not a regular UTF-8 text file, before reading it. */
function openText(file: string): Readable {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new RecordFileError(`${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!st.isFile()) throw new RecordFileError(`${file}: not a regular file`);
  return createReadStream(file, { highWaterMark: 1 << 16 });
}

/** Checks the first chunk: UTF-16 and binary files are refused with a message saying so. */
function checkFirstChunk(file: string, chunk: Buffer): void {
  if ((chunk[0] === 0xff && chunk[1] === 0xfe) || (chunk[0] === 0xfe && chunk[1] === 0xff)) throw new RecordFileError(`${file}:1: the file is UTF-16; convert it to UTF-8`);
  if (chunk.subarray(0, 4096).includes(0)) throw new RecordFileError(`${file}:1: the file holds NUL bytes: not a text file`);
}

/**
 * Splits a byte stream into lines (LF or CRLF), with their numbers; a line longer than MAX_LINE, or
 * one that is not valid UTF-8, is an error naming it.
 */
async function* lines(file: string, stream: Readable): AsyncGenerator<{ text: string; line: number }> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const decode = (bytes: Buffer, line: number): string => {
    try {
      const text = decoder.decode(bytes);
      return text.endsWith('\r') ? text.slice(0, -1) : text;
    } catch {
      throw new RecordFileError(`${file}:${line}: not valid UTF-8`);
    }
  };
  let carry: Buffer = Buffer.alloc(0);
  let line = 1;
  let first = true;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (first) {
      checkFirstChunk(file, chunk);
      first = false;
    }
    let bytes = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
    let start = 0;
    for (let nl = bytes.indexOf(10); nl >= 0; nl = bytes.indexOf(10, start)) {
      if (nl - start > MAX_LINE * 4) throw new RecordFileError(`${file}:${line}: a line longer than ${MAX_LINE} characters`);
      const text = decode(bytes.subarray(start, nl), line);
      if (text.length > MAX_LINE) throw new RecordFileError(`${file}:${line}: a line longer than ${MAX_LINE} characters`);
      yield { text, line: line++ };
      start = nl + 1;
    }
    carry = Buffer.from(bytes.subarray(start));
    bytes = carry;
    if (carry.length > MAX_LINE * 4) throw new RecordFileError(`${file}:${line}: a line longer than ${MAX_LINE} characters`);
  }
  if (carry.length > 0) {
    const text = decode(carry, line);
    if (text.length > MAX_LINE) throw new RecordFileError(`${file}:${line}: a line longer than ${MAX_LINE} characters`);
    yield { text, line };
  }
}

/** A row that does not fit the schema: where, and why. */
export interface BadRow {
  bad: true;
  line: number;
  reason: string;
  /** The row as read, for a dead letter (truncated). */
  raw: string;
}

export interface ReadOptions {
  /** The source's event-time field (read as a timestamp). */
  timestampField?: string;
  mapping?: FieldMapping;
  format?: RecordFileFormat;
}

/**
 * Reads a file as records of `schema`, lazily, in file order. A row that does not fit is yielded
 * as a BadRow (the caller decides whether it stops the run); a broken file (unreadable, not text,
 * a header that cannot fill the schema) throws RecordFileError.
 */
export async function* readRecordFile(file: string, schema: RecordTy, opts: ReadOptions = {}): AsyncGenerator<FileRecord | BadRow> {
  const stream = openText(file);
  try {
    const format = opts.format ?? formatOf(file);
    if (format === 'jsonl') yield* readJsonLines(file, stream, schema, opts);
    else yield* readCsv(file, stream, schema, opts);
  } finally {
    stream.destroy();
  }
}

async function* readJsonLines(file: string, stream: Readable, schema: RecordTy, opts: ReadOptions): AsyncGenerator<FileRecord | BadRow> {
  const plan = planFields(schema, opts.mapping ?? {}, file, opts.timestampField, undefined);
  for await (const { text, line } of lines(file, stream)) {
    if (text.trim() === '') continue;
    const raw = text.slice(0, 200);
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      yield { bad: true, line, reason: `not JSON: ${(e as Error).message}`, raw };
      continue;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      yield { bad: true, line, reason: 'not a JSON object', raw };
      continue;
    }
    const src = obj as Record<string, unknown>;
    try {
      const value = fill(plan, (p) => {
        const v = src[p.column as string];
        if (v === undefined || !Object.hasOwn(src, p.column as string)) return { present: false, value: undefined };
        if (p.timestamp && typeof v === 'string') return { present: true, value: cellAs(p.field.ty, v, true, p.field.name) };
        return { present: true, value: jsonAsAvro(p.field.ty, v, p.field.name) };
      });
      yield { value, line };
    } catch (e) {
      yield { bad: true, line, reason: (e as Error).message, raw };
    }
  }
}

/** The delimiter of a CSV file: the one of , ; and tab that the header line uses most, outside quotes. */
function delimiterOf(header: string): string {
  const counts = new Map<string, number>([[',', 0], [';', 0], ['\t', 0]]);
  let quoted = false;
  for (const ch of header) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && counts.has(ch)) counts.set(ch, counts.get(ch)! + 1);
  }
  let best = ',';
  for (const [d, n] of counts) if (n > counts.get(best)!) best = d;
  return best;
}

async function* readCsv(file: string, stream: Readable, schema: RecordTy, opts: ReadOptions): AsyncGenerator<FileRecord | BadRow> {
  // The header decides the delimiter: read up to its end, then hand the whole stream to csv-parse.
  const iter = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let size = 0;
  for (;;) {
    const r = await iter.next();
    if (r.done) break;
    if (head.length === 0) checkFirstChunk(file, r.value);
    head.push(r.value);
    size += r.value.length;
    if (r.value.includes(10) || size > MAX_LINE) break;
  }
  const start = Buffer.concat(head);
  const nl = start.indexOf(10);
  if (nl < 0 && size > MAX_LINE) throw new RecordFileError(`${file}:1: a header line longer than ${MAX_LINE} characters`);
  const headerLine = start.subarray(0, nl < 0 ? start.length : nl).toString('utf8').replace(/^\uFEFF/, '');
  if (headerLine.trim() === '') throw new RecordFileError(`${file}:1: empty, expected a header row`);
  const delimiter = delimiterOf(headerLine);
  const parser = parse({
    delimiter,
    record_delimiter: ['\r\n', '\n'],
    bom: true,
    info: true,
    skip_empty_lines: true,
    relax_column_count: true,
    max_record_size: MAX_LINE,
  });
  const feed = (async () => {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    try {
      parser.write(decoder.decode(start, { stream: true }));
      for (;;) {
        const r = await iter.next();
        if (r.done) break;
        if (parser.destroyed) return;
        // Wait for the reader; a reader that stopped early destroys the parser (close).
        if (!parser.write(decoder.decode(r.value, { stream: true })))
          await new Promise<void>((ok) => {
            const done = () => {
              parser.off('drain', done);
              parser.off('close', done);
              ok();
            };
            parser.on('drain', done);
            parser.on('close', done);
          });
      }
      if (!parser.destroyed) parser.end(decoder.decode());
    } catch (e) {
      parser.destroy(e instanceof TypeError ? new RecordFileError(`${file}: not valid UTF-8`) : (e as Error));
    }
  })();
  let plan: FieldPlan[] | undefined;
  let width = 0;
  try {
    for await (const rec of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const line = rec.info.lines;
      if (plan === undefined) {
        const columns = rec.record.map((c) => c.trim());
        width = columns.length;
        plan = planFields(schema, opts.mapping ?? {}, `${file}:${line}`, opts.timestampField, columns);
        continue;
      }
      const raw = rec.record.join(',').slice(0, 200);
      if (rec.record.length !== width) {
        yield { bad: true, line, reason: `${rec.record.length} columns where the header has ${width}`, raw };
        continue;
      }
      try {
        yield { value: fill(plan, (p) => ({ present: true, value: cellAs(p.field.ty, rec.record[p.column as number]!, p.timestamp, p.field.name, delimiter === ';') })), line };
      } catch (e) {
        yield { bad: true, line, reason: (e as Error).message, raw };
      }
    }
  } catch (e) {
    if (e instanceof RecordFileError) throw e;
    const err = e as { lines?: number; message: string };
    throw new RecordFileError(`${file}${err.lines !== undefined ? `:${err.lines}` : ''}: ${err.message}`);
  } finally {
    parser.destroy();
    await feed.catch(() => undefined);
  }
  if (plan === undefined) throw new RecordFileError(`${file}:1: empty, expected a header row`);
}
