"""The one place archgraph writes files: every output path a command was given is resolved and
checked before any work is done, then each output is written atomically and flushed to disk.

    plan = OutputPlan.check({"--json": "p.json"}, folders={"--emit-kernels": "k"},
                            inputs={"the input spec": ["net.yaml"]})
    ...                                   # compile, profile, render every content
    plan.write({"--json": text, "--emit-kernels": {"index.txt": ..., "a.cu": ...}})

Refused, each naming its option, why, and what to do instead (ArchgraphError, so the CLI exits
2 and nothing is written): an output that resolves to an input (symbolic and hard links
followed), to another output or inside a folder output; a file output that is a folder or whose
folder does not exist; a folder output that is a file, or a non-empty folder archgraph did not
make. archgraph marks the folders it makes with an index (`index.txt`, first line `# archgraph`
listing the files) and replaces such a folder whole.

A file is written to a temporary sibling, flushed and fsynced, renamed over the path, and the
folder is fsynced; a folder is built as a temporary sibling and swapped in. A failure leaves the
previous file or folder as it was and no temporaries behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from archgraph.errors import ArchgraphError

INDEX = "index.txt"  # in every folder archgraph writes
INDEX_MARK = "# archgraph"  # the index's first line starts with this

PathLike = str | os.PathLike[str]
Content = str | bytes
FolderContent = Mapping[str, Content]  # file name -> content; INDEX among them


def is_archgraph_folder(path: Path) -> bool:
    """Whether `path` is a folder archgraph wrote (it holds archgraph's index)."""
    try:
        with (path / INDEX).open("rb") as f:
            return f.read(len(INDEX_MARK)) == INDEX_MARK.encode()
    except OSError:
        return False


@dataclass(frozen=True)
class Output:
    """One output of a command: the option that named it, the path as given, resolved."""

    option: str
    given: str
    path: Path
    folder: bool = False


def _resolve(path: PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path)))).resolve()


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def _refuse(out: Output, why: str, hint: str, found: str | None = None) -> ArchgraphError:
    return ArchgraphError(f"{out.option} {out.given}: {why}", found=found, hint=hint)


class OutputPlan:
    """Output paths that passed every check; `write` writes them. Build with `check`."""

    def __init__(self, outputs: list[Output]) -> None:
        self.outputs = {o.option: o for o in outputs}

    def __contains__(self, option: str) -> bool:
        return option in self.outputs

    @classmethod
    def check(
        cls,
        files: Mapping[str, PathLike | None] = {},  # noqa: B006 - read only
        *,
        folders: Mapping[str, PathLike | None] = {},  # noqa: B006 - read only
        inputs: Mapping[str, Iterable[PathLike]] = {},  # noqa: B006 - read only
    ) -> OutputPlan:
        """Resolve and check every output (None: not asked for). `inputs` maps what an input
        is ("the input spec") to its paths; no output may be, or (a folder) contain, one."""
        outputs = [
            Output(option, os.fspath(given), _resolve(given), folder)
            for table, folder in ((files, False), (folders, True))
            for option, given in table.items()
            if given is not None
        ]
        sources = [(what, _resolve(p)) for what, paths in inputs.items() for p in paths]
        for i, out in enumerate(outputs):
            if not out.given.strip():
                raise _refuse(out, "the path is empty", "name a file to write")
            for what, source in sources:
                if _same(out.path, source):
                    raise _refuse(
                        out,
                        f"this is {what}; writing it would overwrite it",
                        "write the output to another path",
                        found=str(source),
                    )
                if out.folder and out.path in source.parents:
                    raise _refuse(
                        out,
                        f"the folder holds {what} ({source}); writing the folder would remove it",
                        "write the output to a new folder",
                    )
            for other in outputs[:i]:
                if _same(out.path, other.path):
                    raise _refuse(
                        out,
                        f"{other.option} {other.given} writes the same path",
                        "give each output its own path",
                    )
                for inner, outer in ((out, other), (other, out)):
                    if outer.folder and outer.path in inner.path.parents:
                        raise _refuse(
                            out,
                            f"{inner.option} {inner.given} is inside the folder that "
                            f"{outer.option} {outer.given} writes, which replaces it whole",
                            "give each output its own path, outside the folder",
                        )
        for out in outputs:  # then what is on disk at each path
            (_check_folder if out.folder else _check_file)(out)
        return cls(outputs)

    def write(self, contents: Mapping[str, Content | FolderContent]) -> None:
        """Write the contents of the checked outputs (option -> content; a mapping of file
        names to contents for a folder output). Every content is rendered before this is
        called, so a failure to render writes nothing."""
        for option, content in contents.items():
            out = self.outputs[option]
            if out.folder:
                assert isinstance(content, Mapping)
                write_folder(out.path, content)
            else:
                assert isinstance(content, str | bytes)
                write_file(out.path, content)


def _check_parent(out: Output) -> None:
    parent = out.path.parent
    if not parent.is_dir():
        raise _refuse(
            out,
            f"the folder {parent} does not exist",
            "create the folder first, or write to an existing one",
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _refuse(out, f"the folder {parent} is not writable", "write to another folder")


def _check_file(out: Output) -> None:
    if out.path.is_dir():
        raise _refuse(out, "this is a folder, not a file", "name a file to write")
    _check_parent(out)


def _check_folder(out: Output) -> None:
    if out.path.exists() and not out.path.is_dir():
        raise _refuse(
            out, "exists and is not a directory", "name a new folder, or one archgraph wrote"
        )
    if out.path.is_dir() and any(out.path.iterdir()) and not is_archgraph_folder(out.path):
        raise _refuse(
            out,
            "this folder holds files archgraph did not write, and writing it would replace them",
            f"name a new or empty folder; archgraph replaces only folders it wrote (with its "
            f"{INDEX})",
        )
    _check_parent(out)


def _fsync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write(f: BinaryIO, content: Content) -> None:
    f.write(content.encode() if isinstance(content, str) else content)
    f.flush()
    os.fsync(f.fileno())


def write_file(path: PathLike, content: Content) -> None:
    """Write a whole file or nothing: a temporary sibling, flushed to disk, renamed into place
    (removed on error), then the folder flushed so that the rename survives a crash."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            _write(f, content)
        os.chmod(tmp, 0o666 & ~_umask())  # what a plain open() would have given
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_folder(path: PathLike, files: FolderContent) -> None:
    """Write a folder whole or not at all: its files go into a temporary sibling, which then
    takes the folder's place (a previous folder is moved aside first and removed after)."""
    target = Path(path)
    text = files.get(INDEX)
    marked = text.startswith(INDEX_MARK) if isinstance(text, str) else False
    if not marked:
        raise ValueError(f"a folder output needs an {INDEX} that starts with {INDEX_MARK!r}")
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp"))
    old: Path | None = None
    try:
        for name, content in files.items():
            with (tmp / name).open("xb") as f:
                _write(f, content)
        _fsync_folder(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old"))
            os.replace(target, old / "folder")
        os.replace(tmp, target)
        _fsync_folder(target.parent)
    except BaseException:
        if old is not None and not target.exists():
            os.replace(old / "folder", target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
