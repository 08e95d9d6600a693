// The Numenta Anomaly Benchmark corpus (../shared/nab: data/<category>/<name>.csv and
// labels/combined_windows.json) and detector results in NAB's own layout
// (<results>/<detector>/<category>/<detector>_<name>.csv with timestamp,value,anomaly_score,label),
// read and written so that NAB's own scorer and ours read the same files.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'csv-parse/sync';

/** One data file of the corpus, with its labelled anomaly windows as row indexes. */
export interface NabFile {
  /** `category/name.csv`, the key of the label files. */
  path: string;
  category: string;
  name: string;
  /** The timestamps as written in the file (`2014-07-01 00:00:00`). */
  timestamps: string[];
  /** The same, as epoch milliseconds (UTC). */
  times: number[];
  values: number[];
  /**
   * Each anomaly window in time order: its limits (epoch ms) and the first rows with those
   * timestamps. (A few files repeat timestamps around clock changes; NAB goes by the first.)
   */
  windows: Array<{ start: number; end: number; first: number; last: number }>;
}

export interface NabCorpus {
  dir: string;
  /** Sorted by path. */
  files: NabFile[];
  /** Every labelled window of the label file (the perfect score's count). */
  windowCount: number;
}

export class NabFormatError extends Error {}

const NAB_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;

/** `2014-07-01 00:00:00` (optionally with fractional seconds, as the label files have) to epoch ms, as UTC. */
export function parseNabTime(s: string): number | undefined {
  const m = NAB_TIME.exec(s);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, se, frac] = m;
  const ms = Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +se!) + (frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000));
  const back = new Date(ms);
  // Date.UTC rolls 2014-02-30 over into March: refuse what does not name a real instant.
  if (back.getUTCDate() !== +d! || back.getUTCMonth() !== +mo! - 1 || back.getUTCHours() !== +h! || back.getUTCMinutes() !== +mi! || back.getUTCSeconds() !== +se!) return undefined;
  return ms;
}

interface CsvRows {
  header: string[];
  /** Rows without the header; `lines[i]` is the 1-based line of `rows[i]`. */
  rows: string[][];
  lines: number[];
}

