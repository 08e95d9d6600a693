import { describe, expect, it } from 'vitest';
import { categoryOf, profileMarkdown, selfTimes, summarizeProfile } from '../../bench/lib/profile.ts';
import type { CpuProfile } from '../../bench/lib/profile.ts';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { REPO_ROOT } from '../../connectors/kafka-jars.ts';

// Frame URLs point into this checkout, wherever it lives.
const inRepo = (path: string) => pathToFileURL(join(REPO_ROOT, path)).href;

const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber, scriptId: '0', columnNumber: 0 });

// root -> (idle), root -> handle (runtime/task.ts) -> decode (avsc), root -> (garbage collector)
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 3, 5] },
    { id: 2, callFrame: frame('(idle)') },
    { id: 3, callFrame: frame('process', inRepo('runtime/task.ts'), 199), children: [4] },
    { id: 4, callFrame: frame('readLong', inRepo('node_modules/avsc/lib/utils.js'), 9) },
    { id: 5, callFrame: frame('(garbage collector)') },
  ],
  startTime: 0,
  endTime: 10_000,
  // Sample i lasts until sample i + 1 (the delta that follows it).
  samples: [2, 3, 4, 4, 3, 5, 2],
  timeDeltas: [0, 1000, 2000, 1000, 1000, 500, 500],
};

describe('selfTimes', () => {
  it('charges each sample the interval up to the next one', () => {
    const self = selfTimes(profile);
    // node 2: 1000 (first) + mean 10000/7 (last); node 3: 2000 + 500; node 4: 1000 + 1000; node 5: 500
    expect(self.get(3)).toBe(2500);
    expect(self.get(4)).toBe(2000);
    expect(self.get(5)).toBe(500);
    expect(self.get(2)).toBeCloseTo(1000 + 10_000 / 7, 9);
  });

  it('falls back to hit counts when a profile has no samples', () => {
    const self = selfTimes({ nodes: [{ id: 1, callFrame: frame('a'), hitCount: 3 }, { id: 2, callFrame: frame('b'), hitCount: 1 }], startTime: 0, endTime: 4000 });
    expect(self.get(1)).toBe(3000);
    expect(self.get(2)).toBe(1000);
  });
});

describe('summarizeProfile', () => {
  it('ranks functions by self time, as shares of the non-idle time', () => {
    const s = summarizeProfile(profile);
    expect(s.busyMs).toBeCloseTo(5, 9);
    expect(s.functions.map((f) => [f.function, f.category, f.percent])).toEqual([
      ['process', 'vigil runtime', 50],
      ['readLong', 'avsc', 40],
      ['(garbage collector)', 'GC', 10],
    ]);
    expect(s.functions[0]!.location).toBe('runtime/task.ts:200');
    expect(s.functions[1]!.location).toBe('avsc/lib/utils.js:10');
    expect(s.categories[0]).toEqual({ category: 'vigil runtime', selfMs: 2.5, percent: 50 });
    expect(profileMarkdown(s)).toContain('| `process` | runtime/task.ts:200 | vigil runtime | 3 | 50.0 |');
  });
});

describe('categoryOf', () => {
  it('names the area of a frame from its URL', () => {
    expect(categoryOf('f', 'file:///x/node_modules/kafkajs/src/producer/index.js')).toBe('kafkajs');
    expect(categoryOf('f', 'file:///x/node_modules/@datadog/sketches-js/dist/x.js')).toBe('@datadog/sketches-js');
    expect(categoryOf('f', 'file:///work/main/operators/aggregate.ts')).toBe('vigil operators');
    expect(categoryOf('f', 'file:///work/main/schemas/serde.ts')).toBe('vigil serde');
    expect(categoryOf('f', 'node:internal/streams/readable')).toBe('node internals');
    expect(categoryOf('writeSync', '')).toBe('V8/native');
    expect(categoryOf('(program)', '')).toBe('V8/native (program)');
  });
});
