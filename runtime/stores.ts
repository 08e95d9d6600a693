// State stores: in memory, backed by compacted changelog topics (Kafka Streams' model).
//
// A store keeps its live state in memory and remembers which entries changed since the last
// commit. At commit the runtime drains those changes into changelog records (the value in Avro
// binary with the store's declared schema, or a tombstone for a delete) and writes them with the
// outputs, inside the same transaction under exactly_once. On assignment the task replays the
// changelog partition into the store before it processes anything; compaction keeps restore
// proportional to the live state.
//
// Kinds are registered by name (STORE_FACTORIES below, one per kernel StoreKind): kv (with
// ordered prefix and range scans), window (one value per key and window start) and buffer (many
// values per key, time-ordered). Window and buffer stores enforce their retention as the
// operator's watermark advances (expire()).
import avro from 'avsc';
import type { AvroType } from '../kernel/schema.ts';
import type { BufferEntry, BufferStore, KeyValueStore, StoreDecl, StoreKind, WindowStore } from '../kernel/store.ts';
import { MinHeap } from './heap.ts';

export interface ChangelogEntry {
  key: string;
  /** The encoded value; null = tombstone. */
  value: Buffer | null;
}

/** What the runtime needs from every store, whatever its kind. */
export interface ManagedStore {
  readonly name: string;
  readonly kind: string;
  /** The compacted topic that backs the store (for a table: the table's own topic). */
  readonly changelogTopic: string;
  /** Changes since the last call, as changelog records; clears the change set. */
  drainChanges(): ChangelogEntry[];
  /** Applies one changelog record during restore. */
  restore(key: string, value: Buffer | null): void;
  /** Drops entries past the store's retention as of `time` (the operator's input watermark). */
  expire(time: number): void;
  /** Live entries (for metrics). */
  readonly size: number;
  /** Approximate bytes held (keys + encoded values), for metrics and the bench. */
  approxBytes(): number;
}

/** Encodes values as the store declared them. */
export interface ValueCodec<V> {
  encode(value: V): Buffer;
  decode(buf: Buffer): V;
}

/** A codec from an Avro schema (binary encoding), with the declaration's optional mapping. */
export function avroCodec<V>(schema: AvroType, map?: StoreDecl['codec']): ValueCodec<V> {
  const type = avro.Type.forSchema(schema as avro.Schema, { wrapUnions: 'never' });
  if (map === undefined) return { encode: (v) => type.toBuffer(v), decode: (b) => type.fromBuffer(b) as V };
  return { encode: (v) => type.toBuffer(map.toAvro(v)), decode: (b) => map.fromAvro(type.fromBuffer(b)) as V };
}

const TOMBSTONE = Symbol('tombstone');
type Change<V> = V | typeof TOMBSTONE;

function encodeChange<V>(codec: ValueCodec<V>, key: string, v: Change<V>): ChangelogEntry {
  return { key, value: v === TOMBSTONE ? null : codec.encode(v) };
}

