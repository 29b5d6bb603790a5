"""The README's Track B table: a finished intensity run's Pearson r per language beside
the published baselines.

    python benchmarks/track_b_table.py e5=~/kemo-runs/e5_track_b
    python benchmarks/track_b_table.py e5=~/kemo-runs/e5_track_b mpnet=~/kemo-runs/mpnet_track_b_eng

One row per language of the first run: dev rows, then for each run (NAME=RUN_DIR) its
validation and dev r of the integer predictions (cut points tuned on validation, never
dev: what the submission holds), and the first run's dev r of the continuous scores;
then the published test figures (BRIGHTER v1 Table 3: LaBSE, RemBERT, XLM-R) and the
TF-IDF + ridge floor. Mean rows: over the run's languages, and over the 10 languages
RemBERT reports, with how many of those the first run is above. A language without
validation rows (zero-shot, like `ron`) shows `-` there. Nothing is trained: the figures
come from each run's `report.json`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import language_table  # noqa: E402  (its NAME=RUN_DIR reading)
from kemo.evaluation.reference import (  # noqa: E402
    TRACK_B_FLOOR, TRACK_B_FLOOR_MEAN, TRACK_B_TEST_PEARSON, compare_with_reference, summarise)
from kemo.machine import cpu_info, describe_cpu  # noqa: E402

PUBLISHED = [{lang: figures[i] for lang, figures in TRACK_B_TEST_PEARSON.items()}
             for i in range(3)]  # LaBSE, RemBERT, XLM-R: {language: r}
REMBERT = PUBLISHED[1]


def language_r(report: dict, split: str, kind: str) -> dict[str, float]:
    """{language: r} of `split` ("validation" / "dev") for `kind` ("integer" /
    "continuous")."""
    return {lang: row["r"] for lang, row in report[split][kind]["per_language"].items()}


def read_run(spec: str) -> tuple[str, Path, dict]:
    """`language_table.read_run` (NAME=RUN_DIR, its report.json), refusing a binary run."""
    name, run, report = language_table.read_run(spec)
    if report.get("label_kind") != "intensity":
        raise SystemExit(f"error: {run / 'report.json'}: not an intensity run (Track B)")
    return name, run, report


def fmt(x) -> str:
    """r with 3 decimals; a dash where there is none (no rows, or no published figure)."""
    return "-" if x is None or x != x else f"{x:.3f}"


def table(runs: list[tuple[str, Path, dict]]) -> str:
    first = runs[0][2]
    dev_rows = {lang: row["rows"] for lang, row in first["dev"]["integer"]["per_language"].items()}
    cols = [(name, language_r(rep, "validation", "integer"), language_r(rep, "dev", "integer"))
            for name, _, rep in runs]
    cont = language_r(first, "dev", "continuous")
    head = ["lang", "dev rows"]
    for name, _, _ in cols:
        head += [f"{name} val r", f"{name} dev r"]
    head += [f"{runs[0][0]} dev r (continuous)", "LaBSE", "RemBERT", "XLM-R", "TF-IDF + ridge"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    langs = list(dev_rows)
    for lang in langs:
        pub = TRACK_B_TEST_PEARSON.get(lang, (None, None, None))
        cells = [lang, str(dev_rows[lang])]
        for _, val, dev in cols:
            cells += [fmt(val.get(lang)), fmt(dev.get(lang))]
        cells += [fmt(cont.get(lang)), *map(fmt, pub), fmt(TRACK_B_FLOOR.get(lang))]
        lines.append("| " + " | ".join(cells) + " |")
    # per column (each run's val and dev, then the first run's continuous dev): the mean
    # over its languages, over those RemBERT reports, and how many are above RemBERT
    sums = [summarise(compare_with_reference(c, REMBERT))
            for c in [x for _, val, dev in cols for x in (val, dev)] + [cont]]
    dev_sums = sums[1]
    published = [summarise(compare_with_reference(cont, ref))["reference_mean"] for ref in PUBLISHED]
    floor = f"{TRACK_B_FLOOR_MEAN:.3f} (11)" if len(langs) == 11 else ""  # published for 11 only
    for label, key, tail in ((f"mean ({len(langs)})", "mean", ["", "", "", floor]),
                             (f"mean over RemBERT's ({dev_sums['reported']})", "mean_reported",
                              [*map(fmt, published), ""])):
        cells = [f"**{label}**", ""]
        for val_sum, dev_sum in zip(sums[0:-1:2], sums[1:-1:2]):
            cells += [fmt(val_sum[key]), f"**{fmt(dev_sum[key])}**"]
        cells += [fmt(sums[-1][key]), *tail]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"{runs[0][0]}: dev r above RemBERT's published test figure on "
                 f"{dev_sums['above']} of {dev_sums['reported']} languages.")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="NAME=RUN_DIR of finished intensity runs")
    args = ap.parse_args(argv)
    runs = [read_run(spec) for spec in args.runs]
    print(f"cpu: {describe_cpu(cpu_info())}")
    for name, run, rep in runs:
        meta = rep["meta"]
        print(f"{name}: {run} (fit {meta.get('fit_seconds')} s, {meta.get('epochs_run')} epochs, "
              f"head {meta.get('head')}, best epoch {meta.get('best_epoch_restored')})")
    print()
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
