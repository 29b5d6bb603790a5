"""The README's Track C table: `kemo crosslingual`'s zero-shot dev macro-F1 per target,
beside the full-data 28-language run's in-language dev figure (from its committed
language table) and the published zero-shot figures of the BRIGHTER paper.

    python benchmarks/track_c_table.py ~/kemo-runs/track_c_eng/zero_shot.csv

In-language: `benchmarks/results/e5-all-full-languages.log`, dev, global thresholds tuned
on validation: its `full dev` column (`e5_all_full`, every training row) and its `capped
dev` column (the same recipe on 300 training rows per language, 2 epochs: what each
fold's training of the capped protocol sees of a language it trains on). Published:
BRIGHTER v1 (arXiv 2502.11926), Table 2, cross-lingual half, macro-F1 on test, trained on
the other languages of the target's family (not Track C's protocol; no row for amh, orm,
som, tir).
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


def in_language_dev(path: Path = LANGUAGE_TABLE, column: str = "full dev") -> dict[str, float]:
    """language -> dev macro-F1 in `column` of the language table (`full dev`, `capped dev`)."""
    out, index = {}, None
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "language":
            index = cells.index(column)
        elif index is not None and len(cells) > index and cells[0].isalpha():
            try:
                out[cells[0]] = float(cells[index])
            except ValueError:
                continue
    return out


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def table(zero_shot_csv: Path) -> str:
    """The markdown table: per target (sorted) the zero-shot dev F1, the in-language figures
    of the full and the capped run with the gap to each, and the published zero-shot pair;
    the mean row, then the mean over the targets the published table covers."""
    zs = pd.read_csv(zero_shot_csv)
    zs = zs[zs["language"] != "mean"].sort_values("language")
    refs = {"full": in_language_dev(), "capped": in_language_dev(column="capped dev")}
    lines = ["| target | dev rows | zero-shot dev F1 | in-language dev F1, `e5_all_full` | gap "
             "| in-language dev F1, capped (300 rows/lang) | gap "
             "| BRIGHTER zero-shot LaBSE / RemBERT (test) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    zero, seen = [], {k: [] for k in refs}
    gaps = {k: [] for k in refs}
    for r in zs.itertuples():
        zero.append(r.zero_shot_dev_f1)
        cells = []
        for name, ref in refs.items():
            value = ref.get(r.language)
            if value is None:
                cells += ["-", "-"]
                continue
            seen[name].append(value)
            gaps[name].append(r.zero_shot_dev_f1 - value)
            cells += [f"{value:.4f}", f"{r.zero_shot_dev_f1 - value:+.4f}"]
        pub = BRIGHTER_ZERO_SHOT.get(r.language)
        cells.append("-" if pub is None else f"{pub[0] / 100:.3f} / {pub[1] / 100:.3f}")
        lines.append(f"| {r.language} | {r.dev_rows} | {r.zero_shot_dev_f1:.4f} | "
                     + " | ".join(cells) + " |")
    means = " | ".join(f"{_mean(seen[k]):.4f} | {_mean(gaps[k]):+.4f}" for k in refs)
    lines.append(f"| **mean ({len(zero)})** | | **{_mean(zero):.4f}** | {means} | |")
    lines.append(_published_mean_row(zs))
    return "\n".join(lines)


def _published_mean_row(zs: pd.DataFrame) -> str:
    """The mean row over the targets BRIGHTER's zero-shot table covers, published means beside."""
    covered = zs[zs["language"].isin(BRIGHTER_ZERO_SHOT)]
    pubs = [BRIGHTER_ZERO_SHOT[lang] for lang in covered["language"]]
    labse, rembert = (_mean([p[i] / 100 for p in pubs]) for i in (0, 1))
    return (f"| mean over BRIGHTER's ({len(covered)}) | | "
            f"{_mean(list(covered['zero_shot_dev_f1'])):.4f} | | | | | "
            f"{labse:.3f} / {rembert:.3f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("zero_shot_csv", type=Path, help="OUT/zero_shot.csv of kemo crosslingual")
    args = ap.parse_args(argv)
    print(table(args.zero_shot_csv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