/** The inner map of `key`, created when missing. */
function innerOf<K, W>(map: Map<string, Map<K, W>>, key: string): Map<K, W> {
  let inner = map.get(key);
  if (!inner) map.set(key, (inner = new Map()));
  return inner;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// kv

/**
 * Key-value store. Point reads and writes are Map operations; the ordered index that prefix and
 * range scans need is kept lazily: keys added since the last scan are sorted and merged in on the
 * next scan, deleted keys are skipped and swept out once they are a third of the index.
 */
export class MemoryKeyValueStore<V> implements KeyValueStore<V>, ManagedStore {
  readonly kind = 'kv';
  private readonly map = new Map<string, V>();
  private readonly dirty = new Map<string, Change<V>>();
  private sorted: string[] = [];
  private added: string[] = [];
  private removed = 0;

  constructor(
    readonly name: string,
    readonly changelogTopic: string,
    private readonly codec: ValueCodec<V>,
    /** false: changes are not drained (a table restored from its own topic). */
    private readonly logged = true,
  ) {}

  get(key: string): V | undefined {
    return this.map.get(key);
  }
  has(key: string): boolean {
    return this.map.has(key);
  }
  put(key: string, value: V): void {
    if (!this.map.has(key)) this.added.push(key);
    this.map.set(key, value);
    if (this.logged) this.dirty.set(key, value);
  }
  delete(key: string): void {
    if (!this.map.delete(key)) return;
    this.removed++;
    if (this.logged) this.dirty.set(key, TOMBSTONE);
  }
  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }
  get size(): number {
    return this.map.size;
  }

  prefix(prefix: string): Array<[string, V]> {
    return this.scan(prefix, (k) => k.startsWith(prefix));
  }

  range(from: string, to: string): Array<[string, V]> {
    return this.scan(from, (k) => k < to);
  }

  /** Entries from the first key >= `from` while `more(key)` holds, ascending. */
  private scan(from: string, more: (key: string) => boolean): Array<[string, V]> {
    const keys = this.index();
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (keys[mid]! < from) lo = mid + 1;
      else hi = mid;
    }
    const out: Array<[string, V]> = [];
    for (let i = lo; i < keys.length && more(keys[i]!); i++) {
      const v = this.map.get(keys[i]!);
      if (v !== undefined || this.map.has(keys[i]!)) out.push([keys[i]!, v as V]);
    }
    return out;
  }

  /** The sorted key index, with the keys added since the last scan merged in. */
  private index(): string[] {
    if (this.removed * 3 > this.sorted.length + this.added.length) {
      this.sorted = [...this.map.keys()].sort(compareStrings);
      this.added = [];
      this.removed = 0;
      return this.sorted;
    }
    if (this.added.length === 0) return this.sorted;
    const fresh = [...new Set(this.added)].filter((k) => this.map.has(k)).sort(compareStrings);
    this.added = [];
    const old = this.sorted;
    const merged: string[] = new Array(old.length + fresh.length);
    let i = 0;
    let j = 0;
    let n = 0;
    while (i < old.length || j < fresh.length) {
      if (j >= fresh.length || (i < old.length && old[i]! <= fresh[j]!)) {
        // A key deleted and added again is in both lists: keep one.
        if (j < fresh.length && old[i] === fresh[j]) j++;
        merged[n++] = old[i++]!;
      } else merged[n++] = fresh[j++]!;
    }
    merged.length = n;
    this.sorted = merged;
    return merged;
  }

  drainChanges(): ChangelogEntry[] {
    if (this.dirty.size === 0) return [];
    const out: ChangelogEntry[] = [];
    for (const [key, v] of this.dirty) out.push(encodeChange(this.codec, key, v));
    this.dirty.clear();
    return out;
  }

  restore(key: string, value: Buffer | null): void {
    if (value === null) {
      if (this.map.delete(key)) this.removed++;
    } else {
      if (!this.map.has(key)) this.added.push(key);
      this.map.set(key, this.codec.decode(value));
    }
  }

  /** Applies a decoded value without logging it (table updates, restore of decoded rows). */
  apply(key: string, value: V | null): void {
    if (value === null) {
      if (this.map.delete(key)) this.removed++;
    } else {
      if (!this.map.has(key)) this.added.push(key);
      this.map.set(key, value);
    }
  }

  expire(): void {}

  approxBytes(): number {
    let n = 0;
    for (const [k, v] of this.map) n += k.length + this.codec.encode(v).length;
    return n;
  }
}

// ---------------------------------------------------------------------------------------------
// window

/** Changelog key of a window entry: zero-padded start, a NUL, then the record key. */
export function windowChangelogKey(key: string, windowStart: number): string {
  return `${windowStart.toString().padStart(16, '0')}\u0000${key}`;
}

function parseWindowChangelogKey(k: string): [string, number] {
  const i = k.indexOf('\u0000');
  return [k.slice(i + 1), Number(k.slice(0, i))];
}

export class MemoryWindowStore<V> implements WindowStore<V>, ManagedStore {
  readonly kind = 'window';
  /** key -> (window start -> value) */
  private readonly map = new Map<string, Map<number, V>>();
  /** key -> (window start -> changed value): changelog keys are built once per drain, not per put. */
  private readonly dirty = new Map<string, Map<number, Change<V>>>();
  /** window start -> keys with a window there (for retention and ordered scans). */
  private readonly byStart = new Map<number, Set<string>>();
  /** Starts in byStart, earliest first; starts whose windows are all gone are skipped lazily. */
  private readonly starts = new MinHeap<number>((a, b) => a < b);
  private count = 0;

  constructor(
    readonly name: string,
    readonly changelogTopic: string,
    private readonly codec: ValueCodec<V>,
    private readonly retentionMs?: number,
  ) {}

