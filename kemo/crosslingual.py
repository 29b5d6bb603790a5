"""Track C, cross-lingual: train without the target language, predict it zero-shot.

    kemo crosslingual --config configs/offline/e5_all_full.toml --folds 4 --out ~/kemo-runs/track_c \
        --reference ~/kemo-runs/e5_all_full

The config's languages are split into language folds (`language_folds`: seeded,
balanced by training rows; `--folds` = the number of languages is leave-one-out), or
one fold trains on `--train-languages` (e.g. English only) and targets every other
language. Each fold is a normal run directory `OUT/<fold>` of the config on the
languages outside the fold; its thresholds are tuned on those languages' validation
rows, and the fold's languages (never trained on) are predicted with the run's global
thresholds: dev (scored: zero-shot macro-F1) into `OUT/<fold>/predictions/zero_shot_dev/`,
test into `.../zero_shot_test/`. `OUT/zero_shot.csv` and `.md` hold the table (per target:
zero-shot dev macro-F1, beside the in-language dev figure of a `--reference` run trained
on every language), `OUT/submission.zip` the Track C submission (`track_c/pred_<lang>.csv`
for every target, the Track A file layout). `OUT/crosslingual.json` holds the plan and
the table. One training at a time; an interrupted protocol continues with `--resume`:
a finished fold is kept, an unfinished one resumes from its checkpoint.

Example:
    result = crosslingual("configs/tiny.toml", "runs/track_c", folds=2)
    result["rows"][0]      # {"language": "eng", "fold": "fold-1", "zero_shot_dev_f1": ...}
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kemo.atomic import write_csv, write_text
from kemo.config import load_config
from kemo.errors import InputError
from kemo.run import layout as L
from kemo.run.lock import writing_into
from kemo.run.predictions_marker import written_here
from kemo.run.report_file import DEV, Report, Setting

log = logging.getLogger(__name__)

PLAN_FILE = "crosslingual.json"
TABLE_CSV = "zero_shot.csv"
TABLE_MD = "zero_shot.md"
ZIP_FOLDER = "track_c"  # the upload layout: track_c/pred_<lang>.csv
ZERO_SHOT = "zero_shot_{split}"  # <fold run>/predictions/zero_shot_dev/, zero_shot_test/
TRIES = 64  # seeded random greedy assignments; the most balanced is kept


@dataclass(frozen=True)
class Fold:
    """One training of the protocol: its run directory's name, the languages it trains
    on and the languages it predicts zero-shot."""

    name: str
    train: tuple[str, ...]
    targets: tuple[str, ...]


def language_folds(rows: dict[str, int], n: int, seed: int = 0) -> list[list[str]]:
    """`rows`' languages in `n` folds of about equal training rows: of `TRIES` seeded
    random orders, each dealt greedily to the fold with the fewest rows (an empty fold
    first) and improved by swaps (`_swap_to_balance`), the one with the smallest spread
    of rows (then of languages). Languages keep
    `rows`' order in a fold; folds are ordered by their first language.

    Example:
        language_folds({"eng": 100, "deu": 90, "hau": 20, "amh": 10}, 2)
        # [["eng", "amh"], ["deu", "hau"]]
    """
    langs = list(rows)
    if not 1 <= n <= len(langs):
        raise ValueError(f"{n} folds of {len(langs)} languages")
    rng = np.random.default_rng(seed)
    best, best_key = None, None
    for _ in range(TRIES):
        folds: list[list[str]] = [[] for _ in range(n)]
        sums = [0] * n
        for k in rng.permutation(len(langs)):
            j = min(range(n), key=lambda i: (bool(folds[i]), sums[i], len(folds[i]), i))
            folds[j].append(langs[k])
            sums[j] += rows[langs[k]]
        _swap_to_balance(folds, sums, rows)
        sizes = [len(f) for f in folds]
        key = (max(sums) - min(sums), max(sizes) - min(sizes))
        if best_key is None or key < best_key:
            best, best_key = folds, key
    ordered = [sorted(f, key=langs.index) for f in best]
    return sorted(ordered, key=lambda f: langs.index(f[0]))


def _swap_to_balance(folds: list[list[str]], sums: list[int], rows: dict[str, int]) -> None:
    """Swap languages between two folds while a swap narrows the spread of training
    rows (the folds keep their sizes); in place."""
    improved = True
    while improved:
        improved = False
        spread = max(sums) - min(sums)
        for a in range(len(folds)):
            for b in range(len(folds)):
                for i, x in enumerate(folds[a]):
                    for j, y in enumerate(folds[b]):
                        d = rows[x] - rows[y]
                        if a == b or d <= 0:
                            continue
                        trial = sums.copy()
                        trial[a] -= d
                        trial[b] += d
                        if max(trial) - min(trial) < spread:
                            folds[a][i], folds[b][j] = y, x
                            sums[:] = trial
                            spread, improved = max(trial) - min(trial), True
                            x = y


def plan_folds(rows: dict[str, int], folds: int | None = None, train_languages=None,
               seed: int = 0) -> list[Fold]:
    """The protocol's trainings: `folds` language folds of `rows`' languages (each fold's
    languages are its targets, the others train), or one training on `train_languages`
    targeting every other language. InputError for a plan that cannot run."""
    langs = list(rows)
    if train_languages:
        from kemo.data.brighter import check_languages

        train = check_languages(train_languages, "--train-languages")
        unknown = [lang for lang in train if lang not in langs]
        if unknown:
            raise InputError(f"--train-languages: {', '.join(unknown)} not among the config's "
                             f"languages (data.languages: {', '.join(langs)})")
        targets = [lang for lang in langs if lang not in train]
        if not targets:
            raise InputError("--train-languages: every language of the config trains, so no "
                             "fold has a target (list the targets in data.languages too)")
        plan = [Fold(f"from-{'-'.join(train)}", tuple(train), tuple(targets))]
    else:
        if folds is None:
            raise InputError("give --folds N (language folds) or --train-languages L ...")
        if folds > len(langs):
            raise InputError(f"--folds {folds}: more folds than the config's {len(langs)} "
                             f"languages ({', '.join(langs)}): a fold would have no target")
        if folds < 2:
            raise InputError(f"--folds {folds}: at least 2 (one fold leaves nothing to train on)")
        plan = [Fold(f"fold-{k + 1}", tuple(x for x in langs if x not in f), tuple(f))
                for k, f in enumerate(language_folds(rows, folds, seed))]
    for fold in plan:
        if not sum(rows[lang] for lang in fold.train):
            raise InputError(f"{fold.name} (targets {', '.join(fold.targets)}): its training "
                             f"languages {', '.join(fold.train)} have no training rows")
    return plan


def training_rows(cfg, root: Path) -> dict[str, int]:
    """Training rows per config language (`train/<lang>.csv`, capped by
    `data.max_train_examples_per_language`; 0 without a train file), each file checked."""
    from kemo.data.brighter import check_languages, read_track_a_csv, split_file

    cap = getattr(cfg.data, "max_train_examples_per_language", 0) or 0
    rows = {}
    for lang in check_languages(cfg.data.languages):
        path = split_file(root, "train", lang)
        n = len(read_track_a_csv(path)) if path.is_file() else 0
        rows[lang] = min(n, cap) if cap else n
    return rows


def _header_labels(path: Path) -> list[str]:
    """The Track A label columns of a CSV's header."""
    import csv

    from kemo.data.brighter import track_a_label_columns

    with open(path, encoding="utf-8", newline="") as f:
        return list(track_a_label_columns(next(csv.reader(f), [])))


