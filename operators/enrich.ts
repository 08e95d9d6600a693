// enrich: adds fields from an HTTP service's JSON answer to each record (look the IP up in the
// asset service), with a cache, a concurrency cap, retries, a circuit breaker and a failure
// policy. Lookups run concurrently across keys; records of one key keep their order; the task
// commits no offset before the lookups of what it covers are done.
import type { ConfigIssue, OperatorContext, OperatorDefinition, OperatorInstance, StreamRecord } from '../kernel/operator.ts';
import { DEFAULT_OUTPUT, compiled, refused } from '../kernel/operator.ts';
import { compileExpressionAt } from '../kernel/expr.ts';
import type { CompiledExpression } from '../kernel/expr.ts';
import { describeTy, extendRecord, fits, nullable, recordTy, T_STRING, unify } from '../kernel/avro-types.ts';
import type { RecordTy } from '../kernel/avro-types.ts';
import { JsonShapeError, jsonAsAvro } from '../kernel/json-avro.ts';
import { computedFields } from './lib/fields.ts';
import { TemplateError, parseTemplate, renderTemplate } from './lib/template.ts';
import type { Template } from './lib/template.ts';
import type { ComputedField } from './lib/fields.ts';
import { generatedSchemaName } from '../kernel/names.ts';
import { recordExtender } from '../kernel/record.ts';
import type { RecordExtender } from '../kernel/record.ts';
import { HttpLookup } from '../connectors/http-lookup.ts';
import type { HttpLookupOptions, LookupResult } from '../connectors/http-lookup.ts';

export interface EnrichConfig {
  url: string;
  headers?: Record<string, string>;
  response: string;
  as: string;
  fields: Record<string, string>;
  on_error: 'dead_letter' | 'default' | 'pass';
  defaults?: Record<string, string>;
  error_field: string;
  timeout: number;
  retries: number;
  backoff: number;
  max_backoff: number;
  concurrency: number;
  cache: { ttl: number; negative_ttl: number; max_entries: number };
  circuit_breaker: { error_percentage: number; min_requests: number; reset: number };
}

type Ev = (v: Record<string, unknown>) => unknown;

const DESCRIPTION = `
Calls an HTTP service for each record (GET on \`url\`, whose \`{expression}\` placeholders are filled from the record
and URL-encoded) and adds the \`fields\` computed from the JSON answer, read as the \`response\` schema (an Avro record:
fields it does not name are ignored, missing ones take their defaults). In \`fields\` the answer is \`response\`
(rename it with \`as\`), null when the service answered 404; the input record's fields are there too. The host of the
URL must be in the topology's \`allowed_hosts\`; header values may take allowlisted environment variables
(\`Authorization: "Bearer \${ASSET_TOKEN}"\`).

**Guarded calls.** Answers are cached (an LRU of \`cache.max_entries\` for \`cache.ttl\`; a 404 for
\`cache.negative_ttl\`), and one request per URL is in flight at a time. At most \`concurrency\` requests run at once
(per task). A request that does not answer within \`timeout\`, a connection error, a 429 or a 5xx is retried
\`retries\` times with exponential backoff (from \`backoff\`, at most \`max_backoff\`, with full jitter). A circuit breaker
opens when more than \`circuit_breaker.error_percentage\` of the last 10 s of calls (at least \`min_requests\`) failed:
calls then fail at once, and after \`circuit_breaker.reset\` one call probes the service.

**Ordering and commits.** Lookups of different keys run concurrently; records of one key (the record key) come out
in their input order. The task commits no input offset before the lookups of what it covers are done, so a crash
loses nothing (lookups are repeated). The operator holds its watermark back while lookups are pending.

**On failure** (retries exhausted, breaker open, a 4xx other than 404 and 429, an answer that is not JSON or does not
fit \`response\`, a null placeholder): \`dead_letter\` (default) sends the record to the dead-letter topic with reason
\`enrich-error\` and the cause; \`default\` fills the fields from \`defaults\` (expressions over the input); \`pass\`
forwards the record with the fields null and the cause in \`error_field\`.

**Metrics.** \`vigil_operator_events_total\` with event cache-hit, cache-miss, retry, error, breaker-open,
breaker-rejected; \`vigil_operator_duration_seconds{what="lookup"}\` per HTTP call; \`vigil_operator_state{name="breaker"}\`
(0 closed, 1 half-open, 2 open).
`.trim();

