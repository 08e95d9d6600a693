// detect: online anomaly detection per series. Each record's value is scored by a detector against
// what its series (the `key` fields) showed before it, with no look-ahead; the record goes on with
// an anomaly score, a flag with hysteresis, and what the detector expected (with a band). Per series
// state (the detector's, the flag's) lives in a changelogged store and survives restarts.
import type { ConfigIssue, KeyValueStore, OperatorContext, OperatorDefinition, OperatorInstance, StreamRecord } from '../kernel/operator.ts';
import { DEFAULT_OUTPUT, compiled, refused } from '../kernel/operator.ts';
import { compileExpression } from '../kernel/expr.ts';
import { recordExtender } from '../kernel/record.ts';
import type { RecordExtender } from '../kernel/record.ts';
import { T_BOOLEAN, T_DOUBLE, extendRecord, nullable, recordTy } from '../kernel/avro-types.ts';
import { generatedSchemaName } from '../kernel/names.ts';
import { SERIES_KEY_SPEC, seriesKeying } from './lib/series.ts';
import type { AvroType } from '../kernel/schema.ts';
import { DETECTORS } from './lib/detectors/index.ts';
import type { Detector, DetectorKind, DetectorParams } from './lib/detectors/index.ts';
import { zOfScore } from './lib/detectors/stats.ts';

export interface DetectConfig {
  value: string;
  key?: string[];
  detector: string;
  threshold?: number;
  clear?: number;
  clear_after: number;
  warmup?: number;
  window?: number;
  half_life?: number;
  season?: number;
  history?: number;
}

/** What the operator keeps per series. */
interface SeriesState {
  /** Values seen. */
  n: number;
  anomalous: boolean;
  /** Consecutive records below the clear level while anomalous. */
  calm: number;
  detector: unknown;
}

const OUTPUT_FIELDS = ['anomaly_score', 'anomalous', 'expected', 'lower', 'upper'] as const;

function detectorList(): string {
  return [...DETECTORS.values()].map((d) => `\`${d.name}\` (${d.summary} Default threshold ${d.defaultThreshold}; state ${d.stateBytes}.)`).join('; ');
}

const DESCRIPTION = `
Scores each record's \`value\` against what its series (the records with the same \`key\` values) showed before it,
one record at a time and with no look-ahead, and sends the record on with five fields added:
\`anomaly_score\` (0 to 1), \`anomalous\` (the flag), and \`expected\`, \`lower\`, \`upper\` (what the detector expected
and the band it would accept at the threshold; null when it has none, e.g. during warm-up). The \`anomalies\` output
has the records flagged anomalous; \`changes\` the records at which the flag turned on or off (an onset, a recovery).

**Detectors** (\`detector\`): ${detectorList()}

**Scores.** The statistical detectors (\`robust_z\`, \`ewma\`, \`seasonal\`) score surprise on a log scale, as
Numenta's HTM log-likelihood: a deviation with probability p under the detector's model scores -log10(p)/10, so 0.3 is
p = 1e-3, 0.5 is p = 1e-5 (about 4.4 standard deviations), 0.9 is p = 1e-9; above 0.9 the scale bends so that scores
stay below 1 and keep their order. \`novelty\` scores how novel the latest stretch is against the most novel one seen
before (0.5: as novel; near 1: far more), and scores 0 for 80 values after a new maximum, so that an anomaly is
reported where it starts; a value past the whole range the series has shown, by more than 5 % of that range, scores
0.5 or more on its own. Its measured quality on the Numenta Anomaly Benchmark is in bench/README.md.

**Flag and hysteresis.** A series becomes anomalous when a score reaches \`threshold\`, and stays anomalous until
\`clear_after\` consecutive scores are below \`clear\`, so a score wavering around the threshold does not flap the flag.

**Warm-up.** The first \`warmup\` values of a series are learned but not scored (score 0, flag off).

**Order and time.** Records are scored in the order they arrive per series (Kafka keeps it per partition; the
input is partitioned by \`key\`); event time plays no part, so nothing is late. A record whose value is null or not a
finite number goes on with score 0, the flag unchanged, and is not learned.

**One parameter set for every series.** Detectors adapt to each series' level and spread; the parameters are the
same for all, and the defaults are the ones measured in bench/README.md.
`.trim();

