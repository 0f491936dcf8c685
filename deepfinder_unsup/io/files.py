"""Safe file writing: never overwrite unless asked, never leave a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path


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
    its name; without that list (a folder written before session 52), those matching ``replaces``, glob patterns
    of the names a run gives its files."""
    if manifest:
        _write_manifest(staging, manifest)
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    targets = [out_dir / p.relative_to(staging) for p in files]
    if not overwrite:
        for t in sorted(targets, key=lambda t: t.name != last):  # the mark of a finished run named first
            if t.exists():
                raise FileExistsError(f"{t}: file exists; pass overwrite=True (CLI: --overwrite) to replace it")
    stale = _earlier_outputs(out_dir, manifest, replaces) - set(targets) if overwrite else set()
    order = sorted(range(len(files)), key=lambda i: files[i].name == last)
    for n, i in enumerate(order):
        if n == len(order) - 1:
            _remove_files(stale, out_dir)
        targets[i].parent.mkdir(parents=True, exist_ok=True)
        os.replace(files[i], targets[i])
    return targets


def _write_manifest(staging: Path, name: str) -> None:
    """``staging/name``: every file of the set (the list included), one relative POSIX path a line."""
    names = sorted({*(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()), name})
    header = "# the files this run wrote (deepfinder-unsup); --overwrite removes these, never other files\n"
    (staging / name).write_text(header + "".join(f"{n}\n" for n in names))


def _earlier_outputs(out_dir: Path, manifest: str | None, patterns: Sequence[str]) -> set[Path]:
    """The files an earlier run wrote under ``out_dir``: those its ``manifest`` lists, or, without one, the
    ``patterns``' (an unreadable list counts as none)."""
    try:
        listed = (line.strip() for line in (out_dir / manifest).read_text().splitlines()) if manifest else None
    except (OSError, UnicodeDecodeError):
        listed = None
    if listed is None:
        return {p for pattern in patterns for p in out_dir.glob(pattern) if p.is_file()}
    root = out_dir.resolve()
    paths = {out_dir / name for name in listed if name and not name.startswith("#")}
    return {p for p in paths if p.resolve().is_relative_to(root) and p.is_file()}  # never outside out_dir


def _remove_files(paths: set[Path], out_dir: Path) -> None:
    """``paths`` removed, then the folders under ``out_dir`` they leave empty."""
    for path in paths:
        path.unlink(missing_ok=True)
    for folder in sorted({p.parent for p in paths}, key=lambda f: len(f.parts), reverse=True):  # deeper first
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