export const enrichOperator: OperatorDefinition<EnrichConfig> = {
  type: 'enrich',
  category: 'processing',
  summary: 'Adds fields from an HTTP service\'s JSON answer to each record: cached, concurrent across keys, retried, behind a circuit breaker.',
  description: DESCRIPTION,
  config: {
    url: { kind: 'url', description: 'The URL to GET: http(s), a host of `allowed_hosts`, `{expression}` placeholders after the host.', examples: ['https://assets.internal/api/hosts/{host}'] },
    headers: {
      kind: 'map',
      optional: true,
      items: { kind: 'string', freeText: true, description: 'A header value.' },
      description: 'Request headers, e.g. an authorization from an allowlisted environment variable.',
      examples: [{ Authorization: 'Bearer ${ASSET_TOKEN}' }],
    },
    response: { kind: 'schema', description: 'Fullname of the record schema the JSON answer is read as.', examples: ['vigil.inventory.Entity'] },
    as: { kind: 'string', default: 'response', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'The name of the answer in `fields`.' },
    fields: {
      kind: 'map',
      min: 1,
      items: { kind: 'string', freeText: true, description: 'An expression over `response` and the input record.' },
      description: 'Output field name -> expression over `response` (null after a 404) and the input\'s fields.',
      examples: [{ owner: 'response.team ?? "unowned"', tier: 'response.tier' }],
    },
    on_error: {
      kind: 'enum',
      values: ['dead_letter', 'default', 'pass'],
      default: 'dead_letter',
      description: 'When a lookup fails: dead_letter the record, fill the fields from `defaults`, or pass it on with the fields null and the cause in `error_field`.',
    },
    defaults: { kind: 'map', optional: true, items: { kind: 'expression', description: 'Expression over the input record.' }, description: 'With on_error: default, an expression over the input per field of `fields`.' },
    error_field: { kind: 'string', default: 'enrich_error', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'With on_error: pass, the field (nullable string) that holds the cause.' },
    timeout: { kind: 'duration', default: '2s', min: 1, max: 600_000, description: 'How long one request may take.' },
    retries: { kind: 'integer', default: 2, min: 0, max: 100, description: 'Retries of a request that failed retryably (timeout, connection error, 429, 5xx).' },
    backoff: { kind: 'duration', default: '100ms', min: 1, description: 'First retry delay (doubles per retry, with full jitter).' },
    max_backoff: { kind: 'duration', default: '5s', min: 1, description: 'Longest retry delay.' },
    concurrency: { kind: 'integer', default: 16, min: 1, max: 1000, description: 'Requests in flight at most, per task.' },
    cache: {
      kind: 'object',
      default: {},
      description: 'The answer cache.',
      fields: {
        ttl: { kind: 'duration', default: '5m', description: 'How long an answer is reused (0: not cached).' },
        negative_ttl: { kind: 'duration', default: '30s', description: 'How long a 404 is reused.' },
        max_entries: { kind: 'integer', default: 10_000, min: 1, max: 10_000_000, description: 'Answers kept at most (least recently used go first).' },
      },
    },
    circuit_breaker: {
      kind: 'object',
      default: {},
      description: 'When to stop calling a failing service for a while.',
      fields: {
        error_percentage: { kind: 'integer', default: 50, min: 1, max: 100, description: 'Open when more than this percentage of the last 10 s of calls failed...' },
        min_requests: { kind: 'integer', default: 10, min: 1, description: '...and there were at least this many.' },
        reset: { kind: 'duration', default: '30s', min: 1, description: 'How long it stays open before one call probes the service.' },
      },
    },
  },
  examples: [
    {
      title: 'The owning team of the host from an asset service',
      yaml: `allowed_hosts: [assets.internal]
sources:
  - name: alerts
    topic: alerts
    schema: vigil.alerting.Alert
    key: [entity]
operators:
  - name: owner
    type: enrich
    url: https://assets.internal/api/entities/{entity}
    response: vigil.inventory.Entity
    fields:
      team: response.team ?? "unowned"
      tier: response.tier ?? "unknown"
    on_error: pass
    cache: { ttl: 10m }
`,
    },
  ],
  compile(config, ctx) {
    const input = ctx.inputs[0]!;
    const issues: ConfigIssue[] = [];
    const responseSchema = ctx.resolveSchema(config.response);
    if (responseSchema === undefined) return refused([{ path: ['response'], code: 'UNKNOWN_SCHEMA', message: `unknown schema '${config.response}'` }]);
    const inTy = recordTy(input.schema);
    if (inTy.byName.has(config.as)) issues.push({ path: ['as'], message: `the input has a field '${config.as}': name the answer otherwise with 'as'` });
    const template = parseTemplate(config.url, input.schema, ['url'], 'the URL template', issues);
    const responseTy = recordTy(responseSchema);
    const view = extendRecord('vigil.enrich.View', input.schema, [{ name: config.as, ty: nullable(responseTy) }]);
    const added: Array<ComputedField & { def?: Ev }> = computedFields(config.fields, view, issues, (name) =>
      inTy.byName.has(name) ? `the input already has a field '${name}': choose another name` : undefined,
    );
    const defaults = config.defaults ?? {};
    if (config.on_error === 'default')
      for (const f of added) {
        if (!Object.hasOwn(defaults, f.name)) {
          issues.push({ path: ['defaults'], code: 'MISSING_FIELD', message: `on_error: default needs a default for '${f.name}'` });
          continue;
        }
        const d: CompiledExpression | undefined = compileExpressionAt(defaults[f.name]!, input.schema, ['defaults', f.name], issues);
        if (d === undefined) continue;
        const ty = unify(f.ty, d.ty);
        if (ty === undefined || fits(d.ty, ty) !== undefined) {
          issues.push({ path: ['defaults', f.name], code: 'EXPR_TYPE', offset: 0, message: `the default of '${f.name}' is ${describeTy(d.ty)}, but the field is ${describeTy(f.ty)}` });
          continue;
        }
        f.ty = ty;
        f.def = d.evaluate;
      }
    for (const name of Object.keys(defaults))
      if (config.on_error !== 'default') issues.push({ path: ['defaults', name], at: 'key', message: "'defaults' only applies with on_error: default" });
    if (config.on_error === 'pass' && (inTy.byName.has(config.error_field) || Object.hasOwn(config.fields, config.error_field)))
      issues.push({ path: ['error_field'], message: `'${config.error_field}' is already a field: choose another error_field` });
    if (issues.length > 0 || template === undefined) return refused(issues);

    const extra = added.map((f) => ({ name: f.name, ty: config.on_error === 'pass' ? nullable(f.ty) : f.ty, doc: `From ${config.url}: ${config.fields[f.name]}.` }));
    if (config.on_error === 'pass') extra.push({ name: config.error_field, ty: nullable(T_STRING), doc: 'Why the lookup failed (null when it did not).' });
    const schema = extendRecord(generatedSchemaName(ctx.name), input.schema, extra, `Output of enrich '${ctx.name}': the input with fields from ${config.url}.`);
    const http: Omit<HttpLookupOptions, 'onEvent' | 'onLatency'> = {
      timeoutMs: config.timeout,
      retries: config.retries,
      backoffMs: config.backoff,
      maxBackoffMs: config.max_backoff,
      concurrency: config.concurrency,
      cache: { ttlMs: config.cache.ttl, negativeTtlMs: config.cache.negative_ttl, maxEntries: config.cache.max_entries },
      breaker: { errorPercentage: config.circuit_breaker.error_percentage, minRequests: config.circuit_breaker.min_requests, resetMs: config.circuit_breaker.reset },
      ...(config.headers !== undefined ? { headers: config.headers } : {}),
    };
    const inputFields = recordTy(input.schema).fields.map((f) => f.name);
    const settings: Settings = {
      template,
      http,
      responseTy,
      added,
      onError: config.on_error,
      cacheOff: config.cache.ttl === 0,
      view: recordExtender(inputFields, [config.as]),
      output: recordExtender(inputFields, [...added.map((f) => f.name), ...(config.on_error === 'pass' ? [config.error_field] : [])]),
    };
    return compiled({
      outputs: [{ name: DEFAULT_OUTPUT, schema, keyFields: input.keyFields }],
      create: () => new EnrichInstance(settings),
    });
  },
};

