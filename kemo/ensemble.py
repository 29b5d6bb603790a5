"""Ensembles: several finished runs averaged into one run.

    kemo ensemble runs/minilm runs/e5 runs/mpnet --run-dir runs/ens [--weights 1 1 2]

The members' sigmoid probabilities are averaged (weighted, weights normalised to sum
to 1). Members may be trained on different languages and label sets (the 28-language
e5 run with an English-only MPNet run): each row of a language is averaged over the
members trained on it, each label over the members predicting it (`serving_weights`);
a text of no member's language, or of none given, over all of them. Thresholds are
tuned again on the validation rows the members share (`ensemble_data`: re-created from
each member's config; members of the same languages validated on different rows are
refused, naming what differs; members of different languages share, per language, the
rows every covering member validated on), globally and per language; the ensemble
decides per language when the first member's config says
`thresholds.per_language = true`. The ensemble's run directory holds `ensemble.json`
(members, weights, languages), `config.toml` (the first member's data settings, with
every member's languages), and, as a trained run, `thresholds.json`, `report.json`
(the ensemble and each member side by side, on its own languages' rows;
`meta.served_by`: which members served which language), `predictions_val.csv`,
`predictions_dev.csv` and `predictions/dev/` (the official pred_<lang>.csv layout).
`kemo.prediction.predictor.load_predictor` returns an `EnsembleRun` for it, so `predict`, `evaluate`,
`report`, `explain` and `export` take it like any run.

Example:
    result = build_ensemble(["runs/a", "runs/b"], "runs/ab")
    run = load_predictor("runs/ab")            # an EnsembleRun
    probs, decisions = run.predict(["I am so happy today!"])
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kemo.errors import InputError
from kemo.run import layout as L
from kemo.run.report_file import (
    DEV, F1, MACRO, N, OVERALL, PER_LABEL, PER_LANGUAGE, SPLITS, VALIDATION, Meta, Report,
    Setting,
)
from kemo.run.ensemble_file import (ENSEMBLE_FILE, FORMAT, check_member, is_ensemble_dir,
                                    member_identity, read_ensemble_file)
from kemo.evaluation.thresholds import ThresholdSearch

log = logging.getLogger(__name__)


@dataclass
class EnsembleRun:
    """A finished ensemble: the member runs, their weights and the tuned thresholds.

    A `kemo.prediction.predictor.Predictor`, as `kemo.run.read.Run` is (`config`,
    `label_names`, `thresholds`, `decide`, `predict_probs`, `predict`).
    """

    path: Path
    config: object  # the first member's Config (data settings)
    members: list
    weights: list[float]
    thresholds: ThresholdSearch
    language_labels: dict = field(default_factory=dict)  # as `kemo.run.read.Run`'s
    serve: str = "average"  # or "specialist": `serving_weights`

    @property
    def label_names(self) -> list[str]:
        return list(self.thresholds.label_names)

    def predict_probs(self, texts, batch_size: int = 64, rows=None, langs=None) -> np.ndarray:
        """The weighted mean of the members' sigmoid probabilities (each member's checked
        finite, naming its model file and the first bad row: `rows`). With `langs` (one
        code per row, None where unknown) a row is averaged over the members trained on
        its language (`serving_weights`); without, over every member predicting a label."""
        weights, parts = self.member_probs(texts, batch_size, rows, langs)
        return combine_probs(weights, parts, self.members, self.label_names)

    def member_probs(self, texts, batch_size: int = 64, rows=None, langs=None):
        """(`serving_weights` (rows, members, labels), [(row indices, probabilities)
        per member]): each member predicts only the rows it serves."""
        texts = [str(t) for t in texts]
        weights = serving_weights(self.members, self.weights, self.label_names, langs,
                                  len(texts), self.serve)
        parts = []
        for k, m in enumerate(self.members):
            need = np.flatnonzero(weights[:, k, :].sum(axis=1) > 0)
            p = m.predict_probs([texts[i] for i in need], batch_size,
                                None if rows is None else [rows[i] for i in need]) \
                if len(need) else np.zeros((0, len(m.label_names)), "float32")
            parts.append((need, p))
        return weights, parts

    def decide(self, probs, langs=None) -> np.ndarray:
        """0/1 decisions at the ensemble's thresholds, as `kemo.run.read.Run.decide`."""
        return self.thresholds.apply(probs, langs)

    def predict(self, texts, batch_size: int = 64, langs=None) -> tuple[np.ndarray, np.ndarray]:
        probs = self.predict_probs(texts, batch_size, langs=langs)
        return probs, self.decide(probs, langs)


