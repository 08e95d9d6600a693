// Event-time and wall-clock timers (punctuation) of one task, persisted in the task's metadata
// store so that they survive crashes and move with the task on a rebalance.
import type { Timer } from '../operators/types.ts';
import type { MemoryKeyValueStore } from './stores.ts';

interface Entry {
  id: string;
  node: string;
  timer: Timer;
  live: boolean;
}

const SEP = '\u0000';

/** Due time, then id: timers due at the same instant fire in the same order before and after a restore. */
function before(a: Entry, b: Entry): boolean {
  return a.timer.at < b.timer.at || (a.timer.at === b.timer.at && a.id < b.id);
}

/** Binary min-heap of timer entries ordered by due time, with lazy deletion. */
class Heap {
  private readonly a: Entry[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): Entry | undefined {
    return this.a[0];
  }
  push(e: Entry): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i]!, a[p]!)) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): Entry | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
  clear(): void {
    this.a.length = 0;
  }
}

export class TimerQueue {
  private readonly heaps = { event: new Heap(), wall: new Heap() };
  private readonly byId = new Map<string, Entry>();

  constructor(private readonly store: MemoryKeyValueStore<number | { at: number; data?: unknown }>) {}

  get size(): number {
    return this.byId.size;
  }

  schedule(node: string, timer: Timer): void {
    const id = `t${SEP}${node}${SEP}${timer.kind}${SEP}${timer.key}`;
    const old = this.byId.get(id);
    if (old) old.live = false;
    const e: Entry = { id, node, timer: { ...timer }, live: true };
    this.byId.set(id, e);
    this.heaps[timer.kind].push(e);
    this.store.put(id, timer.data === undefined ? { at: timer.at } : { at: timer.at, data: timer.data });
  }

  cancel(node: string, kind: Timer['kind'], key: string): void {
    const id = `t${SEP}${node}${SEP}${kind}${SEP}${key}`;
    const e = this.byId.get(id);
    if (!e) return;
    e.live = false;
    this.byId.delete(id);
    this.store.delete(id);
  }

  /** Pops and fires, in due order, every live timer of `kind` due at or before `time`. */
  fireDue(kind: Timer['kind'], time: number, fire: (node: string, timer: Timer) => void): void {
    const heap = this.heaps[kind];
    for (;;) {
      const top = heap.peek();
      if (!top || top.timer.at > time) return;
      heap.pop();
      if (!top.live) continue;
      top.live = false;
      this.byId.delete(top.id);
      this.store.delete(top.id);
      fire(top.node, top.timer);
    }
  }

  /** Rebuilds the queues from the metadata store (after restore). */
  reload(): void {
    this.heaps.event.clear();
    this.heaps.wall.clear();
    this.byId.clear();
    for (const [id, v] of this.store.entries()) {
      if (!id.startsWith(`t${SEP}`) || typeof v === 'number') continue;
      const [, node, kind, ...rest] = id.split(SEP);
      const timer: Timer = { kind: kind as Timer['kind'], at: v.at, key: rest.join(SEP) };
      if (v.data !== undefined) timer.data = v.data;
      const e: Entry = { id, node: node!, timer, live: true };
      this.byId.set(id, e);
      this.heaps[timer.kind].push(e);
    }
  }
}
