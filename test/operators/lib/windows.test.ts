import { describe, expect, it } from 'vitest';
import { describeWindow, fixedWindowStarts, maxFixedWindows, touchesSession } from '../../../operators/lib/windows.ts';

function starts(t: number, size: number, advance: number): number[] {
  const out = new Array<number>(maxFixedWindows(size, advance)).fill(NaN);
  const n = fixedWindowStarts(t, size, advance, out);
  return out.slice(0, n);
}

/** Brute force: every multiple of advance near t whose [s, s + size) holds t. */
function bruteStarts(t: number, size: number, advance: number): number[] {
  const out: number[] = [];
  for (let k = Math.floor((t - size) / advance) - 2; k <= Math.floor(t / advance) + 2; k++) {
    const s = k * advance;
    if (s <= t && t < s + size) out.push(s);
  }
  return out;
}

describe('fixedWindowStarts', () => {
  it('assigns tumbling windows aligned to epoch 0', () => {
    expect(starts(0, 60_000, 60_000)).toEqual([0]);
    expect(starts(59_999, 60_000, 60_000)).toEqual([0]);
    expect(starts(60_000, 60_000, 60_000)).toEqual([60_000]);
    expect(starts(1_700_000_012_345, 60_000, 60_000)).toEqual([1_699_999_980_000]);
  });

  it('handles negative event times', () => {
    expect(starts(-1, 1000, 1000)).toEqual([-1000]);
    expect(starts(-1000, 1000, 1000)).toEqual([-1000]);
    expect(starts(-1001, 1000, 1000)).toEqual([-2000]);
  });

  it('assigns hopping windows in ascending order', () => {
    expect(starts(5, 10, 5)).toEqual([0, 5]);
    expect(starts(4, 10, 5)).toEqual([-5, 0]);
    expect(starts(10, 10, 3)).toEqual([3, 6, 9]);
    expect(starts(125_000, 300_000, 60_000)).toEqual([-120_000, -60_000, 0, 60_000, 120_000]);
  });

  it('matches a brute-force assignment for many sizes, advances and times', () => {
    for (const [size, advance] of [[10, 10], [10, 5], [10, 3], [7, 7], [7, 2], [60, 1], [1, 1], [300, 60]] as const) {
      expect(maxFixedWindows(size, advance)).toBe(Math.ceil(size / advance));
      for (let t = -50; t <= 150; t++) expect(starts(t, size, advance), `t=${t} size=${size} advance=${advance}`).toEqual(bruteStarts(t, size, advance));
    }
  });
});

describe('sessions', () => {
  it('a record touches a session when it is less than gap from it', () => {
    // session [100, 150) with gap 30: its records lie in [100, 120]
    expect(touchesSession(70, 30, 100, 150)).toBe(false); // 100 - 70 = gap: not less than gap
    expect(touchesSession(71, 30, 100, 150)).toBe(true);
    expect(touchesSession(149, 30, 100, 150)).toBe(true);
    expect(touchesSession(150, 30, 100, 150)).toBe(false);
  });
});

describe('describeWindow', () => {
  it('shows epoch ms and ISO bounds', () => {
    expect(describeWindow(0, 60_000)).toBe('[0, 60000) = [1970-01-01T00:00:00.000Z, 1970-01-01T00:01:00.000Z)');
  });
});
