// Online anomaly detectors for the detect operator: each reads one series one value at a time, with
// no look-ahead, and keeps its state in a plain object with an Avro schema (stored per series in a
// changelogged store). A detector scores a value against what the series showed before it, then
// learns it.
import type { AvroType } from '../../../kernel/schema.ts';
import { ewmaDetector } from './ewma.ts';
import { noveltyDetector } from './novelty.ts';
import { robustZDetector } from './robust-z.ts';
import { seasonalDetector } from './seasonal.ts';

export interface Assessment {
  /** Anomaly score in [0, 1]. */
  score: number;
  /** What the detector expected, and the band around it at the operator's threshold (null when it has none). */
  expected: number | null;
  lower: number | null;
  upper: number | null;
}

export interface DetectorParams {
  /** robust_z: values in the sliding window. */
  window: number;
  /** ewma: half-life of the mean and variance, in records. */
  halfLife: number;
  /** seasonal: season length in records; undefined = found from the warm-up data. */
  season?: number;
  /** novelty: values of history the latest stretch is compared with. */
  history: number;
  /** Records a series must have shown before it is scored. */
  warmup: number;
}

export interface Detector<S = unknown> {
  /** Avro schema of one series' state. */
  readonly state: AvroType;
  init(): S;
  /** The state as its Avro schema holds it, and back, when the two differ (typed arrays). */
  toAvro?(s: S): unknown;
  fromAvro?(v: unknown): S;
  /**
   * Scores `x` against the series so far, then learns it. `bandZ` is the band's half-width in the
   * detector's scale (what the operator's threshold stands for); detectors without a band ignore it.
   */
  step(s: S, x: number, bandZ: number): Assessment;
}

export interface DetectorKind {
  name: string;
  summary: string;
  /** The threshold the detector ships with (documented in the reference). */
  defaultThreshold: number;
  /** Records before scoring, when the topology does not say. */
  defaultWarmup: number;
  /** Which optional parameters it reads (others are refused when given). */
  params: ReadonlyArray<'window' | 'half_life' | 'season' | 'history'>;
  /** Checks parameters beyond their specs (a message per problem). */
  check?(p: DetectorParams): string[];
  create(p: DetectorParams): Detector;
  /** Bytes of state per series (for the docs and the benchmark), for the default parameters. */
  stateBytes: string;
}

export const DETECTORS: ReadonlyMap<string, DetectorKind> = new Map(
  [robustZDetector, ewmaDetector, seasonalDetector, noveltyDetector].map((d) => [d.name, d]),
);

export const NO_ASSESSMENT: Assessment = { score: 0, expected: null, lower: null, upper: null };
