"""An ensemble's report.json as tables: its members side by side, who served which
language; plain text for `kemo ensemble`, (header, rows) for the report page.

Example:
    print(format_ensemble_report(report))     # report: an ensemble's report.json
"""

from __future__ import annotations

from pathlib import Path


def format_ensemble_report(report: dict) -> str:
    """Members, which served which language, and the per-language tables of validation
    and dev: what `kemo ensemble` prints."""
    from kemo.evaluation.report import format_language_table

    parts = [format_members_table(report), format_served_by(report)]
    parts += ["\n" + format_language_table(report[split], split, report["meta"]["decides_with"])
              for split in ("validation", "dev") if split in report]
    return "\n".join(parts)


def served_by_table(report: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows): each language, its validation rows and the members that served it
    (averaged for it), from report.json's `meta.served_by`."""
    served = report.get("meta", {}).get("served_by") or {}
    per_lang = report["validation"]["tuned_thresholds"].get("per_language", {})
    return (["language", "val rows", "members"],
            [[lang, str(per_lang.get(lang, {}).get("n", "")),
              ", ".join(Path(p).name for p in paths)] for lang, paths in served.items()])


def format_served_by(report: dict) -> str:
    """`served_by_table` as plain text, languages with the same members on one line."""
    header, rows = served_by_table(report)
    groups: dict[str, list[str]] = {}
    for lang, n, members in rows:
        groups.setdefault(members, []).append(f"{lang} ({n})" if n else lang)
    return "languages served (validation rows), by members:\n" + "\n".join(
        f"  {members}: {', '.join(langs)}" for members, langs in groups.items())


def members_table(report: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows): each member and the ensemble side by side: macro-F1 on validation
    (tuned thresholds) and on dev (0.5 and tuned), then dev F1 per label (tuned)."""
    has_dev = "dev" in report
    split = "dev" if has_dev else "validation"
    labels = list(report[split]["tuned_thresholds"]["overall"]["per_label"])

    def f1(rep, split, key, label=None):
        o = rep[split][key]["overall"]
        value = o["macro"]["f1"] if label is None else o["per_label"].get(label, {}).get("f1")
        return "n/a" if value is None else f"{value:.4f}"

    header = ["run", "val tuned"] + (["dev @0.5", "dev tuned"] + labels if has_dev else [])
    rows = []
    for name, rep in [*((Path(n).name, r) for n, r in report["members"].items()),
                      ("ENSEMBLE", report)]:
        row = [name, f1(rep, "validation", "tuned_thresholds")]
        if has_dev:
            row += [f1(rep, "dev", "threshold_0.5"), f1(rep, "dev", "tuned_thresholds")]
            row += [f1(rep, "dev", "tuned_thresholds", n) for n in labels]
        rows.append(row)
    return header, rows


def format_members_table(report: dict) -> str:
    """`members_table` as aligned plain text."""
    header, rows = members_table(report)
    width = max(len(r[0]) for r in rows + [header]) + 2
    return "\n".join(f"{r[0]:<{width}}" + "".join(f"{c[:9]:>10}" for c in r[1:])
                     for r in [header] + rows)