export const detectOperator: OperatorDefinition<DetectConfig> = {
  type: 'detect',
  category: 'analysis',
  summary: 'Online anomaly detection per series: a score in [0, 1], a flag with hysteresis, the expected value and band.',
  description: DESCRIPTION,
  outputs: [
    { name: DEFAULT_OUTPUT, description: 'Every record, with `anomaly_score`, `anomalous`, `expected`, `lower`, `upper` added.' },
    { name: 'anomalies', description: 'The records flagged anomalous (the same fields).' },
    { name: 'changes', description: 'The records at which the flag turned on or off (`anomalous` tells which): one per onset and one per recovery, to raise and resolve an alert.' },
  ],
  config: {
    value: { kind: 'expression', returns: 'number', description: 'The value to watch, an expression over the record.', examples: ['value', 'bytes_out / 1e6'] },
    key: SERIES_KEY_SPEC,
    detector: { kind: 'enum', values: [...DETECTORS.keys()], default: 'novelty', description: 'Which detector scores the values (see above).' },
    threshold: { kind: 'number', optional: true, min: 0, max: 1, description: "The score at which a series becomes anomalous. Default: the detector's (above).", examples: [0.6] },
    clear: { kind: 'number', optional: true, min: 0, max: 1, description: 'Scores below this count towards clearing the flag. Default: 0.6 x threshold.', examples: [0.3] },
    clear_after: { kind: 'integer', default: 3, min: 1, description: 'Consecutive scores below `clear` that clear the flag.' },
    warmup: { kind: 'integer', optional: true, min: 0, description: "Values of a series learned before it is scored. Default: the detector's (robust_z, ewma 30; seasonal 600; novelty 0, it waits for its own history).", examples: [100] },
    window: { kind: 'integer', optional: true, min: 3, max: 100_000, description: 'robust_z: values in the sliding window (default 64).', examples: [256] },
    half_life: { kind: 'number', optional: true, min: 1, description: 'ewma: half-life of the mean and variance, in values (default 30).', examples: [100] },
    season: { kind: 'integer', optional: true, min: 2, max: 100_000, description: 'seasonal: the season length in values (288 for a day of 5-minute samples). Default: found from the warm-up values.', examples: [288] },
    history: { kind: 'integer', optional: true, min: 64, max: 100_000, description: 'novelty: values of history each new stretch is compared with (default 800; 1 byte of state per value).', examples: [2000] },
  },
  examples: [
    {
      title: 'Anomalies in every CPU series, alerts from the flagged ones',
      yaml: `sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
operators:
  - name: cpu
    type: filter
    where: name == "cpu.utilization"
  - name: cpu-anomalies
    type: detect
    value: value
    key: [host]
sinks:
  - name: scored
    from: cpu-anomalies
    topic: metrics.cpu.scored
  - name: anomalies
    from: cpu-anomalies.anomalies
    topic: metrics.cpu.anomalies
`,
    },
    {
      title: 'A daily season of 5-minute samples, with a stricter threshold',
      yaml: `sources:
  - name: traffic
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
operators:
  - name: requests
    type: detect
    value: value
    detector: seasonal
    season: 288
    threshold: 0.6
sinks:
  - name: out
    from: requests
    topic: metrics.requests.scored
`,
    },
  ],
  compile(config, ctx) {
    const input = ctx.inputs[0]!;
    const issues: ConfigIssue[] = [];
    const kind = DETECTORS.get(config.detector) as DetectorKind;
    const inTy = recordTy(input.schema);
    for (const f of OUTPUT_FIELDS) if (inTy.byName.has(f)) issues.push({ path: ['value'], message: `the input already has a field '${f}', which detect adds: rename it first (a map operator)` });
    for (const [param, given] of [['window', config.window], ['half_life', config.half_life], ['season', config.season], ['history', config.history]] as const)
      if (given !== undefined && !kind.params.includes(param)) issues.push({ path: [param], message: `'${param}' does not apply to detector ${kind.name}${kind.params.length > 0 ? ` (it reads: ${kind.params.join(', ')})` : ''}` });
    const threshold = config.threshold ?? kind.defaultThreshold;
    const clear = config.clear ?? 0.6 * threshold;
    if (clear > threshold) issues.push({ path: ['clear'], message: `clear (${clear}) must not be above threshold (${threshold})` });
    const params: DetectorParams = { window: config.window ?? 64, halfLife: config.half_life ?? 30, history: config.history ?? 800, warmup: config.warmup ?? kind.defaultWarmup, ...(config.season !== undefined ? { season: config.season } : {}) };
    for (const m of kind.check?.(params) ?? []) issues.push({ path: ['detector'], message: m });
    const series = seriesKeying(config.key, input);
    if (issues.length > 0) return refused(issues);
    const value = compileExpression(config.value, input.schema).evaluate;
    const detector = kind.create(params);
    const schema = extendRecord(
      generatedSchemaName(ctx.name),
      input.schema,
      [
        { name: 'anomaly_score', ty: T_DOUBLE, doc: `Anomaly score of the value (detector ${kind.name}), 0 to 1.` },
        { name: 'anomalous', ty: T_BOOLEAN, doc: `Whether the series is flagged anomalous (on at ${threshold}, off after ${config.clear_after} scores below ${clear}).` },
        { name: 'expected', ty: nullable(T_DOUBLE), doc: 'The value the detector expected; null when it has none.' },
        { name: 'lower', ty: nullable(T_DOUBLE), doc: 'Lower end of the band accepted at the threshold; null when none.' },
        { name: 'upper', ty: nullable(T_DOUBLE), doc: 'Upper end of the band accepted at the threshold; null when none.' },
      ],
      `Output of detect '${ctx.name}': the input, scored.`,
    );
    const state: AvroType = {
      type: 'record',
      name: 'DetectSeries',
      namespace: 'vigil.state',
      fields: [
        { name: 'n', type: 'long' },
        { name: 'anomalous', type: 'boolean' },
        { name: 'calm', type: 'int' },
        { name: 'detector', type: detector.state },
      ],
    };
    const settings: Settings = { value, seriesOf: series.seriesOf, detector, extend: recordExtender(inTy.fields.map((f) => f.name), OUTPUT_FIELDS), threshold, clear, clearAfter: config.clear_after, warmup: params.warmup, bandZ: zOfScore(threshold) };
    return compiled({
      outputs: series.outputs([DEFAULT_OUTPUT, 'anomalies', 'changes'], schema),
      ...series.partitionBy,
      stores: [
        {
          name: 'series',
          kind: 'kv',
          value: state,
          ...(detector.toAvro !== undefined && detector.fromAvro !== undefined
            ? {
                codec: {
                  toAvro: (v: unknown) => ({ ...(v as SeriesState), detector: detector.toAvro!((v as SeriesState).detector) }),
                  fromAvro: (v: unknown) => ({ ...(v as SeriesState), detector: detector.fromAvro!((v as SeriesState).detector) }),
                },
              }
            : {}),
        },
      ],
      create: () => new DetectInstance(settings),
    });
  },
};

