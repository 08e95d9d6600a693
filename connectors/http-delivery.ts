// Guarded HTTP POSTs for receivers (webhook, Slack, PagerDuty, Alertmanager): a cap on requests in
// flight (p-limit), a timeout per attempt, retries with exponential backoff and full jitter (a
// Retry-After is honoured) until the attempt budget in time runs out, and a circuit breaker
// (opossum) per receiver so that a dead receiver is probed now and then instead of hammered. A
// permanent refusal (a 4xx other than 408, 425 and 429; a redirect) is not retried. Messages name
// the status and the receiver's own words, never the URL or the headers: both may hold secrets.
import type CircuitBreaker from 'opossum';
import pLimit from 'p-limit';
import { Retryable, backoffDelay, breakerState, circuitBreaker, isBreakerOpen, networkCause, printable, readBounded, sleep } from './http-guard.ts';
import type { BreakerOptions } from './http-guard.ts';

export interface DeliveryOptions {
  /** How long one attempt may take. */
  timeoutMs: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** No new attempt starts this long after the first one: the delivery has failed. */
  giveUpAfterMs: number;
  /** Requests in flight at most. */
  concurrency: number;
  breaker: BreakerOptions;
  /** Counters (delivered, retry, failed, refused, breaker-*) and latencies, for metrics. */
  onEvent?(event: string): void;
  onLatency?(ms: number): void;
}

export interface DeliveryRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export type DeliveryResult =
  | { kind: 'delivered'; status: number; attempts: number }
  /** permanent: the receiver refused the request; else every attempt within the budget failed. */
  | { kind: 'failed'; error: string; permanent: boolean; attempts: number }
  /** The delivery was cut short by shutdown(): neither delivered nor failed. */
  | { kind: 'aborted' };

/** A retryable failure that asks for a delay (Retry-After). */
class RetryLater extends Retryable {
  constructor(
    message: string,
    readonly afterMs: number,
  ) {
    super(message);
  }
}

/** Statuses worth another attempt besides 5xx: request timeout, too early, too many requests. */
const RETRYABLE_4XX = new Set([408, 425, 429]);

export class HttpDelivery {
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly breaker: CircuitBreaker<[DeliveryRequest], number>;
  private readonly stop = new AbortController();

  constructor(private readonly o: DeliveryOptions) {
    this.limit = pLimit(o.concurrency);
    this.breaker = circuitBreaker((req: DeliveryRequest) => this.once(req), o.breaker, o.onEvent, (err) => err instanceof Refused);
  }

  get breakerState(): 'closed' | 'half-open' | 'open' {
    return breakerState(this.breaker);
  }

  /** POSTs `req` until it is delivered, refused, out of time, or shut down. Never rejects. */
  send(req: DeliveryRequest): Promise<DeliveryResult> {
    return this.limit(() => this.attempts(req));
  }

  /** Cuts every delivery short (their results are 'aborted'): the task is closing. */
  shutdown(): void {
    this.stop.abort();
    this.breaker.shutdown();
  }

  private async attempts(req: DeliveryRequest): Promise<DeliveryResult> {
    const started = Date.now();
    /** The receiver's last failure (not the breaker's refusals to call it). */
    let cause = '';
    let open = false;
    for (let attempt = 1; ; attempt++) {
      if (this.stop.signal.aborted) return { kind: 'aborted' };
      const t0 = Date.now();
      let delay: number;
      try {
        const status = await this.breaker.fire(req);
        this.o.onEvent?.('delivered');
        return { kind: 'delivered', status, attempts: attempt };
      } catch (err) {
        if (this.stop.signal.aborted) return { kind: 'aborted' };
        if (err instanceof Refused) {
          this.o.onEvent?.('refused');
          return { kind: 'failed', error: err.message, permanent: true, attempts: attempt };
        }
        open = isBreakerOpen(err);
        if (!open) cause = (err as Error).message;
        delay = backoffDelay(attempt, this.o.backoffMs, this.o.maxBackoffMs);
        if (err instanceof RetryLater) delay = Math.max(delay, Math.min(err.afterMs, this.o.maxBackoffMs));
      } finally {
        this.o.onLatency?.(Date.now() - t0);
      }
      if (Date.now() + delay - started >= this.o.giveUpAfterMs) {
        this.o.onEvent?.('failed');
        const secs = Math.round((Date.now() - started) / 1000);
        const error = `${cause || 'the circuit breaker stayed open'} (${attempt} attempt${attempt === 1 ? '' : 's'} in ${secs} s${open && cause ? '; the circuit breaker is open' : ''})`;
        return { kind: 'failed', error, permanent: false, attempts: attempt };
      }
      this.o.onEvent?.('retry');
      if (!(await sleep(delay, this.stop.signal))) return { kind: 'aborted' };
    }
  }

  /** One attempt: the status when 2xx; throws Refused (permanent) or Retryable. */
  private async once(req: DeliveryRequest): Promise<number> {
    let res: Response;
    try {
      res = await fetch(req.url, {
        method: 'POST',
        headers: { 'user-agent': 'Vigil', ...req.headers },
        body: req.body,
        signal: AbortSignal.any([AbortSignal.timeout(this.o.timeoutMs), this.stop.signal]),
        redirect: 'manual',
      });
    } catch (err) {
      throw new Retryable((err as Error).name === 'TimeoutError' ? `no answer within ${this.o.timeoutMs} ms` : networkCause(err));
    }
    if (res.status >= 200 && res.status < 300) {
      await res.body?.cancel();
      return res.status;
    }
    let said = '';
    try {
      said = printable((await readBounded(res, 4096)).trim());
    } catch {
      // the status says enough
    }
    const why = `HTTP ${res.status}${said ? `: ${said}` : ''}`;
    if (res.status >= 500 || RETRYABLE_4XX.has(res.status)) {
      const after = retryAfterMs(res.headers.get('retry-after'));
      throw after === undefined ? new Retryable(why) : new RetryLater(why, after);
    }
    if (res.status >= 300 && res.status < 400) throw new Refused(`${why} (a redirect: receivers' redirects are not followed)`);
    throw new Refused(why);
  }
}

/** A permanent refusal: the receiver answered, so the breaker does not count it as a failure. */
class Refused extends Error {}

/** Retry-After as ms: delta-seconds or an HTTP date. */
export function retryAfterMs(v: string | null, now = Date.now()): number | undefined {
  if (v === null || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
