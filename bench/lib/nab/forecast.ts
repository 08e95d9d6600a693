// Forecast error of the predict operator on NAB's realAWSCloudwatch series (5-minute samples of CPU,
// disk, network, request counts): each fit predicts each sample's value some horizons ahead from
// the window before it, through the operator (a topology replayed by the backtest runner), and the
// prediction is compared with the value actually recorded then. MAPE = mean of |actual - predicted|
// / |actual| over the samples whose actual value is not 0; beside it the same for the naive
// forecast (the value stays as it is), which says whether a trend helps at all. MAPE is dominated by
// the samples whose actual value is near 0 (idle CPUs, quiet disks), so the median absolute
// percentage error (MdAPE) and the symmetric one (sMAPE: |a - p| / ((|a| + |p|) / 2)) are given too.
import { join } from 'node:path';
import { operatorRegistry } from '../../../operators/registry.ts';
import { runBacktest } from '../../../runtime/backtest.ts';
import { parseTopology } from '../../../topology/loader.ts';
import { planTopology } from '../../../topology/plan.ts';
import type { NabCorpus } from './corpus.ts';

export const FORECAST_FITS = ['linear', 'polynomial', 'robust', 'exponential'] as const;
export const FORECAST_HORIZONS_MIN = [5, 30, 60] as const;
/** The window each fit sees: the last 24 samples (two hours). */
export const FORECAST_POINTS = 24;

export interface ForecastRow {
  fit: (typeof FORECAST_FITS)[number] | 'naive (last value)';
  /** Per horizon, in the order of FORECAST_HORIZONS_MIN: MAPE, MdAPE and sMAPE (%). */
  mape: number[];
  mdape: number[];
  smape: number[];
  /** Samples compared per horizon. */
  samples: number[];
}

function topology(): string {
  const ops: string[] = [];
  const sinks: string[] = [];
  for (const fit of FORECAST_FITS)
    for (const h of FORECAST_HORIZONS_MIN) {
      const name = `${fit}-${h}m`;
      ops.push(`  - { name: ${name}, type: predict, from: nab, value: value, fit: ${fit}, points: ${FORECAST_POINTS}, min_points: ${FORECAST_POINTS}, horizon: ${h}m }`);
      sinks.push(`  - { name: out-${name}, from: ${name}, topic: ${name} }`);
    }
  return `version: 1
name: nab-forecast
sources:
  - { name: nab, topic: nab, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp }
operators:
${ops.join('\n')}
sinks:
${sinks.join('\n')}
`;
}

/** Runs every fit over the category's files and returns MAPE per fit and horizon. */
export async function runForecast(corpus: NabCorpus, category = 'realAWSCloudwatch'): Promise<ForecastRow[]> {
  const plan = planTopology(parseTopology(topology(), 'nab-forecast.yaml', { operators: operatorRegistry }));
  const errors = new Map<string, Array<{ ape: number[]; sape: number[] }>>();
  const acc = (fit: string, hi: number, actual: number, predicted: number) => {
    if (actual === 0 || !Number.isFinite(predicted)) return;
    let e = errors.get(fit);
    if (!e) errors.set(fit, (e = FORECAST_HORIZONS_MIN.map(() => ({ ape: [], sape: [] }))));
    const d = Math.abs(actual - predicted);
    e[hi]!.ape.push(d / Math.abs(actual));
    e[hi]!.sape.push(d / ((Math.abs(actual) + Math.abs(predicted)) / 2));
  };
  for (const f of corpus.files.filter((x) => x.category === category)) {
    // The value recorded at each time (the first row, where a clock change repeats one).
    const at = new Map<number, number>();
    f.times.forEach((t, i) => {
      if (!at.has(t)) at.set(t, f.values[i]!);
    });
    const rowsSeen = new Map<string, number>();
    await runBacktest(plan, {
      inputs: [{ source: 'nab', file: join(corpus.dir, 'data', f.path), mapping: { constants: { name: 'nab', host: f.path } } }],
      listener: {
        sink(sink, r) {
          const p = (r.value as { predicted: number | null }).predicted;
          const [fit, hm] = sink.slice('out-'.length).split(/-(?=\d+m$)/) as [string, string];
          const hi = FORECAST_HORIZONS_MIN.indexOf(Number(hm.slice(0, -1)) as (typeof FORECAST_HORIZONS_MIN)[number]);
          const row = rowsSeen.get(sink) ?? 0;
          rowsSeen.set(sink, row + 1);
          const actual = at.get(r.timestamp + FORECAST_HORIZONS_MIN[hi]! * 60_000);
          if (p === null || actual === undefined) return;
          acc(fit, hi, actual, p);
          // The naive forecast, once per horizon (from the linear operator's records: the same rows).
          if (fit === 'linear' && row >= FORECAST_POINTS - 1) acc('naive (last value)', hi, actual, f.values[row]!);
        },
      },
    });
  }
  const mean = (a: number[]) => (a.length === 0 ? Number.NaN : (100 * a.reduce((x, y) => x + y, 0)) / a.length);
  const med = (a: number[]) => {
    if (a.length === 0) return Number.NaN;
    const s2 = Float64Array.from(a).sort();
    return (100 * (s2[(s2.length - 1) >> 1]! + s2[s2.length >> 1]!)) / 2;
  };
  return [...FORECAST_FITS, 'naive (last value)' as const].map((fit) => {
    const e = errors.get(fit) ?? FORECAST_HORIZONS_MIN.map(() => ({ ape: [], sape: [] }));
    return { fit, mape: e.map((h) => mean(h.ape)), mdape: e.map((h) => med(h.ape)), smape: e.map((h) => mean(h.sape)), samples: e.map((h) => h.ape.length) };
  });
}

export function forecastMarkdown(rows: ForecastRow[], category = 'realAWSCloudwatch'): string {
  const pct = (m: number) => (Number.isFinite(m) ? m.toFixed(1) : '–');
  const cols = (name: string) => FORECAST_HORIZONS_MIN.map((h) => `${name} ${h} min`).join(' | ');
  const out = [
    `Forecast error on NAB's ${category} series (5-minute samples), each fit over the last ${FORECAST_POINTS} samples, in % at each horizon:`,
    '',
    `| fit | ${cols('MAPE')} | ${cols('MdAPE')} | ${cols('sMAPE')} | samples |`,
    `| --- | ${[...FORECAST_HORIZONS_MIN, ...FORECAST_HORIZONS_MIN, ...FORECAST_HORIZONS_MIN].map(() => '---:').join(' | ')} | ---: |`,
    ...rows.map((r) => `| ${r.fit} | ${[...r.mape, ...r.mdape, ...r.smape].map(pct).join(' | ')} | ${r.samples[0]!.toLocaleString('en-US')} |`),
  ];
  return `${out.join('\n')}\n`;
}
