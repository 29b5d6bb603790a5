"""How long kemo's light commands take to answer, start to exit, in fresh processes.

    python benchmarks/startup.py                      # this checkout
    python benchmarks/startup.py --rev 646b794        # a git revision beside it (before/after)
    python benchmarks/startup.py --repeats 5 --json /tmp/startup.json

Times `kemo --help`, `kemo <command> --help` for every command, `kemo --version`,
`kemo weights list`, `kemo weights where minilm-l6-en` and `kemo evaluate` (a dev
prediction of eng scored against the gold files; the predictions are the gold labels
themselves, written to a temporary folder), each as `python -m kemo.cli ...` with the
checkout first on sys.path, the median of `--repeats` runs after one warm-up run (the
OS file cache). `--rev REV` also times REV, exported with `git archive` into a temporary
folder (the working tree and the repository are left as they are), and prints the two
side by side. Prints the CPU model first: the figures are this machine's.

A command that exits with another code than 0 (or 1 for `weights where` of a model not
fetched yet) is shown as failed, with its exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMMANDS = ("train", "tokenize", "predict", "evaluate", "report", "explain", "export",
            "ensemble", "weights")
BUDGET_S = 1.5  # issue 22: light commands answer in under 1.5 s


def cases(preds: Path) -> list[tuple[str, list[str], tuple[int, ...]]]:
    """(label, argv, accepted exit codes) for every light command."""
    out = [("kemo --help", ["--help"], (0,)), ("kemo --version", ["--version"], (0,))]
    out += [(f"kemo {c} --help", [c, "--help"], (0,)) for c in COMMANDS]
    out += [("kemo weights list", ["weights", "list"], (0,)),
            ("kemo weights where minilm-l6-en", ["weights", "where", "minilm-l6-en"], (0, 1)),
            ("kemo evaluate PRED --split dev", ["evaluate", str(preds), "--split", "dev"], (0,))]
    return out


def gold_as_predictions(data_dir: Path, out: Path) -> Path:
    """pred_eng.csv holding dev/eng.csv's own labels (header capitalised): a valid
    prediction folder for `kemo evaluate` whatever the revision's run layout."""
    lines = (data_dir / "dev" / "eng.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    keep = [0] + [k for k, c in enumerate(header) if c not in ("id", "text")]
    import csv
    import io
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "pred_eng.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([rows[0][k].capitalize() if k else "id" for k in keep])
        for r in rows[1:]:
            w.writerow([r[k] for k in keep])
    return out


def time_command(checkout: Path, argv: list[str], env: dict) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kemo.cli", *argv], cwd=checkout, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return time.perf_counter() - start, proc.returncode, proc.stderr.strip()[-300:]


def time_checkout(checkout: Path, preds: Path, repeats: int, env: dict) -> dict:
    env = {**env, "PYTHONPATH": str(checkout)}  # this checkout's kemo, not the installed one
    where = subprocess.run([sys.executable, "-c", "import kemo.cli; print(kemo.cli.__file__)"],
                           cwd=checkout, env=env, capture_output=True, text=True).stdout.strip()
    assert Path(where).resolve().is_relative_to(checkout.resolve()), (where, checkout)
    results = {}
    for label, argv, ok in cases(preds):
        time_command(checkout, argv, env)  # warm-up: the OS file cache
        runs = [time_command(checkout, argv, env) for _ in range(repeats)]
        codes = {code for _, code, _ in runs}
        results[label] = {"median_s": round(statistics.median(t for t, _, _ in runs), 3),
                          "ok": codes <= set(ok), "exit_codes": sorted(codes),
                          "stderr": runs[-1][2] if not codes <= set(ok) else ""}
    return results


def export_revision(rev: str, dest: Path) -> Path:
    """`git archive REV` unpacked into `dest`: that revision's files, no git state."""
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT,
                             capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def describe(rev: str | None) -> str:
    args = ["git", "log", "-1", "--format=%h %s", rev or "HEAD"]
    line = subprocess.run(args, cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if rev is None:
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        line = f"working tree at {line[:60]}" + (" (+ uncommitted changes)" if dirty else "")
    return line[:90]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default=None, help="also time this git revision (before/after)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per command (median)")
    ap.add_argument("--data-dir", default=None,
                    help="Track A root (default $KEMO_DATA_DIR or ../shared/data/brighter/track_a)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)

    from kemo.machine import cpu_info, describe_cpu

    data_dir = Path(args.data_dir or os.environ.get("KEMO_DATA_DIR")
                    or ROOT.parent / "shared" / "data" / "brighter" / "track_a")
    env = {**os.environ, "KEMO_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    print(f"cpu: {describe_cpu(cpu_info())}")
    print(f"python: {sys.version.split()[0]}; median of {args.repeats} runs after a warm-up")
    tmp = Path(tempfile.mkdtemp(prefix="kemo-startup-"))
    try:
        preds = gold_as_predictions(data_dir, tmp / "preds")
        columns = {}
        if args.rev:
            columns[f"before ({describe(args.rev)[:40]})"] = time_checkout(
                export_revision(args.rev, tmp / "rev"), preds, args.repeats, env)
        columns[f"after ({describe(None)[:40]})" if args.rev else describe(None)] = \
            time_checkout(ROOT, preds, args.repeats, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    names = list(columns)
    print("\n" + " | ".join(f"[{k + 1}] {n}" for k, n in enumerate(names)))
    width = max(len(label) for label, _, _ in cases(Path("PRED")))
    print(f"{'command':<{width}}" + "".join(f"{f'[{k + 1}] s':>12}" for k in range(len(names)))
          + f"  under {BUDGET_S} s")
    for label, _, _ in cases(Path("PRED")):
        cells = []
        for n in names:
            r = columns[n][label]
            cells.append(f"{r['median_s']:>12.2f}" if r["ok"]
                         else f"{'exit ' + ','.join(map(str, r['exit_codes'])):>12}")
        last = columns[names[-1]][label]
        verdict = "yes" if last["ok"] and last["median_s"] < BUDGET_S else "NO"
        print(f"{label:<{width}}" + "".join(cells) + f"  {verdict}")
    for n in names:
        for label, r in columns[n].items():
            if not r["ok"]:
                print(f"note: {n}: {label}: {r['stderr'].splitlines()[-1] if r['stderr'] else ''}")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_info(), "columns": columns}, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