  get(key: string, windowStart: number): V | undefined {
    return this.map.get(key)?.get(windowStart);
  }

  put(key: string, windowStart: number, value: V): void {
    this.set(key, windowStart, value);
    innerOf(this.dirty, key).set(windowStart, value);
  }

  delete(key: string, windowStart: number): void {
    if (this.remove(key, windowStart)) innerOf(this.dirty, key).set(windowStart, TOMBSTONE);
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
    out.sort((a, b) => a[1] - b[1] || compareStrings(a[0], b[0]));
    return out;
  }

  get size(): number {
    return this.count;
  }

  /** Deletes every window whose start is more than the retention behind `time`. */
  expire(time: number): void {
    if (this.retentionMs === undefined) return;
    const limit = time - this.retentionMs;
    for (;;) {
      const s = this.starts.peek();
      if (s === undefined || s >= limit) return;
      this.starts.pop();
      const keys = this.byStart.get(s);
      if (keys === undefined) continue;
      for (const key of [...keys]) this.delete(key, s);
    }
  }

  drainChanges(): ChangelogEntry[] {
    if (this.dirty.size === 0) return [];
    const out: ChangelogEntry[] = [];
    for (const [key, windows] of this.dirty)
      for (const [start, v] of windows) out.push(encodeChange(this.codec, windowChangelogKey(key, start), v));
    this.dirty.clear();
    return out;
  }

  restore(changelogKey: string, value: Buffer | null): void {
    const [key, start] = parseWindowChangelogKey(changelogKey);
    if (value === null) this.remove(key, start);
    else this.set(key, start, this.codec.decode(value));
  }

  approxBytes(): number {
    let n = 0;
    for (const [k, windows] of this.map) for (const v of windows.values()) n += k.length + 8 + this.codec.encode(v).length;
    return n;
  }

  private set(key: string, start: number, value: V): void {
    const windows = innerOf(this.map, key);
    if (!windows.has(start)) {
      this.count++;
      let keys = this.byStart.get(start);
      if (keys === undefined) {
        this.byStart.set(start, (keys = new Set()));
        this.starts.push(start);
      }
      keys.add(key);
    }
    windows.set(start, value);
  }