interface Settings {
  template: Template;
  http: Omit<HttpLookupOptions, 'onEvent' | 'onLatency'>;
  responseTy: RecordTy;
  added: Array<{ name: string; ev: Ev; def?: Ev }>;
  onError: EnrichConfig['on_error'];
  cacheOff: boolean;
  /** The record with the answer under `as` (what `fields` read). */
  view: RecordExtender;
  /** The output: the record, the added fields, then (on_error: pass) the error field. */
  output: RecordExtender;
}

const BREAKER_STATE = { closed: 0, 'half-open': 1, open: 2 } as const;

class EnrichInstance implements OperatorInstance {
  private http!: HttpLookup;
  /** Per record key: the lookup of its latest record, so that the next one waits for it. */
  private readonly tails = new Map<string, Promise<unknown>>();
  /** Records waiting for their lookup (the watermark is held at the earliest). */
  private readonly waiting = new Map<StreamRecord, number>();

  constructor(private readonly s: Settings) {}

  open(ctx: OperatorContext): void {
    this.http = new HttpLookup({
      ...this.s.http,
      onEvent: (e) => {
        ctx.count(e);
        if (e.startsWith('breaker-') && e !== 'breaker-rejected') ctx.gauge('breaker', BREAKER_STATE[this.http.breakerState]);
      },
      onLatency: (ms) => ctx.observe('lookup', ms / 1000),
    });
    ctx.gauge('breaker', 0);
  }

