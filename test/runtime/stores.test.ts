// The store kinds: values in Avro through their changelogs, ordered scans, retention.
import { describe, expect, it } from 'vitest';
import { MemoryBufferStore, MemoryKeyValueStore, MemoryWindowStore, avroCodec, createStore } from '../../runtime/stores.ts';
import type { ChangelogEntry, ManagedStore } from '../../runtime/stores.ts';
import { TIMER_SCHEMA, TimerQueue, timerStore } from '../../runtime/timers.ts';
import { prng } from '../../connectors/telemetry-generator.ts';

/** Replays drained changelog entries into a fresh store of the same kind. */
function replay<S extends ManagedStore>(entries: ChangelogEntry[], fresh: S): S {
  for (const e of entries) fresh.restore(e.key, e.value);
  return fresh;
}

const point = { type: 'record', name: 'Point', fields: [{ name: 'x', type: 'long' }, { name: 'label', type: ['null', 'string'] }] } as const;

describe('kv store', () => {
  it('writes Avro binary to its changelog and restores from it', () => {
    const s = new MemoryKeyValueStore<{ x: number; label: string | null }>('s', 't', avroCodec(point));
    s.put('a', { x: 1, label: null });
    s.put('b', { x: 2, label: 'two' });
    s.delete('a');
    const changes = s.drainChanges();
    expect(changes.map((c) => [c.key, c.value === null ? null : c.value.length])).toEqual([
      ['a', null],
      ['b', 6],
    ]);
    // Avro, not JSON: a zig-zag long and a union branch, no field names.
    expect(changes[1]!.value!.toString('utf8')).not.toContain('label');
    const r = replay(changes, new MemoryKeyValueStore<{ x: number; label: string | null }>('s', 't', avroCodec(point)));
    expect([...r.entries()].map(([k, v]) => [k, { ...v }])).toEqual([['b', { x: 2, label: 'two' }]]);
    expect(s.drainChanges()).toEqual([]);
  });

  it('scans by prefix and range in key order, across puts and deletes', () => {
    const s = new MemoryKeyValueStore<number>('s', 't', avroCodec('long'));
    const rand = prng(7);
    const model = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const k = `g${Math.floor(rand() * 5)}/${Math.floor(rand() * 50)}`;
      if (rand() < 0.3) {
        s.delete(k);
        model.delete(k);
      } else {
        s.put(k, i);
        model.set(k, i);
      }
      if (i % 97 === 0) {
        const want = [...model].filter(([key]) => key.startsWith('g2/')).sort(([a], [b]) => (a < b ? -1 : 1));
        expect(s.prefix('g2/')).toEqual(want);
        const inRange = [...model].filter(([key]) => key >= 'g1/3' && key < 'g3/').sort(([a], [b]) => (a < b ? -1 : 1));
        expect(s.range('g1/3', 'g3/')).toEqual(inRange);
      }
    }
  });
});

describe('window store', () => {
  it('drops windows past its retention as the watermark advances, with tombstones', () => {
    const s = new MemoryWindowStore<number>('w', 't', avroCodec('long'), 1000);
    s.put('a', 0, 1);
    s.put('b', 0, 2);
    s.put('a', 500, 3);
    s.drainChanges();
    s.expire(999);
    expect(s.size).toBe(3);
    s.expire(1001);
    expect(s.all()).toEqual([['a', 500, 3]]);
    expect(s.drainChanges().map((c) => [c.key.split('\u0000')[1], c.value])).toEqual([
      ['a', null],
      ['b', null],
    ]);
    s.expire(10_000);
    expect(s.size).toBe(0);
  });

  it('restores windows from its changelog', () => {
    const s = new MemoryWindowStore<number>('w', 't', avroCodec('long'));
    s.put('k', 60_000, 5);
    s.put('k', 0, 4);
    const r = replay(s.drainChanges(), new MemoryWindowStore<number>('w', 't', avroCodec('long')));
    expect(r.fetch('k', 0, 60_000)).toEqual([
      [0, 4],
      [60_000, 5],
    ]);
  });
});

describe('buffer store', () => {
  it('keeps many values per key in time order, reads ranges, and takes what the watermark passed', () => {
    const s = new MemoryBufferStore<string>('b', 't', avroCodec('string'), 100);
    s.add('k', 20, 'k20');
    s.add('k', 10, 'k10');
    const dup = s.add('k', 10, 'k10b');
    s.add('j', 15, 'j15');
    expect(s.fetch('k', 10, 15).map((e) => e.value)).toEqual(['k10', 'k10b']);
    expect(s.earliest()).toBe(10);
    s.update(dup, 'k10c');
    expect(s.takeUntil(15).map((e) => `${e.key}@${e.time}:${e.value}`)).toEqual(['k@10:k10', 'k@10:k10c', 'j@15:j15']);
    expect(s.size).toBe(1);
    expect(s.fetch('k', 0, 100).map((e) => e.value)).toEqual(['k20']);
  });

  it('restores from its changelog, removals included, and continues its sequence', () => {
    const s = new MemoryBufferStore<string>('b', 't', avroCodec('string'));
    const a = s.add('k', 1, 'a');
    s.add('k', 1, 'b');
    s.add('x', 3, 'c');
    s.remove(a);
    const r = replay(s.drainChanges(), new MemoryBufferStore<string>('b', 't', avroCodec('string')));
    expect(r.fetch('k', 0, 10).map((e) => e.value)).toEqual(['b']);
    const next = r.add('k', 1, 'd');
    expect(next.seq).toBeGreaterThan(r.fetch('k', 0, 10)[0]!.seq);
    expect(r.fetch('k', 0, 10).map((e) => e.value)).toEqual(['b', 'd']);
  });

  it('enforces its retention', () => {
    const s = createStore({ name: 'b', kind: 'buffer', value: 'long', retentionMs: 50 }, 't') as MemoryBufferStore<number>;
    s.add('k', 0, 1);
    s.add('k', 60, 2);
    s.expire(100);
    expect(s.fetch('k', 0, 100).map((e) => e.value)).toEqual([2]);
  });
});

describe('timers', () => {
  it('persist in their own store (Avro), fire per operator in due order, and survive a reload', () => {
    const store = timerStore('timers');
    const q = new TimerQueue(store);
    q.schedule('a', { kind: 'event', at: 30, key: 'x', data: 'payload' });
    q.schedule('a', { kind: 'event', at: 10, key: 'y' });
    q.schedule('b', { kind: 'event', at: 5, key: 'z' });
    q.cancel('a', 'event', 'missing');
    const restored = new TimerQueue(replay(store.drainChanges(), timerStore('timers')));
    restored.reload();
    const fired: string[] = [];
    restored.fireDue('a', 'event', 30, (t) => fired.push(`${t.key}@${t.at}${t.data ? `:${t.data}` : ''}`));
    expect(fired).toEqual(['y@10', 'x@30:payload']);
    expect(restored.size).toBe(1);
    expect(TIMER_SCHEMA).toMatchObject({ type: 'record' });
  });
});