  private remove(key: string, start: number): boolean {
    const windows = this.map.get(key);
    if (!windows || !windows.delete(start)) return false;
    this.count--;
    if (windows.size === 0) this.map.delete(key);
    const keys = this.byStart.get(start);
    if (keys !== undefined) {
      keys.delete(key);
      if (keys.size === 0) this.byStart.delete(start);
    }
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// buffer

interface LiveEntry<V> extends BufferEntry<V> {
  live: boolean;
}

const entryBefore = (a: BufferEntry<unknown>, b: BufferEntry<unknown>): boolean =>
  a.time < b.time || (a.time === b.time && (a.key < b.key || (a.key === b.key && a.seq < b.seq)));

/** Changelog key of a buffer entry: time, seq and key, NUL-separated. */
function bufferChangelogKey(e: BufferEntry<unknown>): string {
  return `${e.time}\u0000${e.seq}\u0000${e.key}`;
}

function parseBufferChangelogKey(k: string): { time: number; seq: number; key: string } {
  const a = k.indexOf('\u0000');
  const b = k.indexOf('\u0000', a + 1);
  return { time: Number(k.slice(0, a)), seq: Number(k.slice(a + 1, b)), key: k.slice(b + 1) };
}

export class MemoryBufferStore<V> implements BufferStore<V>, ManagedStore {
  readonly kind = 'buffer';
  /** key -> entries ascending by (time, seq) */
  private readonly byKey = new Map<string, LiveEntry<V>[]>();
  /** Every live entry, earliest first (removed entries are skipped lazily). */
  private readonly byTime = new MinHeap<LiveEntry<V>>(entryBefore);
  /** changelog key -> entry (or tombstone) changed since the last drain */
  private readonly dirty = new Map<string, LiveEntry<V> | typeof TOMBSTONE>();
  private nextSeq = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly changelogTopic: string,
    private readonly codec: ValueCodec<V>,
    private readonly retentionMs?: number,
  ) {}

  add(key: string, time: number, value: V): BufferEntry<V> {
    const e: LiveEntry<V> = { key, time, seq: this.nextSeq++, value, live: true };
    this.insert(e);
    this.dirty.set(bufferChangelogKey(e), e);
    return e;
  }

  update(entry: BufferEntry<V>, value: V): void {
    const e = entry as LiveEntry<V>;
    if (!e.live) return;
    e.value = value;
    this.dirty.set(bufferChangelogKey(e), e);
  }

  remove(entry: BufferEntry<V>): void {
    const e = entry as LiveEntry<V>;
    if (!e.live) return;
    this.unlink(e);
    this.dirty.set(bufferChangelogKey(e), TOMBSTONE);
  }

  fetch(key: string, from: number, to: number): BufferEntry<V>[] {
    const list = this.byKey.get(key);
    if (list === undefined) return [];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.time < from) lo = mid + 1;
      else hi = mid;
    }
    const out: BufferEntry<V>[] = [];
    for (let i = lo; i < list.length && list[i]!.time <= to; i++) out.push(list[i]!);
    return out;
  }

  takeUntil(upTo: number): BufferEntry<V>[] {
    const out: BufferEntry<V>[] = [];
    for (;;) {
      const e = this.byTime.peek();
      if (e === undefined || e.time > upTo) return out;
      this.byTime.pop();
      if (!e.live) continue;
      this.remove(e);
      out.push(e);
    }
  }

  earliest(): number | undefined {
    for (;;) {
      const e = this.byTime.peek();
      if (e === undefined) return undefined;
      if (e.live) return e.time;
      this.byTime.pop();
    }
  }

  get size(): number {
    return this.count;
  }

  expire(time: number): void {
    if (this.retentionMs !== undefined) this.takeUntil(time - this.retentionMs - 1);
  }

  drainChanges(): ChangelogEntry[] {
    if (this.dirty.size === 0) return [];
    const out: ChangelogEntry[] = [];
    for (const [key, e] of this.dirty) out.push(e === TOMBSTONE ? { key, value: null } : { key, value: this.codec.encode(e.value) });
    this.dirty.clear();
    return out;
  }

  restore(changelogKey: string, value: Buffer | null): void {
    const { time, seq, key } = parseBufferChangelogKey(changelogKey);
    if (seq >= this.nextSeq) this.nextSeq = seq + 1;
    const list = this.byKey.get(key);
    const at = list?.findIndex((e) => e.time === time && e.seq === seq) ?? -1;
    if (value === null) {
      if (at >= 0) this.unlink(list![at]!);
      return;
    }
    const decoded = this.codec.decode(value);
    if (at >= 0) list![at]!.value = decoded;
    else this.insert({ key, time, seq, value: decoded, live: true });
  }

  approxBytes(): number {
    let n = 0;
    for (const [k, list] of this.byKey) for (const e of list) n += k.length + 16 + this.codec.encode(e.value).length;
    return n;
  }

  private insert(e: LiveEntry<V>): void {
    let list = this.byKey.get(e.key);
    if (list === undefined) this.byKey.set(e.key, (list = []));
    let i = list.length;
    while (i > 0 && (list[i - 1]!.time > e.time || (list[i - 1]!.time === e.time && list[i - 1]!.seq > e.seq))) i--;
    list.splice(i, 0, e);
    this.byTime.push(e);
    this.count++;
  }

  private unlink(e: LiveEntry<V>): void {
    e.live = false;
    this.count--;
    const list = this.byKey.get(e.key)!;
    const i = list.indexOf(e);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byKey.delete(e.key);
  }
}

// ---------------------------------------------------------------------------------------------

/** The store kinds, by name: one factory per kernel StoreKind. */
export const STORE_FACTORIES: { [K in StoreKind]: (decl: StoreDecl, changelogTopic: string) => ManagedStore } = {
  kv: (d, topic) => new MemoryKeyValueStore(d.name, topic, avroCodec(d.value, d.codec)),
  window: (d, topic) => new MemoryWindowStore(d.name, topic, avroCodec(d.value, d.codec), d.retentionMs),
  buffer: (d, topic) => new MemoryBufferStore(d.name, topic, avroCodec(d.value, d.codec), d.retentionMs),
};

export function createStore(decl: StoreDecl, changelogTopic: string): ManagedStore {
  const make = STORE_FACTORIES[decl.kind];
  if (make === undefined) throw new Error(`unknown store kind '${decl.kind}' (kinds: ${Object.keys(STORE_FACTORIES).join(', ')})`);
  return make(decl, changelogTopic);
}