def member_languages(member) -> list[str]:
    """The languages a member run was trained on (its config's `data.languages`; a table
    dataset's `data.language`, `kemo.data.dataset.trained_languages`)."""
    from kemo.data.dataset import trained_languages

    langs = trained_languages(member.config)
    return langs if langs is not None else list(dict.fromkeys(member.config.data.languages))


def union_labels(members) -> list[str]:
    """Every label some member predicts, in kemo's order (`kemo.data.brighter.label_order`:
    Track A's names in Track A's order, others in the members' order)."""
    from kemo.data.brighter import label_order

    return label_order(dict.fromkeys(n for m in members for n in m.label_names))


SERVE_MODES = ("average", "specialist")


def covering_members(langs_of, lang, serve: str = "average") -> list[int]:
    """Indices of the members that serve rows of `lang` (`langs_of`: each member's
    languages): every member trained on it ("average"), or of those only the ones
    trained on the fewest languages ("specialist": a member fine-tuned on `lang` alone
    serves it instead of the multilingual run it started from).

    Example:
        covering_members([ALL28, ["deu"]], "deu", "specialist")   # [1]
        covering_members([ALL28, ["deu"]], "eng", "specialist")   # [0]
    """
    covering = [k for k, ls in enumerate(langs_of) if lang in ls]
    if serve == "specialist" and covering:
        fewest = min(len(set(langs_of[k])) for k in covering)
        covering = [k for k in covering if len(set(langs_of[k])) == fewest]
    return covering


def serving_weights(members, weights, label_names, langs=None, n: int = None,
                    serve: str = "average") -> np.ndarray:
    """(rows, members, labels) averaging weights: member k serves label j of a row when
    it predicts j and `covering_members` (with `serve`) names it for the row's
    language; its share is its weight over the serving members' total. A row whose
    language no member (predicting j) was trained on, or with no language (`langs`
    None or a None entry), is served by every member predicting j (zero-shot for them).

    Example:
        w = serving_weights([e5_all, mpnet_eng], [0.5, 0.5], names, ["eng", "deu"])
        w[0, :, names.index("gratitude")]   # eng: [0.5, 0.5]; w[1, :, ...]: deu: [1.0, 0.0]
    """
    n = len(langs) if langs is not None else int(n or 0)
    has = np.array([[name in m.label_names for name in label_names] for m in members], float)
    base = np.asarray(weights, "float64")[:, None] * has  # (members, labels)
    w = np.broadcast_to(base, (n, *base.shape)).copy()
    if langs is not None:
        langs_of = [member_languages(m) for m in members]
        serving = {lang: set(covering_members(langs_of, lang, serve)) for lang in set(langs)}
        covers = np.array([[k in serving[lang] for k in range(len(members))]
                           for lang in langs], float)  # (n, m)
        served = w * covers[:, :, None]
        some = served.sum(axis=1, keepdims=True) > 0
        w = np.where(some, served, w)
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def combine_probs(weights, parts, members, label_names) -> np.ndarray:
    """The (rows, labels) weighted mean of `EnsembleRun.member_probs`' parts."""
    out = np.zeros((weights.shape[0], len(label_names)), "float64")
    for k, (m, (need, p)) in enumerate(zip(members, parts)):
        if len(need):
            cols = [list(label_names).index(n) for n in m.label_names]
            out[np.ix_(need, cols)] += weights[need][:, k, cols] * p
    return out.astype("float32")


