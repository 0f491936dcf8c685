"""Safe file writing: never overwrite unless asked, never leave a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..log import logger


class InputError(ValueError):
    """Bad user input (a file, a parameter); the message names the file and the problem."""


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return ``path`` as a Path, refusing an existing file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: file exists; pass overwrite=True (CLI: --overwrite) to replace it")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    An interrupted or failed write leaves the original file (if any) untouched and no partial file.
    """
    path = check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; an ordinary file honours the umask
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if path.exists() and not overwrite:  # appeared while we were writing
            raise FileExistsError(f"{path}: file appeared during the write; not overwritten")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_folder(
    staging: Path,
    out_dir: Path,
    overwrite: bool = False,
    last: str | None = None,
    manifest: str | None = None,
    replaces: Sequence[str] = (),
) -> list[Path]:
    """Move every file of ``staging`` to the same relative place under ``out_dir`` (``last`` moved last, as
    the mark that the set is complete); refuses before moving anything if a target exists and not
    ``overwrite``. ``manifest``: the name of a list of the set's files written with it (``cluster_outputs.txt``).
    With ``overwrite``, the files of an earlier run that this set does not hold are removed before ``last`` is
    moved (an earlier run's clusters_k12.xml or report would otherwise sit beside this run's as if they were its
    own): those its ``manifest`` lists, so a file of the user's own, or another command's output, stays whatever
    its name. Without that list (a folder written before session 52, or an unreadable list) the earlier run's
    files can only be told by their names (``replaces``, glob patterns), which a file of the user's may share: those
    are moved aside into ``earlier_outputs_<time>/`` rather than removed, so nothing is lost."""
    if manifest:
        _write_manifest(staging, manifest)
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    targets = [out_dir / p.relative_to(staging) for p in files]
    if not overwrite:
        for t in sorted(targets, key=lambda t: t.name != last):  # the mark of a finished run named first
            if t.exists():
                raise FileExistsError(f"{t}: file exists; pass overwrite=True (CLI: --overwrite) to replace it")
    listed = _listed_outputs(out_dir, manifest) if overwrite else set()
    by_name = _named_outputs(out_dir, replaces) if overwrite and listed is None else set()
    stale, unsure = (listed or set()) - set(targets), by_name - set(targets)
    order = sorted(range(len(files)), key=lambda i: files[i].name == last)
    for n, i in enumerate(order):
        if n == len(order) - 1:
            _remove_files(stale, out_dir)
            _move_aside(unsure, out_dir)
        targets[i].parent.mkdir(parents=True, exist_ok=True)
        os.replace(files[i], targets[i])
    return targets


def _write_manifest(staging: Path, name: str) -> None:
    """``staging/name``: every file of the set (the list included), one relative POSIX path a line."""
    names = sorted({*(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()), name})
    header = "# the files this run wrote (deepfinder-unsup); --overwrite removes these, never other files\n"
    (staging / name).write_text(header + "".join(f"{n}\n" for n in names))


def _listed_outputs(out_dir: Path, manifest: str | None) -> set[Path] | None:
    """The files an earlier run's ``manifest`` lists under ``out_dir`` (never a path outside it); None when there
    is no such list or it cannot be read."""
    if not manifest:
        return None
    try:
        listed = (out_dir / manifest).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    root = out_dir.resolve()
    paths = {out_dir / name.strip() for name in listed if name.strip() and not name.startswith("#")}
    return {p for p in paths if p.resolve().is_relative_to(root) and p.is_file()}


def _named_outputs(out_dir: Path, patterns: Sequence[str]) -> set[Path]:
    """The files under ``out_dir`` whose names match ``patterns`` (an earlier run's, or the user's)."""
    return {p for pattern in patterns for p in out_dir.glob(pattern) if p.is_file()}


def _move_aside(paths: set[Path], out_dir: Path) -> Path | None:
    """``paths`` moved into a new ``out_dir/earlier_outputs_<UTC time>/`` at the same relative places (the folders
    they leave empty removed); the folder, or None when there was nothing to move."""
    if not paths:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    aside = out_dir / f"earlier_outputs_{stamp}"
    n = 1
    while aside.exists():
        n += 1
        aside = out_dir / f"earlier_outputs_{stamp}-{n}"
    for path in paths:
        target = aside / path.relative_to(out_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    _remove_empty_folders({p.parent for p in paths}, out_dir)
    logger.warning(
        f"{out_dir}: no readable list of the earlier run's files (a folder from before the lists); {len(paths)} "
        f"file(s) named as its outputs are moved to {aside}, not removed: one of them may be yours"
    )
    return aside


def _remove_files(paths: set[Path], out_dir: Path) -> None:
    """``paths`` removed, then the folders under ``out_dir`` they leave empty."""
    for path in paths:
        path.unlink(missing_ok=True)
    _remove_empty_folders({p.parent for p in paths}, out_dir)


def _remove_empty_folders(folders: set[Path], out_dir: Path) -> None:
    """Each of ``folders`` removed if empty, then its parents up to ``out_dir`` (never it) as they empty."""
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):  # deeper first
        while folder != out_dir and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Return ``path`` as a Path if it is an existing file, else raise a clear error."""
    path = Path(path)
    if not path.exists():
        if any(c in str(path) for c in "*?["):  # a quoted pattern: tomo_idx order is the files' order, never guessed
            raise FileNotFoundError(f"{path}: {what} not found (a pattern the shell did not expand? name the files)")
        raise FileNotFoundError(f"{path}: {what} not found")
    if not path.is_file():
        raise InputError(f"{path}: expected a {what}, found a directory or special file")
    return path
