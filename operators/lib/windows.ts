// Window assignment for event-time aggregations. All windows are half-open [start, end) in epoch
// milliseconds. Pure functions, no allocation on the per-record path (callers pass a reusable
// output array).

export type WindowDef =
  | { type: 'tumbling'; size: number }
  | { type: 'hopping'; size: number; advance: number }
  | { type: 'sliding'; size: number }
  | { type: 'session'; gap: number };

/**
 * Starts of the fixed windows (tumbling: advance = size; hopping: advance <= size) that contain
 * event time `t`, ascending, written to `out`; returns how many. Windows are aligned to epoch 0:
 * starts are the multiples of `advance`, and window [s, s + size) contains t when s <= t < s + size.
 */
export function fixedWindowStarts(t: number, size: number, advance: number, out: number[]): number {
  const last = Math.floor(t / advance) * advance;
  // The earliest start s = last - k * advance with s > t - size.
  const k = Math.ceil((last - t + size) / advance) - 1;
  let n = 0;
  for (let s = last - k * advance; s <= last; s += advance) out[n++] = s;
  return n;
}

/** The largest number of fixed windows one record can fall into (output array length). */
export function maxFixedWindows(size: number, advance: number): number {
  return Math.ceil(size / advance);
}

/**
 * Sliding windows are one per distinct event time t of a key: the window [t - size + 1, t + 1),
 * i.e. the records of the key with event time in (t - size, t]. Returns its start.
 */
export function slidingWindowStart(t: number, size: number): number {
  return t - size + 1;
}

/** End (exclusive) of the sliding window of a record at t. */
export function slidingWindowEnd(t: number): number {
  return t + 1;
}

/**
 * Whether a record at `t` falls into a session [start, end) with the given gap: its own window
 * [t, t + gap) overlaps the session, i.e. it is less than `gap` from a record of the session.
 */
export function touchesSession(t: number, gap: number, start: number, end: number): boolean {
  return start < t + gap && t < end;
}

/** "[start, end)" with both bounds as epoch ms and ISO-8601, for messages. */
export function describeWindow(start: number, end: number): string {
  return `[${start}, ${end}) = [${isoOrRaw(start)}, ${isoOrRaw(end)})`;
}

export function isoOrRaw(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}
