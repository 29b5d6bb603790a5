"""Every path a kemo command writes: the one rule (`check_output`), and folders kemo
writes as a whole (`OwnedDir`, `kemo report --out`, `kemo explain --out`).

The rule (issue 30), applied by every writer (evaluate --json, explain --out, predict's
files and zip, train's run directory, ensemble, export, report, tokenize): a command
writes a path only if it does not exist, or kemo wrote it (its marker, manifest or
format says so) and `--overwrite` was given where the command takes it (a command
without the flag replaces only its own output). Anything else: one `InputError` line,
exit 2, nothing written. Each writer says how it knows kemo wrote a path; the
verdict and its message are `check_output`'s alone.

    check_output(out, "--json", ours=is_scores_file(out), overwrite=args.overwrite)

The same rule as `kemo export` (`kemo.serving.export_dir`): the folder is built beside its
final name and renamed into place once complete, with a marker file listing every
entry kemo wrote. An existing folder is replaced only when it is empty, or marked by
kemo and holding nothing else than what its marker lists; anything else is refused in
one line and left as it is. An interruption leaves the earlier folder, or none.

Example:
    folder = OwnedDir("report directory", ".kemo-report")
    folder.check(out)                     # before the work
    stage = folder.stage(out)
    try:
        ...write into stage...
        folder.publish(out, stage)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kemo.errors import InputError

log = logging.getLogger(__name__)


def check_output(path, what: str, ours: bool, overwrite: bool | None = None,
                 detail: str = "", instead: str = "another path") -> bool:
    """The one rule (see the module): `path` may be written when absent, or when kemo
    wrote it (`ours`) and `overwrite` is true (None: the command takes no --overwrite and
    replaces its own output). Else InputError naming `what` and `path`; `detail` says
    what it holds, `instead` the other way on. Returns whether `path` exists.

    Example:
        check_output("scores.json", "--json", ours=False)   # InputError if it exists
    """
    path = Path(path)
    if not os.path.lexists(path):
        return False
    if not ours:
        raise InputError(f"{what} {path}: exists and kemo did not write it{detail}; kemo "
                         f"never writes over it (give {instead}, or move it away)")
    if overwrite is False:
        raise InputError(f"{what} {path}: exists (kemo wrote it{detail}); give --overwrite "
                         f"to replace it, or {instead}")
    return True


def entries(root: Path) -> list[str]:
    """Every file and folder under `root`, relative, deepest first."""
    return sorted((p.relative_to(root).as_posix() for p in root.rglob("*")),
                  key=lambda p: (-p.count("/"), p))


@dataclass(frozen=True)
class OwnedDir:
    what: str  # how messages name the folder: "report directory"
    marker: str  # the marker file's name: ".kemo-report"
    legacy: tuple = ()  # name suffixes an unmarked folder of older kemo may hold

    def _written(self, out: Path) -> set[str] | None:
        try:
            d = json.loads((out / self.marker).read_text())
            files = d["files"]
            if d.get("kemo") != self.what or not all(isinstance(f, str) for f in files):
                return None
            return set(files)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def check(self, out: Path, legacy_ok: bool = False) -> list[str]:
        """What kemo wrote in `out` (replaced later); InputError if `out` holds
        anything else. `legacy_ok`: an unmarked folder holding only `legacy` names
        (written by an older kemo at the default place) counts as kemo's."""
        out = Path(out)
        if not out.exists():
            return []
        if not out.is_dir():
            raise InputError(f"{self.what} {out}: exists and is not a folder")
        present = entries(out)
        if not present:
            return []
        written = self._written(out)
        if written is None and legacy_ok and all(
                "/" not in p and p.endswith(self.legacy) for p in present):
            return present
        if written is None:
            raise InputError(f"{self.what} {out}: holds {', '.join(sorted(present)[:3])}, and "
                             f"no {self.marker} marker says kemo wrote it; kemo never "
                             "overwrites files it did not write (give a new or empty folder)")
        foreign = [p for p in present if p not in written]
        if foreign:
            raise InputError(f"{self.what} {out}: holds {foreign[-1]!r}, which kemo did not "
                             "write there; kemo never deletes it (move it away or give "
                             "another folder)")
        return present

    def stage(self, out: Path) -> Path:
        """A new folder beside `out` to build the content in."""
        out = Path(out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        except OSError as e:
            raise InputError(f"{self.what} {out}: cannot create ({e.strerror or e})") from None
        umask = os.umask(0)
        os.umask(umask)
        stage.chmod(0o777 & ~umask)
        return stage

    def publish(self, out: Path, stage: Path, legacy_ok: bool = False) -> None:
        """Mark `stage` and put it in place of `out`, deleting only kemo's entries."""
        out = Path(out)
        (stage / self.marker).write_text(json.dumps(
            {"kemo": self.what, "files": entries(stage) + [self.marker]}, indent=1) + "\n")
        old = self.check(out, legacy_ok)  # again: the folder may have changed meanwhile
        swap_in(out, stage, old)


def swap_in(out: Path, stage: Path, old: list[str]) -> None:
    """Put the complete folder `stage` in place of `out` (absent or empty, or holding
    only the entries `old`, deepest first, which kemo wrote), then delete those
    entries: a folder someone filled meanwhile stays, with a logged warning."""
    if not out.exists() or not old:
        if out.exists():
            out.rmdir()
        stage.rename(out)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    trash.rmdir()
    out.rename(trash)
    stage.rename(out)
    for rel in old:  # deepest first
        p = trash / rel
        try:
            p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
        except OSError:
            pass
    try:
        trash.rmdir()
    except OSError:
        log.warning(f"warning: {trash}: left in place (it holds files kemo did not write)")
