import { describe, expect, it } from 'vitest';
import { parsePeakRss, parseProcStat, processCpuSeconds } from '../../bench/lib/proc.ts';

describe('parseProcStat', () => {
  it('reads utime and stime (fields 14 and 15)', () => {
    const line = '30261 (java) S 30182 30182 30182 0 -1 1077936384 180447 0 12 0 8123 1187 0 0 20 0 64 0 123456 6328373248 113803 18446744073709551615 1 1 0 0 0 0 0 2 16800975 0 0 0 17 1 0 0 0 0 0';
    expect(parseProcStat(line)).toEqual({ utime: 8123, stime: 1187 });
  });

  it('counts fields from the last parenthesis, whatever the command name holds', () => {
    const line = '42 (my (odd) proc name) R 1 42 42 0 -1 4194304 100 0 0 0 77 5 0 0 20 0 1 0 99 1000 10 18446744073709551615';
    expect(parseProcStat(line)).toEqual({ utime: 77, stime: 5 });
  });

  it('refuses text that is not a stat line', () => {
    expect(() => parseProcStat('nothing here')).toThrow();
    expect(() => parseProcStat('1 (x) S 1 2')).toThrow();
  });
});

describe('parsePeakRss', () => {
  it('reads VmHWM in bytes', () => {
    expect(parsePeakRss('Name:\tnode\nVmPeak:\t  900000 kB\nVmHWM:\t  314572 kB\nVmRSS:\t  300000 kB\n')).toBe(314572 * 1024);
    expect(parsePeakRss('Name:\tnode\n')).toBeUndefined();
  });
});

describe('processCpuSeconds', () => {
  it('is undefined for a process that does not exist', () => {
    expect(processCpuSeconds(2 ** 30)).toBeUndefined();
  });
});
