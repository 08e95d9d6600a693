// CPU time and memory of other processes (the broker's JVM, the engine child) from Linux /proc.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ProcCpu {
  /** User-mode CPU time, in clock ticks. */
  utime: number;
  /** Kernel-mode CPU time, in clock ticks. */
  stime: number;
}

/**
 * Parses /proc/<pid>/stat. The second field (comm) is in parentheses and may itself hold spaces
 * and parentheses, so fields are counted from the last ')': utime and stime are fields 14 and 15.
 */
export function parseProcStat(text: string): ProcCpu {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error('not a /proc/<pid>/stat line: no comm field');
  // After ") " comes field 3 (state); utime is field 14, i.e. index 11 of the rest.
  const rest = text.slice(close + 2).trim().split(/\s+/);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('not a /proc/<pid>/stat line: no utime/stime');
  return { utime, stime };
}

let clockTicks: number | undefined;

/** Clock ticks per second (getconf CLK_TCK; 100 on practically every Linux). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds a process has used so far; undefined when /proc cannot tell. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const { utime, stime } = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return (utime + stime) / clockTicksPerSecond();
  } catch {
    return undefined;
  }
}

/** Parses the `VmHWM` (peak resident set) line of /proc/<pid>/status, in bytes. */
export function parsePeakRss(statusText: string): number | undefined {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(statusText);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** Peak resident set size of a process in bytes; undefined when /proc cannot tell. */
export function processPeakRss(pid: number): number | undefined {
  try {
    return parsePeakRss(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}
