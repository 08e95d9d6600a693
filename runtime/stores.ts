// In-memory state stores backed by compacted changelog topics (Kafka Streams' model).
//
// A store keeps its live state in a Map and remembers which keys changed since the last
// commit. At commit the runtime drains those changes into changelog records (value JSON, or a
// tombstone for a delete) and writes them with the outputs — inside the same transaction under
// exactly_once. On assignment the task replays the changelog partition into the store before it
// processes anything. Compaction of the changelog keeps restore proportional to live state.
//
// Values must be plain JSON data (numbers, strings, booleans, null, arrays, objects).
import type { KeyValueStore, WindowStore } from '../operators/types.ts';

export interface ChangelogEntry {
  key: string;
  /** JSON text of the value; null = tombstone. */
  value: string | null;
}

/** What the runtime needs from every store, whatever its kind. */
export interface ManagedStore {
  readonly name: string;
  readonly changelogTopic: string;
  /** Changes since the last call, as changelog records; clears the change set. */
  drainChanges(): ChangelogEntry[];
  /** Applies one changelog record during restore. */
  restore(key: string, value: Buffer | null): void;
  /** Live entries (for metrics). */
  readonly size: number;
  /** Approximate bytes held (keys + JSON values), for metrics and the bench. */
  approxBytes(): number;
}

const TOMBSTONE = Symbol('tombstone');

/** A changelog record of a changed value: JSON, or null for a tombstone. */
function changelogEntry<V>(key: string, v: V | typeof TOMBSTONE): ChangelogEntry {
  return { key, value: v === TOMBSTONE ? null : JSON.stringify(v) };
}

/** Turns a store's change set into changelog records and clears it. */
function drain<V>(dirty: Map<string, V | typeof TOMBSTONE>): ChangelogEntry[] {
  if (dirty.size === 0) return [];
  const out: ChangelogEntry[] = [];
  for (const [key, v] of dirty) out.push(changelogEntry(key, v));
  dirty.clear();
  return out;
}

/** The inner map of `key`, created when missing. */
function windowsOf<W>(map: Map<string, Map<number, W>>, key: string): Map<number, W> {
  let windows = map.get(key);
  if (!windows) map.set(key, (windows = new Map()));
  return windows;
}

export class MemoryKeyValueStore<V> implements KeyValueStore<V>, ManagedStore {
  private readonly map = new Map<string, V>();
  private readonly dirty = new Map<string, V | typeof TOMBSTONE>();

  constructor(
    readonly name: string,
    readonly changelogTopic: string,
  ) {}

  get(key: string): V | undefined {
    return this.map.get(key);
  }
  has(key: string): boolean {
    return this.map.has(key);
  }
  put(key: string, value: V): void {
    this.map.set(key, value);
    this.dirty.set(key, value);
  }
  delete(key: string): void {
    if (this.map.delete(key)) this.dirty.set(key, TOMBSTONE);
  }
  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }
  get size(): number {
    return this.map.size;
  }

  drainChanges(): ChangelogEntry[] {
    return drain(this.dirty);
  }

  restore(key: string, value: Buffer | null): void {
    if (value === null) this.map.delete(key);
    else this.map.set(key, JSON.parse(value.toString('utf8')) as V);
  }

  approxBytes(): number {
    let n = 0;
    for (const [k, v] of this.map) n += k.length + JSON.stringify(v).length;
    return n;
  }
}

/** Changelog key of a window entry: zero-padded start, a NUL, then the record key. */
export function windowChangelogKey(key: string, windowStart: number): string {
  return `${windowStart.toString().padStart(16, '0')}\u0000${key}`;
}

function parseWindowChangelogKey(k: string): [string, number] {
  const i = k.indexOf('\u0000');
  return [k.slice(i + 1), Number(k.slice(0, i))];
}

export class MemoryWindowStore<V> implements WindowStore<V>, ManagedStore {
  /** key -> (window start -> value) */
  private readonly map = new Map<string, Map<number, V>>();
  /** key -> (window start -> changed value): changelog keys are built once per drain, not per put. */
  private readonly dirty = new Map<string, Map<number, V | typeof TOMBSTONE>>();
  private count = 0;

  constructor(
    readonly name: string,
    readonly changelogTopic: string,
  ) {}

  get(key: string, windowStart: number): V | undefined {
    return this.map.get(key)?.get(windowStart);
  }

  put(key: string, windowStart: number, value: V): void {
    this.set(key, windowStart, value);
    this.markDirty(key, windowStart, value);
  }

  delete(key: string, windowStart: number): void {
    if (this.remove(key, windowStart)) this.markDirty(key, windowStart, TOMBSTONE);
  }

  fetch(key: string, from: number, to: number): Array<[number, V]> {
    const windows = this.map.get(key);
    if (!windows) return [];
    const out: Array<[number, V]> = [];
    for (const [start, v] of windows) if (start >= from && start <= to) out.push([start, v]);
    out.sort((a, b) => a[0] - b[0]);
    return out;
  }

  all(): Array<[string, number, V]> {
    const out: Array<[string, number, V]> = [];
    for (const [key, windows] of this.map) for (const [start, v] of windows) out.push([key, start, v]);
    out.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return out;
  }

  get size(): number {
    return this.count;
  }

  drainChanges(): ChangelogEntry[] {
    if (this.dirty.size === 0) return [];
    const out: ChangelogEntry[] = [];
    for (const [key, windows] of this.dirty)
      for (const [start, v] of windows) out.push(changelogEntry(windowChangelogKey(key, start), v));
    this.dirty.clear();
    return out;
  }

  restore(changelogKey: string, value: Buffer | null): void {
    const [key, start] = parseWindowChangelogKey(changelogKey);
    if (value === null) this.remove(key, start);
    else this.set(key, start, JSON.parse(value.toString('utf8')) as V);
  }

  approxBytes(): number {
    let n = 0;
    for (const [k, windows] of this.map) for (const v of windows.values()) n += k.length + 8 + JSON.stringify(v).length;
    return n;
  }

  private markDirty(key: string, start: number, value: V | typeof TOMBSTONE): void {
    windowsOf(this.dirty, key).set(start, value);
  }

  private set(key: string, start: number, value: V): void {
    const windows = windowsOf(this.map, key);
    if (!windows.has(start)) this.count++;
    windows.set(start, value);
  }

  private remove(key: string, start: number): boolean {
    const windows = this.map.get(key);
    if (!windows || !windows.delete(start)) return false;
    this.count--;
    if (windows.size === 0) this.map.delete(key);
    return true;
  }
}