  process(record: StreamRecord, ctx: OperatorContext): void {
    let url: string;
    try {
      url = renderTemplate(this.s.template, record.value, encodeURIComponent);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      this.finish(record, { kind: 'error', error: err.message, permanent: true }, ctx);
      return;
    }
    const key = record.key ?? url;
    const tail = this.tails.get(key);
    if (tail === undefined && !this.s.cacheOff) {
      const hit = this.http.cached(url);
      if (hit !== undefined) {
        this.finish(record, hit, ctx);
        return;
      }
    }
    const work = (tail ?? Promise.resolve()).then(() => this.http.lookup(url));
    this.waiting.set(record, record.timestamp);
    // Registered before the next record of this key chains on `work`: this record comes out first.
    ctx.defer(work, (result, c) => {
      this.waiting.delete(record);
      this.finish(record, result, c);
    });
    const settled = work.then(
      () => undefined,
      () => this.waiting.delete(record),
    );
    this.tails.set(key, settled);
    void settled.then(() => {
      if (this.tails.get(key) === settled) this.tails.delete(key);
    });
  }

  /** Records still waiting for their lookup come out later with their own timestamps: hold the watermark at the earliest. */
  onWatermark(watermark: number): number {
    let min = watermark;
    for (const t of this.waiting.values()) if (t < min) min = t;
    return min;
  }

  private finish(record: StreamRecord, r: LookupResult, ctx: OperatorContext): void {
    let response: unknown = null;
    let error: string | undefined;
    if (r.kind === 'found') {
      try {
        response = jsonAsAvro(this.s.responseTy, r.body);
      } catch (err) {
        if (!(err instanceof JsonShapeError)) throw err;
        error = `the answer does not fit the response schema: ${err.message}`;
      }
    } else if (r.kind === 'error') error = r.error;
    const added = this.s.added;
    const values: unknown[] = [];
    if (error === undefined) {
      const view = this.s.view(record.value, [response]);
      for (let i = 0; i < added.length; i++) values.push(added[i]!.ev(view));
      if (this.s.onError === 'pass') values.push(null);
    } else {
      ctx.count('failed');
      if (this.s.onError === 'dead_letter') {
        ctx.deadLetter('enrich-error', error);
        return;
      }
      for (let i = 0; i < added.length; i++) values.push(this.s.onError === 'default' ? added[i]!.def!(record.value) : null);
      if (this.s.onError === 'pass') values.push(error);
    }
    ctx.forward({ key: record.key, value: this.s.output(record.value, values), timestamp: record.timestamp, ...(record.headers ? { headers: record.headers } : {}) });
  }

  close(): void {
    this.http?.shutdown();
  }
}
