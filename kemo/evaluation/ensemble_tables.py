"""An ensemble's report.json as tables: its members side by side, who served which
language; plain text for `kemo ensemble`, (header, rows) for the report page.

Example:
    print(format_ensemble_report(report))     # report: an ensemble's report.json object
    members_table(Report.read(run_dir))       # (header, rows)
"""

from __future__ import annotations

from pathlib import Path

from kemo.run.report_file import (
    DEV, F1, MACRO, N, OVERALL, PER_LABEL, PER_LANGUAGE, SPLITS, VALIDATION, Report, Setting,
)


def format_ensemble_report(report: dict) -> str:
    """Members, which served which language, and the per-language tables of validation
    and dev (of `build_ensemble`'s report.json object): what `kemo ensemble` prints."""
    from kemo.evaluation.result_text import format_language_table

    report = Report.from_dict(report)
    parts = [format_members_table(report), format_served_by(report)]
    parts += ["\n" + format_language_table(report.split(split), split, report.decides_with)
              for split in SPLITS if report.split(split) is not None]
    return "\n".join(parts)


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