def untrained_labels(root: Path, fold: Fold, lang: str) -> list[str]:
    """Labels of `lang`'s dev file that none of the fold's training languages annotates
    (e.g. `disgust` for a fold trained on eng alone): predicted as 0, and named in the
    table, since the submission needs every column."""
    from kemo.data.brighter import split_file

    trained = {c for t in fold.train if split_file(root, "train", t).is_file()
               for c in _header_labels(split_file(root, "train", t))}
    return [c for c in _header_labels(split_file(root, "dev", lang)) if c not in trained]


def _check_inputs(cfg, root: Path, plan: list[Fold], reference) -> None:
    """Before anything is written: Track A binary labels, every target's dev and test
    file, and the reference run's report."""
    from kemo.data.brighter import split_file

    if cfg.data.layout != "track_a" or cfg.data.label_kind != "binary":
        raise InputError("Track C reads Track A's data: the config needs data.layout = "
                         "\"track_a\" and data.label_kind = \"binary\" (found "
                         f"{cfg.data.layout!r}, {cfg.data.label_kind!r})")
    for fold in plan:
        for lang in fold.targets:
            for split in ("dev", "test"):
                if not split_file(root, split, lang).is_file():
                    raise InputError(f"{split_file(root, split, lang)}: file not found (target "
                                     f"{lang} of {fold.name} needs its {split} file)")
    if reference:
        ref = Path(reference).expanduser()
        if not (ref / L.REPORT).is_file():
            raise InputError(f"--reference {ref}: not a finished run (no {L.REPORT})")
        Report.read(ref)