function readCsv(file: string): CsvRows {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new NabFormatError(`${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(text, { info: true, skip_empty_lines: true, bom: true, relax_column_count: false }) as unknown as typeof records;
  } catch (e) {
    const err = e as { lines?: number; message: string };
    throw new NabFormatError(`${file}${err.lines !== undefined ? `:${err.lines}` : ''}: ${err.message}`);
  }
  if (records.length === 0) throw new NabFormatError(`${file}: empty, expected a header row`);
  return {
    header: records[0]!.record.map((h) => h.trim()),
    rows: records.slice(1).map((r) => r.record),
    lines: records.slice(1).map((r) => r.info.lines),
  };
}

function column(csv: CsvRows, file: string, name: string): number {
  const i = csv.header.indexOf(name);
  if (i < 0) throw new NabFormatError(`${file}:1: no column '${name}' (columns: ${csv.header.join(', ')})`);
  return i;
}

/** Reads the corpus: every file the label file names, with its windows resolved to rows. */
export function loadNabCorpus(dir: string): NabCorpus {
  const labelFile = join(dir, 'labels', 'combined_windows.json');
  let labels: unknown;
  try {
    labels = JSON.parse(readFileSync(labelFile, 'utf8'));
  } catch (e) {
    throw new NabFormatError(`${labelFile}: ${(e as Error).message}`);
  }
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) throw new NabFormatError(`${labelFile}: expected an object of file -> windows`);
  const files: NabFile[] = [];
  let windowCount = 0;
  for (const [path, wins] of Object.entries(labels as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const file = join(dir, 'data', path);
    const csv = readCsv(file);
    const ti = column(csv, file, 'timestamp');
    const vi = column(csv, file, 'value');
    const timestamps: string[] = [];
    const times: number[] = [];
    const values: number[] = [];
    const index = new Map<number, number>();
    csv.rows.forEach((r, i) => {
      const t = parseNabTime(r[ti]!);
      const v = Number(r[vi]);
      if (t === undefined) throw new NabFormatError(`${file}:${csv.lines[i]}: timestamp '${r[ti]}' is not YYYY-MM-DD hh:mm:ss`);
      if (r[vi]!.trim() === '' || !Number.isFinite(v)) throw new NabFormatError(`${file}:${csv.lines[i]}: value '${r[vi]}' is not a number`);
      if (!index.has(t)) index.set(t, i);
      timestamps.push(r[ti]!);
      times.push(t);
      values.push(v);
    });
    if (!Array.isArray(wins)) throw new NabFormatError(`${labelFile}: '${path}' should be a list of [start, end] windows`);
    const windows: NabFile['windows'] = [];
    for (const w of wins) {
      if (!Array.isArray(w) || w.length !== 2 || typeof w[0] !== 'string' || typeof w[1] !== 'string') throw new NabFormatError(`${labelFile}: '${path}': a window is not [start, end]: ${JSON.stringify(w)}`);
      const [start, end] = [w[0], w[1]].map((s) => {
        const t = parseNabTime(s);
        // NAB's labeler requires every window limit to be a timestamp of the file.
        if (t === undefined || !index.has(t)) throw new NabFormatError(`${labelFile}: '${path}': window limit ${s} is not a timestamp of ${file}`);
        return t;
      }) as [number, number];
      const [first, last] = [index.get(start)!, index.get(end)!];
      if (last < first || (windows.length > 0 && first <= windows[windows.length - 1]!.last)) throw new NabFormatError(`${labelFile}: '${path}': windows must be in time order and not overlap (${w[0]} .. ${w[1]})`);
      windows.push({ start, end, first, last });
    }
    windowCount += windows.length;
    const slash = path.indexOf('/');
    files.push({ path, category: path.slice(0, slash), name: path.slice(slash + 1), timestamps, times, values, windows });
  }
  return { dir, files, windowCount };
}

/** Where NAB keeps a detector's results for a data file. */
export function resultsPath(resultsDir: string, detector: string, file: Pick<NabFile, 'category' | 'name'>): string {
  return join(resultsDir, detector, file.category, `${detector}_${file.name}`);
}

/** 1 for the rows inside an anomaly window of `file`, else 0 (NAB's `label` column). */
function labelsOf(file: NabFile): Uint8Array {
  const out = new Uint8Array(file.times.length);
  // NAB's labeler: every row whose timestamp lies within a window.
  for (let i = 0; i < out.length; i++) for (const w of file.windows) if (file.times[i]! >= w.start && file.times[i]! <= w.end) out[i] = 1;
  return out;
}

/** Writes one data file's scores in NAB's layout. */
export function writeResults(resultsDir: string, detector: string, file: NabFile, scores: ArrayLike<number>): string {
  if (scores.length !== file.times.length) throw new Error(`${file.path}: ${scores.length} scores for ${file.times.length} rows`);
  const labels = labelsOf(file);
  const lines = ['timestamp,value,anomaly_score,label'];
  for (let i = 0; i < scores.length; i++) lines.push(`${file.timestamps[i]},${file.values[i]},${scores[i]},${labels[i]}`);
  const out = resultsPath(resultsDir, detector, file);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${lines.join('\n')}\n`);
  return out;
}

/**
 * Reads a detector's scores for every file of the corpus. A missing file, a row count that differs
 * from the data file's, or a score that is not a number is an error naming the file and line:
 * skipping a file could raise a score. Scores go with the data file's rows by position, as in NAB's
 * scorer (some published results files list the rows of repeated timestamps in another order).
 */
export function readResults(resultsDir: string, detector: string, corpus: NabCorpus): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const f of corpus.files) {
    const file = resultsPath(resultsDir, detector, f);
    if (!existsSync(file)) throw new NabFormatError(`${file}: missing: detector '${detector}' has no results for ${f.path}`);
    const csv = readCsv(file);
    const si = column(csv, file, 'anomaly_score');
    if (csv.rows.length !== f.times.length) throw new NabFormatError(`${file}: ${csv.rows.length} rows, but ${f.path} has ${f.times.length}`);
    const scores = new Float64Array(csv.rows.length);
    for (let i = 0; i < csv.rows.length; i++) {
      const r = csv.rows[i]!;
      const raw = r[si]!.trim();
      const s = Number(raw);
      // NAB's detectors score in [0, 1], but its scorer takes any number (EXPoSE's go below 0).
      if (raw === '' || !Number.isFinite(s)) throw new NabFormatError(`${file}:${csv.lines[i]}: anomaly_score '${r[si]}' is not a number`);
      scores[i] = s;
    }
    out.set(f.path, scores);
  }
  return out;
}
