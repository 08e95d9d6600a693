// NAB scores of detectors, as a table beside the published scoreboard.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { NabCorpus } from './corpus.ts';
import { readResults } from './corpus.ts';
import type { ProfileResult } from './scorer.ts';
import { scoreDetector } from './scorer.ts';

/** The published scoreboard (standard / reward low FP / reward low FN), from ../shared/nab/README.md. */
export const NAB_SCOREBOARD: ReadonlyArray<{ detector: string; scores: [number, number, number] }> = [
  { detector: 'ARTime', scores: [74.9, 65.1, 80.4] },
  { detector: 'Numenta HTM', scores: [70.5, 62.6, 75.2] },
  { detector: 'CAD OSE', scores: [69.9, 67.0, 73.2] },
  { detector: 'earthgecko Skyline', scores: [58.2, 46.2, 63.9] },
  { detector: 'KNN CAD', scores: [58.0, 43.4, 64.8] },
  { detector: 'Relative Entropy', scores: [54.6, 47.6, 58.8] },
  { detector: 'Random Cut Forest', scores: [51.7, 38.4, 59.7] },
  { detector: 'Twitter ADVec', scores: [47.1, 33.6, 53.5] },
  { detector: 'Windowed Gaussian', scores: [39.6, 20.9, 47.4] },
  { detector: 'Etsy Skyline', scores: [35.7, 27.1, 44.5] },
  { detector: 'Bayesian Changepoint', scores: [17.7, 3.2, 32.2] },
  { detector: 'EXPoSE', scores: [16.4, 3.2, 26.9] },
  { detector: 'Random', scores: [11.0, 1.2, 19.5] },
  { detector: 'Null', scores: [0, 0, 0] },
];

export interface DetectorScores {
  detector: string;
  /** The threshold the detector ships as its default, if it has one. */
  defaultThreshold?: number;
  profiles: ProfileResult[];
}

/** The detectors with results in a directory in NAB's layout (its subdirectories). */
export function detectorsIn(resultsDir: string): string[] {
  return readdirSync(resultsDir)
    .filter((d) => statSync(join(resultsDir, d)).isDirectory())
    .sort();
}

/** Reads and scores each detector's results (every file of the corpus must be there). */
export function scoreResultsDir(corpus: NabCorpus, resultsDir: string, detectors: string[], defaults: Record<string, number> = {}): DetectorScores[] {
  return detectors.map((detector) => {
    const scores = readResults(resultsDir, detector, corpus);
    const defaultThreshold = defaults[detector];
    return { detector, ...(defaultThreshold !== undefined ? { defaultThreshold } : {}), profiles: scoreDetector(corpus, scores, defaultThreshold) };
  });
}

const f1 = (n: number) => n.toFixed(1);

/** The scores as markdown: one row per detector, then the published scoreboard. */
export function nabMarkdown(results: DetectorScores[], corpus: NabCorpus, runs: ReadonlyArray<{ detector: string; recordsPerSec: number }> = []): string {
  const out: string[] = [];
  out.push(`NAB corpus: ${corpus.files.length} files, ${corpus.files.reduce((n, f) => n + f.times.length, 0).toLocaleString('en-US')} rows, ${corpus.windowCount} anomaly windows.`);
  out.push('');
  const rate = new Map(runs.map((r) => [r.detector, r.recordsPerSec]));
  out.push('| detector | standard | reward low FP | reward low FN | swept thresholds | at the default threshold (standard / low FP / low FN) | records/s (whole run) |');
  out.push('| --- | ---: | ---: | ---: | --- | --- | ---: |');
  for (const r of results) {
    const [s, lfp, lfn] = r.profiles;
    const at =
      r.defaultThreshold === undefined
        ? '–'
        : `${r.profiles.map((p) => f1(p.atThreshold!.normalized)).join(' / ')} at ${r.defaultThreshold}`;
    const rs = rate.get(r.detector);
    out.push(`| ${r.detector} | **${f1(s!.swept.normalized)}** | ${f1(lfp!.swept.normalized)} | ${f1(lfn!.swept.normalized)} | ${r.profiles.map((p) => +p.swept.threshold.toPrecision(6)).join(' / ')} | ${at} | ${rs === undefined ? '–' : Math.round(rs).toLocaleString('en-US')} |`);
  }
  out.push('');
  out.push('Published scoreboard (standard / reward low FP / reward low FN):');
  out.push('');
  out.push('| detector | standard | reward low FP | reward low FN |');
  out.push('| --- | ---: | ---: | ---: |');
  for (const p of NAB_SCOREBOARD) out.push(`| ${p.detector} | ${f1(p.scores[0])} | ${f1(p.scores[1])} | ${f1(p.scores[2])} |`);
  return `${out.join('\n')}\n`;
}