def _plan_record(config, overrides, seed, root, plan, reference) -> dict:
    text = Path(config).read_bytes()
    return {"kemo": "crosslingual", "config": str(Path(config).resolve()),
            "config_sha256": hashlib.sha256(text).hexdigest(), "overrides": list(overrides),
            "seed": seed, "data_dir": str(root),
            "folds": [asdict(f) | {"train": list(f.train), "targets": list(f.targets)}
                      for f in plan],
            "reference": str(Path(reference).expanduser().resolve()) if reference else None}


def _open_out(out: Path, record: dict, resume: bool) -> None:
    """`out` new or empty (a fresh protocol), or with `resume` a protocol of the same
    plan; anything else is refused before a file is written."""
    plan_path = out / PLAN_FILE
    if plan_path.is_file():
        try:
            before = json.loads(plan_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"{plan_path}: unreadable ({e}); move {out} away to start "
                             "again") from None
        if not resume:
            raise InputError(f"{out}: holds a cross-lingual protocol already ({PLAN_FILE}); "
                             "add --resume to continue it, or give another --out")
        differs = [k for k in record if k not in ("reference",) and before.get(k) != record[k]]
        if differs:
            raise InputError(f"{plan_path}: key {differs[0]!r} differs from this command's "
                             f"({before.get(differs[0])!r} there, {record[differs[0]]!r} now): "
                             "--resume continues the same protocol only")
        return
    if resume:
        raise InputError(f"{out}: no {PLAN_FILE} (not a cross-lingual protocol to resume); "
                         "drop --resume to start one")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: exists and is not empty; --out needs a new or empty folder")



def _predict_fold(run_dir: Path, fold: Fold, root: Path, batch_size: int) -> dict:
    """The fold's targets predicted zero-shot (dev and test), unless this run wrote
    them before; returns {split: [pred_<lang>.csv paths]}."""
    from kemo.prediction.input_files import predict_files, split_files

    run, preds = None, {}
    for split in ("dev", "test"):
        out = run_dir / L.PREDICTIONS / ZERO_SHOT.format(split=split)
        names = [f"pred_{lang}.csv" for lang in fold.targets]
        preds[split] = [out / n for n in names]
        ours = written_here(out)
        if all((out / n).is_file() and ours.get(n) == str(run_dir.resolve()) for n in names):
            continue
        if run is None:
            from kemo.prediction.predictor import load_predictor

            run = load_predictor(run_dir)
        with writing_into(run.path, out):
            predict_files(run, split_files(root, split, fold.targets), out, untrained="zero",
                          batch_size=batch_size)
        log.info(f"{fold.name}: {', '.join(fold.targets)} {split} predicted zero-shot into {out}")
    return preds


def in_language_dev(report, lang: str):
    """A run's dev macro-F1 on `lang` at the setting it decides with (None if absent;
    `report`: a `kemo.run.report_file.Report`)."""
    setting = report.decides_with if report.section(DEV, report.decides_with) else Setting.GLOBAL
    return report.macro_f1(DEV, setting, lang)


def zero_shot_rows(plan: list[Fold], scores: dict, reference_report, root: Path) -> list[dict]:
    """One row per target: its fold, training languages, dev rows, zero-shot dev
    macro-F1, (given a reference report) the in-language figure and the gap, and the
    labels no training language has (`untrained_labels`, predicted 0)."""
    rows = []
    for fold in plan:
        for lang in fold.targets:
            s = scores["per_language"][lang]
            ref = in_language_dev(reference_report, lang) if reference_report else None
            zs = float(s["macro_f1"])
            rows.append({"language": lang, "fold": fold.name, "trained_on": " ".join(fold.train),
                         "dev_rows": int(s["rows"]), "zero_shot_dev_f1": round(zs, 4),
                         "in_language_dev_f1": None if ref is None else round(float(ref), 4),
                         "gap": None if ref is None else round(zs - float(ref), 4),
                         "untrained_labels": " ".join(untrained_labels(root, fold, lang))})
    return rows


def mean_row(rows: list[dict]) -> dict:
    """The table's last row: each figure's mean over the targets that have it."""
    def mean(key):
        xs = [r[key] for r in rows if r[key] is not None]
        return round(float(np.mean(xs)), 4) if xs else None

    return {"language": "mean", "fold": "", "trained_on": f"{len(rows)} targets",
            "dev_rows": sum(r["dev_rows"] for r in rows),
            **{k: mean(k) for k in ("zero_shot_dev_f1", "in_language_dev_f1", "gap")},
            "untrained_labels": ""}