interface Settings {
  value: (v: Record<string, unknown>) => unknown;
  seriesOf: (value: Record<string, unknown>) => string;
  detector: Detector;
  extend: RecordExtender;
  threshold: number;
  clear: number;
  clearAfter: number;
  warmup: number;
  bandZ: number;
}

class DetectInstance implements OperatorInstance {
  private series!: KeyValueStore<SeriesState>;

  constructor(private readonly s: Settings) {}

  open(ctx: OperatorContext): void {
    this.series = ctx.kv<SeriesState>('series');
  }

  process(record: StreamRecord, ctx: OperatorContext): void {
    const s = this.s;
    const key = s.seriesOf(record.value);
    let st = this.series.get(key);
    if (st === undefined) st = { n: 0, anomalous: false, calm: 0, detector: s.detector.init() };
    const raw = s.value(record.value);
    const x = typeof raw === 'number' ? raw : typeof raw === 'bigint' ? Number(raw) : Number.NaN;
    let score = 0;
    let expected: number | null = null;
    let lower: number | null = null;
    let upper: number | null = null;
    const was = st.anomalous;
    if (Number.isFinite(x)) {
      const a = s.detector.step(st.detector, x, s.bandZ);
      st.n++;
      if (st.n > s.warmup) {
        score = a.score;
        expected = a.expected;
        lower = a.lower;
        upper = a.upper;
      }
      if (score >= s.threshold) {
        if (!st.anomalous) ctx.count('anomalies');
        st.anomalous = true;
        st.calm = 0;
      } else if (st.anomalous) {
        st.calm = score < s.clear ? st.calm + 1 : 0;
        if (st.calm >= s.clearAfter) {
          st.anomalous = false;
          st.calm = 0;
        }
      }
      this.series.put(key, st);
    } else ctx.count('not-a-number');
    const out: StreamRecord = {
      key: record.key,
      value: s.extend(record.value, [score, st.anomalous, expected, lower, upper]),
      timestamp: record.timestamp,
      ...(record.headers ? { headers: record.headers } : {}),
    };
    ctx.forward(out);
    if (st.anomalous) ctx.emit('anomalies', out);
    if (st.anomalous !== was) ctx.emit('changes', out);
  }
}