def _check_weights(weights, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n:
        raise InputError(f"--weights: {len(weights)} values for {n} members")
    if not all(np.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise InputError(f"--weights: expected finite values >= 0 with a positive sum, "
                         f"got {weights}")
    return [w / sum(weights) for w in weights]


def load_ensemble(run_dir) -> EnsembleRun:
    """Load an ensemble run directory written by `build_ensemble` (members included)."""
    from kemo.run.read import load_run, read_run_state

    path = Path(run_dir)
    spec = read_ensemble_file(path)  # ensemble.json
    state = read_run_state(path)  # config, thresholds.json against ensemble.json's labels
    if state.report is None:  # report.json is written last: building it was cut short
        raise InputError(f"ensemble {path}: not finished (no {L.REPORT}: building it was "
                         "interrupted); build it again with kemo ensemble MEMBERS... "
                         f"--run-dir {path} --overwrite")
    members = []
    for i, p in enumerate(spec["paths"]):
        try:
            members.append(load_run(p))
        except InputError as e:
            raise InputError(f"ensemble {path}, member {i} ({p}): {e}") from None
        check_member(spec, i, p)  # the run it was built from, not a replacement
    names = union_labels(members)
    if names != spec["label_names"]:
        raise InputError(f"{path / ENSEMBLE_FILE}, field 'label_names': "
                         f"{', '.join(spec['label_names'])}, but the members predict "
                         f"{', '.join(names)}")
    return EnsembleRun(path, state.config, members, spec["weights"], state.thresholds,
                       state.report.language_labels(), spec["serve"])


# Config keys that decide which training rows become the validation split.
_SPLIT_KEYS = ("data.languages", "data.max_train_examples",
               "data.max_train_examples_per_language", "data.val_fraction",
               "data.split_seed (or train.seed)")


def _split_settings(cfg) -> tuple:
    from kemo.data.splits import split_seed

    return (list(cfg.data.languages), cfg.data.max_train_examples,
            cfg.data.max_train_examples_per_language, cfg.data.val_fraction, split_seed(cfg))


def check_same_validation(members, paths, vals) -> None:
    """Refuse members whose validation splits differ, naming the config keys (or ids)."""
    first = vals[0]
    for m, p, v in zip(members[1:], paths[1:], vals[1:]):
        if list(v.ids) == list(first.ids):
            continue
        keys = [k for k, a, b in zip(_SPLIT_KEYS, _split_settings(members[0].config),
                                     _split_settings(m.config)) if a != b]
        differs = (f"config {', '.join(f'{k}' for k in keys)} differ"
                   if keys else "the training files differ")
        only = len(set(v.ids) ^ set(first.ids))
        fix = (f"set {', '.join(keys)} alike" if keys else "train them on the same files")
        raise InputError(
            f"member {p}: validated on other rows than {paths[0]} ({len(v)} vs {len(first)} "
            f"rows, {only} ids in only one of them; {differs}): an ensemble's thresholds are "
            f"tuned on the validation split its members share ({fix})")


@dataclass
class EnsembleData:
    """The rows an ensemble is tuned and reported on, and who serves which language.

    `val`: per language, the validation rows every member trained on that language
    validated on (no member saw them in training); `dev`: every dev row of the members'
    languages; both with the union of the members' labels. `served_by`: language ->
    indices of the members trained on it.
    """

    val: object
    dev: object
    served_by: dict
    notes: list
    dataset: object = None  # a table dataset the members share (its dev files' shape)


def ensemble_data(members, paths, data_dir=None, serve: str = "average") -> EnsembleData:
    """Re-create each member's splits (`kemo.data.splits.load_data`) and combine them.

    Members trained on the same languages must validate on the same rows (else
    InputError naming the config keys that differ). Members trained on different
    languages share, per language, the rows in every covering member's validation
    split; a language they share none of is refused.
    """
    from kemo.data.examples import align_labels, concat_examples
    from kemo.data.splits import load_data

    names = union_labels(members)
    splits = [load_data(m.config, data_dir) for m in members]
    langs_of = [member_languages(m) for m in members]
    languages = list(dict.fromkeys(lang for ls in langs_of for lang in ls))
    served_by = {lang: covering_members(langs_of, lang, serve) for lang in languages}
    notes = []
    if all(set(ls) == set(langs_of[0]) for ls in langs_of):
        check_same_validation(members, paths, [s.val for s in splits])
        val_parts = [splits[0].val]
    else:
        val_parts = []
        for lang, covering in served_by.items():
            vals = [splits[k].val for k in covering]
            ids = [set(v.ids[v.langs == lang]) for v in vals]
            shared = set.intersection(*ids)
            if not shared:
                raise InputError(
                    f"language {lang}: members {', '.join(str(paths[k]) for k in covering)} "
                    "share no validation row of it (their data settings split it "
                    "differently): its thresholds would be tuned on nothing")
            if any(len(i) != len(shared) for i in ids):
                notes.append(f"{lang}: {len(shared)} validation rows shared by "
                             + ", ".join(f"{paths[k].name} ({len(i)})"
                                         for k, i in zip(covering, ids)))
            first = vals[0]
            val_parts.append(first.subset(np.flatnonzero(
                (first.langs == lang) & np.isin(first.ids, list(shared)))))
    val = concat_examples([align_labels(v, names) for v in val_parts])
    devs = []
    for lang, covering in served_by.items():
        dev = splits[covering[0]].dev
        if dev is not None and (dev.langs == lang).any():
            devs.append(align_labels(dev.subset(np.flatnonzero(dev.langs == lang)), names))
    dataset = splits[0].dataset if splits[0].dataset.layout != "track_a" else None
    return EnsembleData(val, concat_examples(devs) if devs else None, served_by, notes, dataset)


def build_ensemble(member_dirs, run_dir, weights=None, data_dir=None,
                   batch_size: int = 64, overwrite: bool = False,
                   serve: str = "average", per_language: bool | None = None) -> dict:
    """Average `member_dirs`, tune thresholds on their shared validation rows, report
    on dev, and write the ensemble run directory `run_dir`. Returns its report
    (`format_ensemble_report` renders it; progress goes to the `kemo.ensemble` logger).

    Members may be trained on different languages: each row is averaged over the
    members trained on its language (`serving_weights`), and the report's
    `meta.served_by` says which members served which language. `serve="specialist"`:
    of those, only the members trained on the fewest languages (`covering_members`).
    `per_language` (None: as the first member's config says) sets
    `thresholds.per_language` of the ensemble.
    """
    started = time.time()
    paths = [Path(p) for p in member_dirs]
    weights = _check_weights(weights, len(paths)) if len(paths) >= 2 else None
    run_dir = Path(run_dir)
    if serve not in SERVE_MODES:
        raise InputError(f"--serve: expected one of {', '.join(SERVE_MODES)}, got {serve!r}")
    members = _open_members(paths, run_dir, overwrite)
    if per_language is not None:  # the ensemble's config is the first member's
        first = members[0].config
        members[0] = dataclasses.replace(members[0], config=dataclasses.replace(
            first, thresholds=dataclasses.replace(first.thresholds, per_language=per_language)))
    data = ensemble_data(members, paths, data_dir, serve)
    ens = EnsembleRun(run_dir, None, members, weights, ThresholdSearch.untuned(
        union_labels(members)), serve=serve)
    log.info(f"ensemble of {len(members)} runs on {len(data.val)} validation"
             f"{f' and {len(data.dev)} dev' if data.dev is not None else ''} rows; weights "
             + ", ".join(f"{w:.3f}" for w in weights))
    for note in data.notes:
        log.info(f"  {note}")
    probs, parts = {}, {}
    for split, ex in (("val", data.val), ("dev", data.dev)):
        if ex is not None:
            t0 = time.time()
            w, parts[split] = ens.member_probs(ex.texts, batch_size, langs=ex.langs)
            probs[split] = combine_probs(w, parts[split], members, ens.label_names)
            log.info(f"  {split}: {len(ex)} rows predicted in {time.time() - t0:.1f}s")
    report, fin = _finish_report(members, paths, weights, data, probs, parts, started, serve)
    _write_ensemble_dir(run_dir, members, paths, weights, data, probs, report, fin, overwrite,
                        serve)
    return report.to_dict()


def format_ensemble_report(report: dict) -> str:
    """Members, which served which language, and the per-language tables of validation
    and dev (of `build_ensemble`'s report.json object): what `kemo ensemble` prints."""
    from kemo.evaluation.result_text import format_language_table

    report = Report.from_dict(report)
    parts = [format_members_table(report), format_served_by(report)]
    parts += ["\n" + format_language_table(report.split(split), split, report.decides_with)
              for split in SPLITS if report.split(split) is not None]
    return "\n".join(parts)


def _open_members(paths, run_dir, overwrite: bool = False):
    """The member runs, loaded, after the arguments and the run directory are checked."""
    from kemo.run.read import load_run
    from kemo.run.verdict import check_new_run_dir

    if len(paths) < 2:
        raise InputError("an ensemble needs at least two member runs")
    if len({p.resolve() for p in paths}) < len(paths):
        raise InputError("the same member run is given twice")
    if run_dir.resolve() in {p.resolve() for p in paths}:
        raise InputError(f"--run-dir {run_dir}: is one of the members")
    check_new_run_dir(run_dir, overwrite, command="ensemble")  # also: a writer holds it
    nested = next((p for p in paths if is_ensemble_dir(p)), None)
    if nested is not None:
        raise InputError(f"member {nested}: is itself an ensemble: list its members instead")
    members = []
    for p in paths:
        try:
            members.append(load_run(p))
        except InputError as e:
            raise InputError(f"member {p}: {e}" if str(p) not in str(e) else str(e)) from None
    return members


def _member_view(member, ex, part):
    """`ex` restricted to the rows of the member's languages that it served (all of them
    unless a specialist served some instead), with its labels, and its probabilities
    there (from its `part` of `EnsembleRun.member_probs`)."""
    from kemo.data.examples import align_labels

    need, p = part
    rows = np.intersect1d(np.flatnonzero(np.isin(ex.langs, member_languages(member))), need)
    return align_labels(ex.subset(rows), member.label_names), p[np.searchsorted(need, rows)]


def _finish_report(members, paths, weights, data, probs, parts, started, serve):
    """Thresholds tuned as the members' config says, the ensemble's report beside each
    member's (on the rows of its own languages); returns (Report, its Finish)."""
    from kemo.evaluation.classification_scores import full_report
    from kemo.run.finish import finish

    val, dev = data.val, data.dev
    # The first member's thresholds table, as training reads it (members share it).
    fin = finish(members[0].config.thresholds, val, dev, probs)
    scores = {}
    for k, (m, p) in enumerate(zip(members, paths)):
        own = m.thresholds.global_only()  # each member's thresholds, as tuned on this split
        val_m, pv = _member_view(m, val, parts["val"][k])
        own_per_lang = own.tuned_per_language(pv, val_m.labels, val_m.mask, val_m.langs)
        mine = {VALIDATION: full_report(val_m, pv, own, own_per_lang)}
        if dev is not None:
            dev_m, pd_ = _member_view(m, dev, parts["dev"][k])
            mine[DEV] = full_report(dev_m, pd_, own, own_per_lang)
        scores[str(p)] = mine
    meta = Meta(ensemble_of=[str(p) for p in paths], weights=weights, val_rows=len(val),
                total_seconds=round(time.time() - started, 1),
                served_by={lang: [str(paths[k]) for k in ks]
                           for lang, ks in data.served_by.items()},
                serve=serve, **fin.meta_fields())
    return Report(fin.splits, meta, members=scores), fin


def _write_ensemble_dir(run_dir, members, paths, weights, data, probs, report, fin,
                        overwrite: bool = False, serve: str = "average"):
    """Write the ensemble's run directory under its lock, each file whole or absent,
    `report.json` last (the mark of a finished run)."""
    from kemo.atomic import write_text
    from kemo.config import dump_config
    from kemo.run.finish import write_decisions
    from kemo.run.manifest import write_manifest
    from kemo.run.lock import RunLock
    from kemo.run.verdict import check_new_run_dir, clear_run_dir

    languages = list(data.served_by)
    first = members[0].config
    cfg = dataclasses.replace(first, name=run_dir.name,
                              data=dataclasses.replace(first.data, languages=languages))
    mixed = languages != member_languages(members[0])
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir):  # one writer: a second ensemble or training is refused
        if check_new_run_dir(run_dir, overwrite, "ensemble", locked=True):  # again, locked
            clear_run_dir(run_dir)
        write_manifest(run_dir, "ensemble")
        write_text(run_dir / L.CONFIG,
                   f"# kemo ensemble of {len(paths)} runs ({', '.join(p.name for p in paths)}): "
                   f"{ENSEMBLE_FILE} lists them.\n# The members' shared data settings "
                   "(languages, validation split), which predict and report read"
                   + (";\n# data.languages: every member's languages (each member's own "
                      "config.toml says how it split them)" if mixed else "")
                   + ".\n" + dump_config(cfg))
        write_text(run_dir / ENSEMBLE_FILE, json.dumps({
            "format": FORMAT, "label_names": union_labels(members),
            "members": [{"path": str(p.resolve()), "weight": w,
                         "languages": member_languages(m), "identity": member_identity(p)}
                        for p, w, m in zip(paths, weights, members)],
            **({"serve": serve} if serve != "average" else {}),
        }, indent=1))
        write_decisions(run_dir, fin, data.val, data.dev, probs, data.dataset)
        report.write(run_dir)  # last: its presence marks a finished run
        write_manifest(run_dir, "ensemble", finished=True)


def served_by_table(report: Report) -> tuple[list[str], list[list[str]]]:
    """(header, rows): each language, its validation rows and the members that served it
    (averaged for it), from report.json's `meta.served_by`."""
    served = report.meta.served_by or {}
    per_lang = report.section(VALIDATION, Setting.GLOBAL).get(PER_LANGUAGE, {})
    return (["language", "val rows", "members"],
            [[lang, str(per_lang.get(lang, {}).get(N, "")),
              ", ".join(Path(p).name for p in paths)] for lang, paths in served.items()])


def format_served_by(report: Report) -> str:
    """`served_by_table` as plain text, languages with the same members on one line."""
    header, rows = served_by_table(report)
    groups: dict[str, list[str]] = {}
    for lang, n, members in rows:
        groups.setdefault(members, []).append(f"{lang} ({n})" if n else lang)
    return "languages served (validation rows), by members:\n" + "\n".join(
        f"  {members}: {', '.join(langs)}" for members, langs in groups.items())


def members_table(report: Report) -> tuple[list[str], list[list[str]]]:
    """(header, rows): each member and the ensemble side by side: macro-F1 on validation
    (tuned thresholds) and on dev (0.5 and tuned), then dev F1 per label (tuned)."""
    has_dev = report.split(DEV) is not None
    split = DEV if has_dev else VALIDATION
    labels = list(report.section(split, Setting.GLOBAL)[OVERALL][PER_LABEL])

    def f1(splits, split, key, label=None):
        o = splits[split][key][OVERALL]
        value = o[MACRO][F1] if label is None else o[PER_LABEL].get(label, {}).get(F1)
        return "n/a" if value is None else f"{value:.4f}"

    header = ["run", "val tuned"] + (["dev @0.5", "dev tuned"] + labels if has_dev else [])
    rows = []
    for name, splits in [*((Path(n).name, r) for n, r in (report.members or {}).items()),
                         ("ENSEMBLE", report.splits)]:
        row = [name, f1(splits, VALIDATION, Setting.GLOBAL)]
        if has_dev:
            row += [f1(splits, DEV, Setting.AT_HALF), f1(splits, DEV, Setting.GLOBAL)]
            row += [f1(splits, DEV, Setting.GLOBAL, n) for n in labels]
        rows.append(row)
    return header, rows


def format_members_table(report: Report) -> str:
    """`members_table` as aligned plain text."""
    header, rows = members_table(report)
    width = max(len(r[0]) for r in rows + [header]) + 2
    return "\n".join(f"{r[0]:<{width}}" + "".join(f"{c[:9]:>10}" for c in r[1:])
                     for r in [header] + rows)
