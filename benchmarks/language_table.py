"""Per-language dev table of finished runs beside the published RemBERT figures.

    python benchmarks/language_table.py full=~/kemo-runs/e5_all_full \
        capped=~/kemo-runs/e5_all_fast_check

One row per language: dev rows, then for each run (NAME=RUN_DIR, the first one leading)
its dev macro-F1 with the thresholds it decides with (`meta.decides_with`: tuned on
validation, never on dev), the first run's dev at 0.5 and validation with its
thresholds, the RemBERT test figure (`kemo.evaluation.reference`) and whether the first
run is above it. Then the mean over all languages, the mean over the languages RemBERT
reports, and how many of those each run is above. Markdown, ready for the README; the
CPU line and each run's fit time say where it ran.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kemo.evaluation.reference import REMBERT_TEST_MACRO_F1, compare_with_reference, summarise  # noqa: E402
from kemo.machine import cpu_info, describe_cpu  # noqa: E402


def language_f1(report: dict, split: str, setting: str) -> dict:
    """{language: macro-F1} of `split` ("dev" / "validation") at `setting`."""
    return {lang: row["macro"]["f1"]
            for lang, row in report[split][setting]["per_language"].items()}


def read_run(spec: str) -> tuple[str, Path, dict]:
    name, _, path = spec.partition("=")
    if not path:
        name, path = Path(spec).name, spec
    run = Path(path).expanduser()
    try:
        return name, run, json.loads((run / "report.json").read_text())
    except FileNotFoundError:
        sys.exit(f"error: {run}: no report.json (the run has not finished)")


def table(runs) -> str:
    (lead, _, first), *others = runs
    decide = first["meta"]["decides_with"]
    dev = language_f1(first, "dev", decide)
    columns = [(f"{lead} dev", dev), (f"{lead} dev @0.5", language_f1(first, "dev", "threshold_0.5")),
               (f"{lead} val", language_f1(first, "validation", decide))]
    columns += [(f"{name} dev", language_f1(rep, "dev", rep["meta"]["decides_with"]))
                for name, _, rep in others]
    rows = first["dev"][decide]["per_language"]
    head = ["language", "dev rows", *(c for c, _ in columns), "RemBERT (test)", f"{lead} above"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    ref = compare_with_reference(dev)
    for lang in sorted(dev):
        cells = [lang, str(rows[lang]["n"]), *(_cell(c.get(lang)) for _, c in columns),
                 "-" if ref[lang]["reference"] is None else f"{ref[lang]['reference']:.4f}",
                 {None: "", True: "yes", False: "no"}[ref[lang]["above"]]]
        lines.append("| " + " | ".join(cells) + " |")
    sums = [summarise(compare_with_reference(c)) for _, c in columns]
    n24 = sums[0]["reported"]
    lines.append("| **mean (all)** | | " + " | ".join(f"{s['mean']:.4f}" for s in sums) + " | | |")
    lines.append(f"| **mean ({n24} RemBERT reports)** | | "
                 + " | ".join(f"{s['mean_reported']:.4f}" for s in sums)
                 + f" | {sums[0]['reference_mean']:.4f} | |")
    lines.append(f"| **above RemBERT (of {n24})** | | "
                 + " | ".join(str(s["above"]) for s in sums) + " | | |")
    return "\n".join(lines)


def _cell(f1) -> str:
    """A score with 4 decimals; a dash where a run has none (a language it did not score)."""
    return "-" if f1 is None or f1 != f1 else f"{f1:.4f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    args = ap.parse_args(argv)
    runs = [read_run(s) for s in args.runs]
    print(f"machine: {describe_cpu(cpu_info())}")
    for name, path, rep in runs:
        meta = rep["meta"]
        print(f"{name}: {path} ({meta.get('epochs_run')} epochs, fit {meta.get('fit_seconds', 0) / 60:.0f} "
              f"min, {meta.get('train_rows')} train rows; decides with {meta['decides_with']}; "
              f"on {describe_cpu(meta['cpu']) if meta.get('cpu') else 'an unrecorded CPU'})")
    print()
    print(table(runs))
    print(f"\nRemBERT: {len(REMBERT_TEST_MACRO_F1)} languages, test set (kemo: dev).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
