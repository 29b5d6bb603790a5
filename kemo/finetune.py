"""Per-language continued fine-tuning of a finished multilingual run, served as one model.

    kemo finetune ~/kemo-runs/e5_all_full --languages deu eng --out ~/kemo-runs/e5_ft \
        --set train.epochs=2 --set model.freeze_layers=0

For each language L, `OUT/<L>` is a run of the source's config (or `--config`) on L's
training rows alone, starting from the source's weights (`model.init_from`) and
validating on the very rows the source validated L on (`kemo.data.splits.inherit_split`),
so the two compare on equal terms. A language whose run beats the source on validation
(macro-F1 at the setting each run decides with; dev is reported, never used to choose)
is kept; `OUT/system` is then a specialist ensemble (`kemo.ensemble`, `serve =
"specialist"`): the source, and each kept run serving its own language, with
per-language thresholds tuned on validation. `OUT/finetune.json` holds the table.
An interrupted command continues where it stopped: finished language runs are kept,
an interrupted one is resumed from its checkpoint.

Example:
    result = finetune("runs/e5_all", ["deu", "eng"], "runs/e5_ft", overrides=["train.epochs=1"])
    result["kept"]       # e.g. ["deu"]
    load_predictor(result["system"]).predict(["Ich bin so froh"], langs=["deu"])
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from kemo.config import load_config
from kemo.errors import InputError
from kemo.run import layout as L
from kemo.run.ensemble_file import is_ensemble_dir, read_ensemble_file
from kemo.run.report_file import DEV, F1, MACRO, N, PER_LANGUAGE, VALIDATION, Report, Setting

log = logging.getLogger(__name__)

TABLE_FILE = "finetune.json"
SYSTEM_DIR = "system"


def language_config(source: Path, lang: str, config=None, overrides=()):
    """The config of `source`'s fine-tuning on `lang`: `config` (a TOML path; default
    the source's own config.toml), `overrides` (`--set`), then `data.languages = [lang]`
    and `model.init_from = source`."""
    base = Path(config) if config else source / L.CONFIG
    return load_config(base, [*overrides, f"name={json.dumps(f'{source.name}-{lang}')}",
                              f"data.languages={json.dumps([lang])}",
                              f"model.init_from={json.dumps(str(source))}"])



def _language_row(report, split: str, lang: str) -> dict:
    """A run's scores of `lang`'s rows of `split`, at the setting it decides with."""
    section = report.section(split, report.decides_with) or report.section(split, Setting.GLOBAL)
    return (section or {}).get(PER_LANGUAGE, {}).get(lang, {})


def compare_language(source_report, run_report, lang: str) -> dict:
    """One row of the table: validation and dev macro-F1 of the source and of the
    fine-tuned run on `lang` (each a `kemo.run.report_file.Report`), and whether the
    fine-tuned run is kept (validation only)."""
    row = {"language": lang}
    for split, key in ((VALIDATION, "val"), (DEV, "dev")):
        for who, report in (("source", source_report), ("finetuned", run_report)):
            found = _language_row(report, split, lang)
            row[f"{key}_{who}"] = found.get(MACRO, {}).get(F1)
            if key == "val":
                row[f"val_rows_{who}"] = found.get(N)
    a, b = row["val_source"], row["val_finetuned"]
    row["kept"] = bool(a is not None and b is not None and b > a)
    return row


def format_table(rows: list[dict]) -> str:
    """The per-language table `kemo finetune` prints."""
    def f(x):
        return f"{x:.4f}" if isinstance(x, float) else "-"

    lines = [f"{'language':<9}{'val rows':>9}{'val source':>11}{'val tuned':>11}"
             f"{'dev source':>12}{'dev tuned':>11}  kept"]
    for r in rows:
        n = r.get("val_rows_finetuned")
        same = n == r.get("val_rows_source")
        lines.append(f"{r['language']:<9}{str(n) + ('' if same else '*'):>9}"
                     f"{f(r['val_source']):>11}{f(r['val_finetuned']):>11}"
                     f"{f(r['dev_source']):>12}{f(r['dev_finetuned']):>11}  "
                     f"{'fine-tuned' if r['kept'] else 'source'}")
    if any(r.get("val_rows_finetuned") != r.get("val_rows_source") for r in rows):
        lines.append("* validated on fewer rows than the source (a row cap in the config "
                     "left some of the source's validation rows out)")
    return "\n".join(lines)


def _check_languages(source_cfg, languages) -> list[str]:
    have = list(dict.fromkeys(source_cfg.data.languages))
    languages = list(dict.fromkeys(languages or have))
    missing = [lang for lang in languages if lang not in have]
    if missing:
        raise InputError(f"--languages: {', '.join(missing)} not among the source run's "
                         f"languages ({', '.join(have)}): nothing to compare it with")
    return languages


def _built_before(system: Path, members) -> bool:
    """True if `system` is a finished ensemble of exactly `members`; InputError if it
    holds anything else (it is not rebuilt over)."""
    if not system.exists():
        return False
    if is_ensemble_dir(system) and (system / L.REPORT).is_file():
        paths = [Path(p).resolve() for p in read_ensemble_file(system)["paths"]]
        if paths == [Path(m).resolve() for m in members]:
            log.info(f"{system}: built before from the same runs")
            return True
    raise InputError(f"{system}: exists and is not the finished ensemble of the runs kept now "
                     f"({', '.join(Path(m).name for m in members)}); move it away to build it")


def finetune(source, languages, out, config=None, overrides=(), data_dir=None,
             verbose: int = 0, batch_size: int = 64) -> dict:
    """Fine-tune `source` on each of `languages` into `out/<lang>`, compare on
    validation, and build the specialist ensemble `out/system` of the source and the
    kept runs. Returns {"rows", "kept", "system"} (`system` None when none is kept: the
    source itself is then the best system)."""
    from kemo.ensemble import build_ensemble
    from kemo.prediction.trained_run import read_run_state
    from kemo.training.trainer import train_or_keep

    source, out = Path(source).expanduser().resolve(), Path(out)
    # the run's files checked before anything is trained (its model is loaded once
    # per language, by model.init_from, not here as well)
    src = read_run_state(source)
    languages = _check_languages(src.config, languages)
    configs = {lang: language_config(source, lang, config, overrides) for lang in languages}
    out.mkdir(parents=True, exist_ok=True)
    for lang in languages:
        log.info(f"{lang}: fine-tuning {source.name} into {out / lang} ...")
        log.info(f"{lang}: {train_or_keep(configs[lang], out / lang, data_dir, verbose)}")
    src_report = Report.read(source)
    rows = [compare_language(src_report, Report.read(out / lang), lang) for lang in languages]
    kept = [r["language"] for r in rows if r["kept"]]
    system = out / SYSTEM_DIR if kept else None
    if kept and not _built_before(system, [source, *(out / lang for lang in kept)]):
        build_ensemble([source, *(out / lang for lang in kept)], system, data_dir=data_dir,
                       batch_size=batch_size, serve="specialist", per_language=True)
    result = {"source": str(source), "rows": rows, "kept": kept,
              "system": str(system) if system else None}
    (out / TABLE_FILE).write_text(json.dumps(result, indent=1))
    return result
