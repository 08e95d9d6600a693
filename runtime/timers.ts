// Event-time and wall-clock timers (punctuation) of one task, per operator, persisted in the
// task's timer store (its own changelog topic) so that they survive crashes and move with the task
// on a rebalance.
import type { Timer } from '../kernel/operator.ts';
import type { AvroType } from '../kernel/schema.ts';
import { MinHeap } from './heap.ts';
import { MemoryKeyValueStore, avroCodec } from './stores.ts';

interface Entry {
  id: string;
  node: string;
  timer: Timer;
  live: boolean;
}

/** A timer as its store keeps it (key: node, kind and timer key, NUL-separated). */
export interface StoredTimer {
  at: number;
  data: string | null;
}

export const TIMER_SCHEMA: AvroType = {
  type: 'record',
  name: 'Timer',
  namespace: 'vigil.state',
  fields: [
    { name: 'at', type: 'long' },
    { name: 'data', type: ['null', 'string'], default: null },
  ],
};

const SEP = '\u0000';

/** Due time, then id: timers due at the same instant fire in the same order before and after a restore. */
function before(a: Entry, b: Entry): boolean {
  return a.timer.at < b.timer.at || (a.timer.at === b.timer.at && a.id < b.id);
}

function timerId(node: string, kind: Timer['kind'], key: string): string {
  return `${node}${SEP}${kind}${SEP}${key}`;
}

export function timerStore(changelogTopic: string): MemoryKeyValueStore<StoredTimer> {
  return new MemoryKeyValueStore<StoredTimer>('__timers', changelogTopic, avroCodec(TIMER_SCHEMA));
}

export class TimerQueue {
  /** node -> kind -> heap */
  private readonly heaps = new Map<string, Record<Timer['kind'], MinHeap<Entry>>>();
  private readonly byId = new Map<string, Entry>();

  constructor(readonly store: MemoryKeyValueStore<StoredTimer>) {}

  get size(): number {
    return this.byId.size;
  }

  schedule(node: string, timer: Timer): void {
    const id = timerId(node, timer.kind, timer.key);
    const old = this.byId.get(id);
    if (old) old.live = false;
    const e: Entry = { id, node, timer: { ...timer }, live: true };
    this.byId.set(id, e);
    this.heap(node, timer.kind).push(e);
    this.store.put(id, { at: timer.at, data: timer.data ?? null });
  }

  cancel(node: string, kind: Timer['kind'], key: string): void {
    const id = timerId(node, kind, key);
    const e = this.byId.get(id);
    if (!e) return;
    e.live = false;
    this.byId.delete(id);
    this.store.delete(id);
  }

  /** Pops and fires, in due order, every live timer of one node and kind due at or before `time`. */
  fireDue(node: string, kind: Timer['kind'], time: number, fire: (timer: Timer) => void): void {
    const heap = this.heaps.get(node)?.[kind];
    if (heap === undefined) return;
    for (;;) {
      const top = heap.peek();
      if (!top || top.timer.at > time) return;
      heap.pop();
      if (!top.live) continue;
      top.live = false;
      this.byId.delete(top.id);
      this.store.delete(top.id);
      fire(top.timer);
    }
  }

  /** Rebuilds the queues from the store (after restore). */
  reload(): void {
    this.heaps.clear();
    this.byId.clear();
    for (const [id, v] of this.store.entries()) {
      const [node, kind, ...rest] = id.split(SEP);
      const timer: Timer = { kind: kind as Timer['kind'], at: v.at, key: rest.join(SEP) };
      if (v.data !== null) timer.data = v.data;
      const e: Entry = { id, node: node!, timer, live: true };
      this.byId.set(id, e);
      this.heap(node!, timer.kind).push(e);
    }
  }

  private heap(node: string, kind: Timer['kind']): MinHeap<Entry> {
    let h = this.heaps.get(node);
    if (h === undefined) this.heaps.set(node, (h = { event: new MinHeap(before), wall: new MinHeap(before) }));
    return h[kind];
  }
}
