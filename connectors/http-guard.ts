// What every outbound HTTP call of Vigil shares (lookups of enrich, deliveries of receivers): the
// retry delay (exponential backoff with full jitter), a sleep that a shutdown cuts short, the
// circuit breaker (opossum) with its events, and the two ways a response goes wrong (a network
// cause under fetch's "fetch failed", a body larger than allowed).
import CircuitBreaker from 'opossum';

/** A failure worth another attempt: network error, timeout, 429, 5xx. */
export class Retryable extends Error {}

export class BodyTooLarge extends Error {}

export interface BreakerOptions {
  /** Open when more than this percentage of the last 10 s of calls failed... */
  errorPercentage: number;
  /** ...and there were at least this many. */
  minRequests: number;
  /** How long it stays open before one call probes the service. */
  resetMs: number;
}

/** The delay before retry `attempt` (1, 2, ...): uniform in [0, min(max, base * 2^(attempt-1))] (AWS' "full jitter"). */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.random() * Math.min(maxMs, baseMs * 2 ** (attempt - 1));
}

/** Resolves after `ms`, or at once when `signal` aborts (resolves false then). */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(t);
      signal?.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    const t = setTimeout(() => done(true), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A circuit breaker around `fn` reporting breaker-open, breaker-half-open and breaker-close.
 * Errors `notFailure` accepts (a permanent refusal: the service answered) do not count.
 */
export function circuitBreaker<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
  o: BreakerOptions,
  onEvent?: (event: string) => void,
  notFailure?: (err: unknown) => boolean,
): CircuitBreaker<A, R> {
  const breaker = new CircuitBreaker(fn, {
    timeout: false,
    ...(notFailure !== undefined ? { errorFilter: notFailure } : {}),
    errorThresholdPercentage: o.errorPercentage,
    volumeThreshold: o.minRequests,
    resetTimeout: o.resetMs,
    rollingCountTimeout: 10_000,
  });
  breaker.on('open', () => onEvent?.('breaker-open'));
  breaker.on('halfOpen', () => onEvent?.('breaker-half-open'));
  breaker.on('close', () => onEvent?.('breaker-close'));
  return breaker;
}

/** closed, half-open or open. */
export function breakerState(b: CircuitBreaker<any, any>): 'closed' | 'half-open' | 'open' {
  return b.opened ? 'open' : b.halfOpen ? 'half-open' : 'closed';
}

/** Whether an error is opossum's rejection of a call while the breaker is open. */
export function isBreakerOpen(err: unknown): boolean {
  return (err as { code?: string }).code === 'EOPENBREAKER';
}

/** The system error under fetch's "fetch failed" (ECONNREFUSED, ENOTFOUND, ...), else its message. */
export function networkCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause;
  return cause?.code ?? cause?.errors?.find((e) => e.code !== undefined)?.code ?? cause?.message ?? (err as Error).message;
}

/** The response body as text, refusing more than `max` bytes without reading them all. */
export async function readBounded(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel();
    throw new BodyTooLarge(`the response is ${declared} bytes, more than ${max}`);
  }
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      await reader.cancel();
      throw new BodyTooLarge(`the response is more than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Text from a remote party, safe to put in a message: printable ASCII, at most `max` characters. */
export function printable(text: string, max = 120): string {
  const s = text.replace(/[^\x20-\x7e]/g, '?');
  return s.length > max ? `${s.slice(0, max)}...` : s;
}
