// `vigil bench nab`: each detector of the detect operator over the NAB corpus, through the same
// code a deployment runs (a topology with one detect operator, replayed in-process by the backtest
// runner, one file at a time, event time from the file), results written in NAB's own layout and
// scored from what was written. Each detector is scored twice: its anomaly score on every record,
// and as the alerts it raises (`<detector>-onsets`: the score at the records where the flag turns
// on, the `changes` output, 0 elsewhere), since NAB counts every flagged record of a lasting
// deviation as a false positive but an alert is raised once.
import { join } from 'node:path';
import { DETECTORS } from '../../../operators/lib/detectors/index.ts';
import { operatorRegistry } from '../../../operators/registry.ts';
import { runBacktest } from '../../../runtime/backtest.ts';
import { parseTopology } from '../../../topology/loader.ts';
import { planTopology } from '../../../topology/plan.ts';
import type { NabCorpus } from './corpus.ts';
import { writeResults } from './corpus.ts';
import type { DetectorScores } from './report.ts';
import { scoreResultsDir } from './report.ts';

/** The topology each detector runs in: NAB rows as metric samples of one series per file. */
export function nabTopology(detector: string): string {
  return `version: 1
name: nab-${detector.replace(/_/g, '-')}
sources:
  - name: nab
    topic: nab
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
operators:
  - name: detect
    type: detect
    value: value
    detector: ${detector}
sinks:
  - name: scores
    from: detect
    topic: scores
`;
}

export interface NabRun {
  detector: string;
  /** Records through the operator per second of the whole run (reading, detecting, writing). */
  recordsPerSec: number;
  seconds: number;
}

/** Runs one detector over every file of the corpus and writes its results under `outDir/<detector>/`. */
export async function runDetector(corpus: NabCorpus, detector: string, outDir: string, onFile?: (path: string) => void): Promise<NabRun> {
  const plan = planTopology(parseTopology(nabTopology(detector), `nab-${detector}.yaml`, { operators: operatorRegistry }));
  const started = performance.now();
  let rows = 0;
  for (const f of corpus.files) {
    const scores: number[] = [];
    const onsets: number[] = [];
    let flagged = false;
    const s = await runBacktest(plan, {
      inputs: [{ source: 'nab', file: join(corpus.dir, 'data', f.path), mapping: { constants: { name: 'nab', host: f.path } } }],
      listener: {
        sink: (_sink, r) => {
          const v = r.value as { anomaly_score: number; anomalous: boolean };
          scores.push(v.anomaly_score);
          onsets.push(v.anomalous && !flagged ? v.anomaly_score : 0);
          flagged = v.anomalous;
        },
      },
    });
    const dead = Object.entries(s.deadLetters);
    if (dead.length > 0) throw new Error(`${f.path}: ${detector} dead-lettered records (${dead.map(([k, n]) => `${k}: ${n}`).join(', ')})`);
    if (scores.length !== f.times.length) throw new Error(`${f.path}: ${scores.length} scores for ${f.times.length} rows`);
    writeResults(outDir, detector, f, scores);
    writeResults(outDir, `${detector}-onsets`, f, onsets);
    rows += scores.length;
    onFile?.(f.path);
  }
  const seconds = (performance.now() - started) / 1000;
  return { detector, recordsPerSec: rows / seconds, seconds };
}

/** Runs the detectors, then scores what they wrote (swept, and at each detector's default threshold). */
export async function runNab(corpus: NabCorpus, detectors: string[], outDir: string, onFile?: (detector: string, path: string) => void): Promise<{ runs: NabRun[]; scores: DetectorScores[] }> {
  const runs: NabRun[] = [];
  for (const d of detectors) runs.push(await runDetector(corpus, d, outDir, (p) => onFile?.(d, p)));
  const defaults = Object.fromEntries(detectors.flatMap((d) => [[d, DETECTORS.get(d)!.defaultThreshold], [`${d}-onsets`, DETECTORS.get(d)!.defaultThreshold]]));
  return { runs, scores: scoreResultsDir(corpus, outDir, detectors.flatMap((d) => [d, `${d}-onsets`]), defaults) };
}
