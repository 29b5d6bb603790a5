"""The README's Track C table: `kemo crosslingual`'s zero-shot dev macro-F1 per target,
beside the full-data 28-language run's in-language dev figure (from its committed
language table) and the published zero-shot figures of the BRIGHTER paper.

    python benchmarks/track_c_table.py ~/kemo-runs/track_c_eng/zero_shot.csv

In-language: `benchmarks/results/e5-all-full-languages.log` (`e5_all_full`, dev, global
thresholds tuned on validation). Published: BRIGHTER v1 (arXiv 2502.11926), Table 2,
cross-lingual half, macro-F1 on test, trained on the other languages of the target's
family (not Track C's protocol; no row for amh, orm, som, tir).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
LANGUAGE_TABLE = ROOT / "benchmarks" / "results" / "e5-all-full-languages.log"
# BRIGHTER v1 Table 2, zero-shot: language -> (LaBSE, RemBERT), macro-F1 x 100 on test
BRIGHTER_ZERO_SHOT = {
    "afr": (35.12, 35.04), "arq": (35.93, 33.78), "ary": (42.83, 35.46),
    "chn": (45.28, 24.56), "deu": (42.45, 46.84), "eng": (36.71, 37.54),
    "esp": (54.56, 57.37), "hau": (38.46, 31.98), "hin": (69.78, 13.75),
    "ibo": (18.13, 7.49), "kin": (30.35, 18.38), "mar": (74.65, 77.24),
    "pcm": (33.29, 1.01), "ptbr": (41.51, 41.84), "ptmz": (31.44, 29.67),
    "ron": (69.79, 76.23), "rus": (61.32, 70.43), "sun": (34.79, 19.43),
    "swa": (21.66, 18.99), "swe": (44.24, 51.18), "tat": (60.66, 44.54),
    "ukr": (44.37, 49.56), "vmw": (9.65, 5.22), "yor": (11.64, 5.33),
}


def in_language_dev(path: Path = LANGUAGE_TABLE) -> dict[str, float]:
    """language -> the full-data run's dev macro-F1 (the log's `full dev` column)."""
    out = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 2 and len(cells[0]) in (3, 4) and cells[0].isalpha():
            try:
                out[cells[0]] = float(cells[2])
            except ValueError:
                continue
    return out


def table(zero_shot_csv: Path) -> str:
    zs = pd.read_csv(zero_shot_csv)
    zs = zs[zs["language"] != "mean"]
    full = in_language_dev()
    lines = ["| target | dev rows | zero-shot dev F1 | in-language dev F1 (`e5_all_full`) | gap "
             "| BRIGHTER zero-shot LaBSE / RemBERT (test) |", "|---|---:|---:|---:|---:|---:|"]
    gaps, zero, inl = [], [], []
    for r in zs.itertuples():
        ref = full.get(r.language)
        pub = BRIGHTER_ZERO_SHOT.get(r.language)
        gap = None if ref is None else r.zero_shot_dev_f1 - ref
        zero.append(r.zero_shot_dev_f1)
        if ref is not None:
            inl.append(ref)
            gaps.append(gap)
        lines.append(f"| {r.language} | {r.dev_rows} | {r.zero_shot_dev_f1:.4f} | "
                     f"{'-' if ref is None else f'{ref:.4f}'} | "
                     f"{'-' if gap is None else f'{gap:+.4f}'} | "
                     f"{'-' if pub is None else f'{pub[0] / 100:.3f} / {pub[1] / 100:.3f}'} |")
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    lines.append(f"| **mean ({len(zero)})** | | **{mean(zero):.4f}** | {mean(inl):.4f} | "
                 f"{mean(gaps):+.4f} | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("zero_shot_csv", type=Path, help="OUT/zero_shot.csv of kemo crosslingual")
    args = ap.parse_args(argv)
    print(table(args.zero_shot_csv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