def format_table(rows: list[dict], markdown: bool = False) -> str:
    """The zero-shot table as aligned text (`kemo crosslingual` prints it) or markdown."""
    cols = ("language", "fold", "dev_rows", "zero_shot_dev_f1", "in_language_dev_f1", "gap",
            "untrained_labels")
    heads = ("language", "fold", "dev rows", "zero-shot dev F1", "in-language dev F1", "gap",
             "untrained (0)")
    cell = lambda v: "-" if v in (None, "") else (f"{v:.4f}" if isinstance(v, float) else str(v))  # noqa: E731
    body = [[cell(r[c]) for c in cols] for r in [*rows, mean_row(rows)]]
    if markdown:
        lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        return "\n".join(lines + ["| " + " | ".join(b) + " |" for b in body]) + "\n"
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(heads)]
    return "\n".join("  ".join(v.ljust(w) if i in (0, 1, 6) else v.rjust(w)
                               for i, (v, w) in enumerate(zip(line, widths))).rstrip()
                     for line in [list(heads), *body])


def _write_results(out: Path, record: dict, plan: list[Fold], preds: dict, root: Path) -> dict:
    """Score the zero-shot dev files, write the table, the zip and the plan's results."""
    import pandas as pd

    from kemo.evaluation.scoring import score_submission
    from kemo.prediction.input_files import ZIP_NAME, write_submission_zip

    scores = score_submission([p for f in plan for p in preds[f.name]["dev"]], root / "dev",
                              languages=[lang for f in plan for lang in f.targets])
    reference = Report.read(Path(record["reference"])) if record["reference"] else None
    rows = zero_shot_rows(plan, scores, reference, root)
    write_csv(pd.DataFrame([*rows, mean_row(rows)]), out / TABLE_CSV)
    write_text(out / TABLE_MD, format_table(rows, markdown=True))
    zip_path = write_submission_zip(
        sorted((p for f in plan for p in preds[f.name]["test"]), key=lambda p: p.name),
        out / ZIP_NAME, folder=ZIP_FOLDER)
    result = record | {"rows": rows, "mean": mean_row(rows), "zip": str(zip_path),
                       "tables": [str(out / TABLE_CSV), str(out / TABLE_MD)]}
    write_text(out / PLAN_FILE, json.dumps(result, indent=1))
    return result


def protocol_plan(config, folds: int | None = None, train_languages=None, reference=None,
                  overrides=(), data_dir=None, seed: int = 0):
    """(config, data root, [Fold], training rows per language): the protocol's plan,
    every input checked; nothing is written (`kemo crosslingual --plan-only` prints it)."""
    from kemo.data.brighter import resolve_data_dir

    cfg = load_config(config, list(overrides))
    root = resolve_data_dir(data_dir, cfg.data.data_dir or None).resolve()
    rows = training_rows(cfg, root)
    plan = plan_folds(rows, folds, train_languages, seed)
    _check_inputs(cfg, root, plan, reference)
    return cfg, root, plan, rows


def format_plan(plan: list[Fold], rows: dict[str, int]) -> str:
    """One line per fold: its targets (and their training rows, left out) and what it
    trains on."""
    lines = []
    for fold in plan:
        held = sum(rows[x] for x in fold.targets)
        lines.append(f"{fold.name}: targets {' '.join(fold.targets)} ({held} training rows "
                     f"held out); trains on {len(fold.train)} language(s), "
                     f"{sum(rows[x] for x in fold.train)} rows")
    return "\n".join(lines)


def crosslingual(config, out, folds: int | None = None, train_languages=None, reference=None,
                 overrides=(), data_dir=None, seed: int = 0, resume: bool = False,
                 verbose: int = 0, batch_size: int = 64) -> dict:
    """Run the Track C protocol of `config` into `out` (see the module docstring);
    returns the plan record with "rows" (the zero-shot table), "mean" and "zip"."""
    from kemo.training.trainer import train_or_keep

    cfg, root, plan, _ = protocol_plan(config, folds, train_languages, reference, overrides,
                                       data_dir, seed)
    out = Path(out).expanduser()
    record = _plan_record(config, overrides, seed, root, plan, reference)
    _open_out(out, record, resume)  # every check done: from here on files are written
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / PLAN_FILE, json.dumps(record, indent=1))
    preds = {}
    for k, fold in enumerate(plan, 1):
        fold_cfg = load_config(config, [*overrides, f"name={json.dumps(f'{cfg.name}-{fold.name}')}",
                                        f"data.languages={json.dumps(list(fold.train))}"])
        log.info(f"{fold.name} ({k}/{len(plan)}): training on {', '.join(fold.train)}; "
                 f"zero-shot targets {', '.join(fold.targets)}")
        log.info(f"{fold.name}: {train_or_keep(fold_cfg, out / fold.name, root, verbose)}")
        preds[fold.name] = _predict_fold(out / fold.name, fold, root, batch_size)
    return _write_results(out, record, plan, preds, root)
