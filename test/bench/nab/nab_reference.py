# NAB's own scoring, for the scorer test: NAB's sweeper (nab_sweeper.py, vendored unchanged) driven as
# nab/optimizer.py, nab/scorer.py and runner.normalize drive it, without pandas (the csv module
# reads the files instead). Usage: python3 nab_reference.py CORPUS_DIR RESULTS_DIR DETECTOR [THRESHOLD]
# Prints JSON: per profile the swept threshold, its raw and normalised score, and (with THRESHOLD)
# the raw score at that threshold, file by file as runner.score totals it.
import csv
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nab_sweeper import Sweeper  # noqa: E402

PROFILES = {
  "standard": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11},
  "reward_low_FP_rate": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22},
  "reward_low_FN_rate": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11},
}


def strp(s):
  for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
    try:
      return datetime.datetime.strptime(s, fmt)
    except ValueError:
      pass
  raise ValueError("bad timestamp %r" % s)


def read_column(path, name):
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  return [r[name] for r in rows]


def main():
  corpus_dir, results_dir, detector = sys.argv[1:4]
  threshold = float(sys.argv[4]) if len(sys.argv) > 4 else None
  with open(os.path.join(corpus_dir, "labels", "combined_windows.json")) as f:
    windows = json.load(f)
  files = []
  for rel in sorted(windows):
    timestamps = [strp(t) for t in read_column(os.path.join(corpus_dir, "data", rel), "timestamp")]
    category, name = rel.split("/", 1)
    results = os.path.join(results_dir, detector, category, detector + "_" + name)
    scores = [float(s) for s in read_column(results, "anomaly_score")]
    limits = [[strp(a), strp(b)] for a, b in windows[rel]]
    files.append((rel, timestamps, scores, limits))
  tp_count = sum(len(w) for w in windows.values())
  out = {}
  for profile, cost in PROFILES.items():
    sweeper = Sweeper(probationPercent=0.15, costMatrix=cost)
    rows, null_rows = [], []
    for rel, timestamps, scores, limits in files:
      rows.extend(sweeper.calcSweepScore(timestamps, scores, limits, rel))
      null_rows.extend(sweeper.calcSweepScore(timestamps, [0.5] * len(scores), limits, rel))
    best = sorted(sweeper.calcScoreByThreshold(rows), key=lambda x: x.score, reverse=True)[0]
    base = sorted(sweeper.calcScoreByThreshold(null_rows), key=lambda x: x.score, reverse=True)[0].score
    perfect = tp_count * cost["tpWeight"]
    entry = {
      "threshold": best.threshold,
      "raw": best.score,
      "normalized": 100 * (best.score - base) / (perfect - base),
      "tp": best.tp, "fp": best.fp, "fn": best.fn,
    }
    if threshold is not None:
      total = 0.0
      for rel, timestamps, scores, limits in files:
        total += sweeper.scoreDataSet(timestamps, scores, limits, rel, threshold)[1].score
      entry["rawAt"] = total
    out[profile] = entry
  print(json.dumps(out))


main()
