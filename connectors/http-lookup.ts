// Cached, bounded and guarded HTTP GET lookups (for the enrich operator): an LRU cache with a TTL
// and a shorter one for misses (lru-cache), one request in flight per URL, a cap on concurrent
// requests (p-limit), a timeout, retries with exponential backoff and full jitter, and a circuit
// breaker (opossum) that stops calling a failing service for a while instead of piling up
// timeouts. The well-kept libraries do the parts that are easy to get subtly wrong; the rest is
// the retry policy, which is Vigil's.
import type CircuitBreaker from 'opossum';
import { LRUCache } from 'lru-cache';
import pLimit from 'p-limit';
import { BodyTooLarge, Retryable, backoffDelay, breakerState, circuitBreaker, isBreakerOpen, networkCause, printable, readBounded, sleep } from './http-guard.ts';
import type { BreakerOptions } from './http-guard.ts';

export interface HttpLookupOptions {
  timeoutMs: number;
  /** Attempts after the first, for retryable failures (network errors, timeouts, 429, 5xx). */
  retries: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** Requests in flight at most. */
  concurrency: number;
  cache: { ttlMs: number; negativeTtlMs: number; maxEntries: number };
  breaker: BreakerOptions;
  headers?: Record<string, string>;
  /** Bodies larger than this are an error (hostile or misrouted responses). */
  maxBodyBytes?: number;
  /** Counters and latencies, for metrics. */
  onEvent?(event: string, by?: number): void;
  onLatency?(ms: number): void;
}

export type LookupResult =
  | { kind: 'found'; body: unknown }
  | { kind: 'not-found' }
  /** permanent: a 4xx other than 404/429, or a body that is not JSON; else the retries ran out or the breaker is open. */
  | { kind: 'error'; error: string; permanent: boolean };

export class HttpLookup {
  private readonly cache: LRUCache<string, LookupResult>;
  private readonly inFlight = new Map<string, Promise<LookupResult>>();
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly breaker: CircuitBreaker<[string], LookupResult>;

  constructor(private readonly o: HttpLookupOptions) {
    this.cache = new LRUCache({ max: o.cache.maxEntries, ttl: Math.max(1, o.cache.ttlMs), ttlAutopurge: false });
    this.limit = pLimit(o.concurrency);
    this.breaker = circuitBreaker((url: string) => this.fetchWithRetries(url), o.breaker, o.onEvent);
  }

  /** closed, half-open or open. */
  get breakerState(): 'closed' | 'half-open' | 'open' {
    return breakerState(this.breaker);
  }

  /** A cached result, without a request. */
  cached(url: string): LookupResult | undefined {
    const hit = this.cache.get(url);
    this.o.onEvent?.(hit === undefined ? 'cache-miss' : 'cache-hit');
    return hit;
  }

  /** The result for a URL: cached, the request already in flight for it, or a new one. */
  lookup(url: string): Promise<LookupResult> {
    const hit = this.cache.get(url);
    if (hit !== undefined) return Promise.resolve(hit);
    const running = this.inFlight.get(url);
    if (running !== undefined) return running;
    const p = this.limit(() => this.breaker.fire(url))
      .catch((err: unknown): LookupResult => {
        const open = isBreakerOpen(err);
        this.o.onEvent?.(open ? 'breaker-rejected' : 'error');
        return { kind: 'error', error: open ? 'circuit breaker open: the service failed too often recently' : (err as Error).message, permanent: false };
      })
      .then((r) => {
        // A TTL of 0 turns caching off (of answers, or of 404s).
        if (r.kind === 'found' && this.o.cache.ttlMs > 0) this.cache.set(url, r);
        else if (r.kind === 'not-found' && this.o.cache.negativeTtlMs > 0) this.cache.set(url, r, { ttl: this.o.cache.negativeTtlMs });
        return r;
      })
      .finally(() => this.inFlight.delete(url));
    this.inFlight.set(url, p);
    return p;
  }

  shutdown(): void {
    this.breaker.shutdown();
  }

  /** Resolves with a result, or rejects (a breaker failure) when every attempt failed retryably. */
  private async fetchWithRetries(url: string): Promise<LookupResult> {
    let last = '';
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      if (attempt > 0) {
        this.o.onEvent?.('retry');
        await sleep(backoffDelay(attempt, this.o.backoffMs, this.o.maxBackoffMs));
      }
      const started = Date.now();
      try {
        const r = await this.once(url);
        this.o.onLatency?.(Date.now() - started);
        return r;
      } catch (err) {
        this.o.onLatency?.(Date.now() - started);
        if (!(err instanceof Retryable)) throw err;
        last = err.message;
      }
    }
    throw new Error(`${last} (after ${this.o.retries + 1} attempts)`);
  }

  private async once(url: string): Promise<LookupResult> {
    let res: Response;
    try {
      res = await fetch(url, { headers: { accept: 'application/json', ...this.o.headers }, signal: AbortSignal.timeout(this.o.timeoutMs), redirect: 'error' });
    } catch (err) {
      throw new Retryable((err as Error).name === 'TimeoutError' ? `no answer within ${this.o.timeoutMs} ms` : networkCause(err));
    }
    if (res.status === 404) {
      await res.body?.cancel();
      return { kind: 'not-found' };
    }
    if (res.status === 429 || res.status >= 500) {
      await res.body?.cancel();
      throw new Retryable(`HTTP ${res.status}`);
    }
    if (res.status < 200 || res.status >= 300) {
      await res.body?.cancel();
      return { kind: 'error', error: `HTTP ${res.status}`, permanent: true };
    }
    let text: string;
    try {
      text = await readBounded(res, this.o.maxBodyBytes ?? 1_048_576);
    } catch (err) {
      if (err instanceof BodyTooLarge) return { kind: 'error', error: err.message, permanent: true };
      throw new Retryable(`reading the response failed: ${(err as Error).message}`);
    }
    try {
      return { kind: 'found', body: JSON.parse(text) as unknown };
    } catch {
      return { kind: 'error', error: `the response is not JSON (${printable(text, 60)})`, permanent: true };
    }
  }
}
