"""File-drop source: a watched directory of CSV (with a header row) or JSON Lines files for one dataset.

A sender writes a file under a temporary name (``x.csv.part``, ``x.tmp``, ``.x.csv``) and renames it when it
is complete; such names are never opened. Complete files are taken in name order, each once:

- A taken file is read whole and its SHA-256 kept; each line is a record whose position is
  ``{"file", "sha256", "line"}`` (lines count from 1; a CSV's header is line 1). The record's version is the
  checksum's prefix and the line, so the same file dropped twice gives the same event ids.
- A batch never runs past the end of a file. At the next poll, when the runner has stored the position of
  its last line (see :meth:`connectors.base.Source.poll`), the file is moved to ``done/``. A crash between
  publishing and moving leaves the file in place and the position at its last line: the restart reads
  nothing more of it and moves it. A restart resumes after the position's line when the checksum is
  unchanged.
- Refused, never read (again): a file changed after it was taken (its checksum differs at a restart or
  when it is finished), a name already in ``done/``, a symlink, anything not a regular file. Each is logged,
  counted (``on_file("rejected")``) and moved to ``rejected/``. A position naming a path outside the
  directory is ignored; no path outside it is ever opened.
- A line that cannot be read (undecodable UTF-8, invalid JSON or not an object, a CSV row with the wrong
  number of columns, no key) is a record with a :class:`~connectors.base.Problem` naming file and line: the
  runner quarantines it and the run goes on.

CSV values are strings, and an empty field is null (CSV cannot tell the two apart, and a contract's optional
fields expect null). Given the dataset's ``contract``, a CSV value of an int, long, float, double or boolean
field is converted (a value that does not convert is a bad line); without it every value stays a string. One record per line: a quoted CSV field spanning lines makes a row with the wrong column
count. ``columns`` maps contract fields to columns as in the SQL source (:func:`connectors.sql_source.map_columns`).

After the broker lost everything (the runner replays from the beginning), files already in ``done/`` are not
read again: move them back into the directory to replay them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.base import Problem, SourceRecord, SourceUnavailable
from connectors.sql_source import map_columns

__all__ = ["FORMATS", "FileSource", "FileSourceConfig"]

log = logging.getLogger("gsp.connector")

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}  # extension -> format
_TEMPORARY = (".part", ".tmp")


@dataclass(frozen=True, kw_only=True)
class FileSourceConfig:
    name: str
    key_field: str                 # contract field that identifies a record (the dataset's key)
    format: str | None = None      # "csv" or "jsonl" for every file; None: by extension, other files ignored
    columns: dict[str, str] = field(default_factory=dict)  # contract path -> column (CSV header or JSON key)
    contract: dict[str, Any] | None = None  # the dataset's Avro record: its number and boolean fields convert CSV text

    def __post_init__(self) -> None:
        if self.format not in (None, *FORMATS.values()):
            raise ValueError(f"unknown file format {self.format!r}; known: csv, jsonl")


class _Refused(Exception):
    """A file that is never read; the message says why."""


@dataclass
class _Taken:
    name: str
    sha256: str
    format: str
    lines: list[bytes]
    header: list[str]
    next: int  # index of the next line to read: the lines before it are published


class FileSource:
    """Publishes the complete files dropped into ``directory``; finished ones go to ``done/``, refused ones to ``rejected/``."""

    def __init__(self, directory: Path | str, config: FileSourceConfig, *,
                 on_file: Callable[[str], None] | None = None) -> None:
        """``on_file`` is told "done" or "rejected" for every file finished or refused (for a metric)."""
        self.name = config.name
        self._root = Path(directory).resolve()
        if not self._root.is_dir():
            raise ValueError(f"directory {str(directory)!r} does not exist")
        self._config = config
        self._on_file = on_file
        self._done, self._rejected = self._root / "done", self._root / "rejected"
        self._done.mkdir(exist_ok=True)
        self._rejected.mkdir(exist_ok=True)
        self._current: _Taken | None = None
        self._finished: _Taken | None = None   # its last line was returned: moved at the next poll
        self._resume: dict[str, Any] | None = None
        self._ignored: set[str] = set()
        self._conversions = _conversions(config.contract) if config.contract else {}
        self.files = {"done": 0, "rejected": 0}

    def start(self, position: dict[str, Any] | None) -> None:
        """Resume after ``position`` (in its file, if still there and unchanged); None: the first file in the directory."""
        self._current = self._finished = None
        self._resume = position

    def poll(self, max_records: int) -> list[SourceRecord]:
        try:
            return self._poll(max_records)
        except OSError as exc:  # the directory itself: gone, unreadable, not writable
            raise SourceUnavailable(f"directory {str(self._root)!r}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        pass

    def _poll(self, max_records: int) -> list[SourceRecord]:
        if self._finished is not None:
            self._finish(self._finished)
            self._finished = None
        records: list[SourceRecord] = []
        while len(records) < max_records:
            if self._current is None:
                self._current = self._take_next()
                if self._current is None:
                    break
            taken, before = self._current, len(records)
            records.extend(self._read(taken, max_records - len(records)))
            if taken.next < len(taken.lines):
                break
            self._current = None
            if len(records) > before:
                self._finished = taken  # moved once the runner has stored the position of its last line
                break
            self._finish(taken)  # nothing of it in this batch: every record of it is acknowledged already
        return records

    def _take_next(self) -> _Taken | None:
        resume, self._resume = self._resume, None
        if resume is not None:
            taken = self._resumed(resume)
            if taken is not None:
                return taken
        with os.scandir(self._root) as entries:
            names = sorted((e.name, e) for e in entries)
        for name, entry in names:
            if name.startswith(".") or name.lower().endswith(_TEMPORARY) or entry.is_dir(follow_symlinks=False):
                continue
            if self._config.format is None and Path(name).suffix.lower() not in FORMATS:
                if name not in self._ignored:
                    self._ignored.add(name)
                    log.info("file ignored: not .csv, .jsonl or .ndjson", extra=self._extra(name))
                continue
            try:
                if entry.is_symlink():
                    raise _Refused("a symbolic link")
                if (self._done / name).exists():
                    raise _Refused(f"a file of this name was already taken (done/{name})")
                data = self._read_bytes(name)
                return self._parse(name, data, hashlib.sha256(data).hexdigest(), after_line=0)
            except _Refused as refused:
                self._reject(name, str(refused))
            except FileNotFoundError:
                continue  # renamed or removed since the listing
        return None

    def _resumed(self, position: dict[str, Any]) -> _Taken | None:
        """The position's file, to go on after its line; None when it was finished (moved) or is refused."""
        name = str(position.get("file", ""))
        try:
            path = self._inside(name)
        except _Refused as refused:
            log.warning("stored position ignored: %s", refused, extra=self._extra(name))
            return None
        if not os.path.lexists(path) or (path.is_dir() and not path.is_symlink()):
            return None  # finished and moved to done/ (a directory: a position tampered with)
        try:
            data = self._read_bytes(name)
            sha256 = hashlib.sha256(data).hexdigest()
            if sha256 != position.get("sha256"):
                raise _Refused("changed after it was taken: its checksum differs from the stored position's")
            return self._parse(name, data, sha256, after_line=int(position.get("line", 0)))
        except _Refused as refused:
            self._reject(name, str(refused))
        except FileNotFoundError:
            pass
        return None

    def _parse(self, name: str, data: bytes, sha256: str, *, after_line: int) -> _Taken:
        lines = [line.removesuffix(b"\r") for line in data.split(b"\n")]
        lines[0] = lines[0].removeprefix(b"\xef\xbb\xbf")  # a byte-order mark, as spreadsheet exports write
        file_format = self._config.format or FORMATS[Path(name).suffix.lower()]
        header: list[str] = []
        if file_format == "csv":
            try:
                header = [h.strip() for h in next(csv.reader([lines[0].decode("utf-8")]), [])]
            except (UnicodeDecodeError, csv.Error):
                raise _Refused("its header row (line 1) cannot be read") from None
            if not any(header):
                raise _Refused("no header row (line 1 is empty)")
            absent = [column for column in self._config.columns.values() if column not in header]
            if absent:
                raise _Refused(f"no column {absent[0]!r} in its header row")
            after_line = max(after_line, 1)
        return _Taken(name=name, sha256=sha256, format=file_format, lines=lines, header=header, next=after_line)

    def _read(self, taken: _Taken, max_records: int) -> list[SourceRecord]:
        records: list[SourceRecord] = []
        while taken.next < len(taken.lines) and len(records) < max_records:
            line = taken.lines[taken.next]
            taken.next += 1
            if line.strip():
                records.append(self._record(taken, taken.next, line))
        return records

    def _record(self, taken: _Taken, line_no: int, line: bytes) -> SourceRecord:
        origin = f"{taken.name} line {line_no}"
        position = {"file": taken.name, "sha256": taken.sha256, "line": line_no}
        version = f"{taken.sha256[:16]}:{line_no}"

        def bad(rule: str, reason: str) -> SourceRecord:
            return SourceRecord(key=f"{taken.name}:{line_no}", version=version, value={}, position=position,
                                raw={"file": taken.name, "line": line_no}, origin=origin,
                                problem=Problem(rule=rule, reason=f"{origin}: {reason}", original=line))

        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return bad("file.line", f"not UTF-8 ({exc.reason} at byte {exc.start})")
        row: Any
        if taken.format == "jsonl":
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                return bad("file.line", f"invalid JSON ({exc.msg} at column {exc.colno})")
            if not isinstance(row, dict):
                return bad("file.line", f"a JSON {type(row).__name__} where an object was expected")
        else:
            try:
                cells = next(csv.reader([text]), [])
            except csv.Error as exc:
                return bad("file.line", f"not a CSV row ({exc})")
            if len(cells) != len(taken.header):
                return bad("file.line", f"{len(cells)} columns where the header has {len(taken.header)}")
            row = {column: cell if cell != "" else None for column, cell in zip(taken.header, cells, strict=True)}
        columns = self._config.columns
        value = map_columns({**dict.fromkeys(columns.values()), **row}, columns)
        if taken.format == "csv":
            for path, avro_type in self._conversions.items():
                try:
                    _convert(value, path, avro_type)
                except ValueError:
                    return bad("file.line", f"{path} is not {avro_type}: {_get(value, path)!r}")
        key = value.get(self._config.key_field)
        if key is None or isinstance(key, (dict, list)):
            return bad("file.key", f"no value for the key field {self._config.key_field}")
        return SourceRecord(key=str(key), version=version, value=value, position=position,
                            raw={"file": taken.name, "line": line_no, **row}, origin=origin)

    def _finish(self, taken: _Taken) -> None:
        """Move a file whose every line is acknowledged to done/, or to rejected/ if it changed while it was read."""
        try:
            if hashlib.sha256(self._read_bytes(taken.name)).hexdigest() != taken.sha256:
                raise _Refused("changed while it was read: its lines were published as first read, "
                               "the new content is not")
        except _Refused as refused:
            self._reject(taken.name, str(refused))
            return
        except FileNotFoundError:
            log.warning("finished file removed before it could be moved to done/", extra=self._extra(taken.name))
            return
        self._move(taken.name, self._done)
        self.files["done"] += 1
        if self._on_file is not None:
            self._on_file("done")

    def _reject(self, name: str, reason: str) -> None:
        log.warning("file refused, moved to rejected/: %s", reason, extra={**self._extra(name), "reason": reason})
        try:
            self._move(name, self._rejected)
        except FileNotFoundError:
            pass
        self.files["rejected"] += 1
        if self._on_file is not None:
            self._on_file("rejected")

    def _move(self, name: str, folder: Path) -> None:
        """Rename (a symlink itself, never its target) into ``folder``, under a free name. ``name`` comes from
        the directory's listing or passed :meth:`_inside`, so it names an entry of the directory itself."""
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"not a name in the directory: {name!r}")
        target, n = folder / name, 0
        while os.path.lexists(target):
            n += 1
            target = folder / f"{name}.{n}"
        os.rename(self._root / name, target)

    def _inside(self, name: str) -> Path:
        """The path of ``name`` in the directory; _Refused for anything that could lead outside it."""
        if not name or ".." in name or "/" in name or "\\" in name or "\x00" in name or name.startswith("."):
            raise _Refused(f"unsafe file name {name!r}")
        path = self._root / name
        if path.resolve().parent != self._root and not path.is_symlink():
            raise _Refused(f"{name!r} is outside the directory")
        return path

    def _read_bytes(self, name: str) -> bytes:
        """The whole file, opened without following a symlink; _Refused if it is not a regular file."""
        path = self._inside(name)
        # O_NOFOLLOW: a file swapped for a symlink since the listing fails instead of being followed;
        # O_NONBLOCK: a FIFO does not hang the open.
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            if path.is_symlink():
                raise _Refused("a symbolic link") from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _Refused("not a regular file")
            with os.fdopen(fd, "rb", closefd=False) as file:
                return file.read()
        finally:
            os.close(fd)

    def _extra(self, file: str) -> dict[str, Any]:
        return {"stage": "connector", "connector": self.name, "file": file}


_CONVERT: dict[str, Callable[[str], Any]] = {
    "int": int, "long": int, "float": float, "double": float,
    "boolean": lambda text: {"true": True, "false": False, "1": True, "0": False}[text.strip().lower()],
}


def _conversions(schema: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Field path -> Avro type, for every field of ``schema`` a CSV string must be converted for."""
    out: dict[str, str] = {}
    for f in schema.get("fields", []):
        branches = [t for t in (f["type"] if isinstance(f["type"], list) else [f["type"]]) if t != "null"]
        if f["name"] == "header" or len(branches) != 1:
            continue
        t = branches[0]
        name = t.get("type") if isinstance(t, dict) else t
        if name in _CONVERT:
            out[prefix + f["name"]] = str(name)
        elif name == "record" and isinstance(t, dict):
            out.update(_conversions(t, prefix + f["name"] + "."))
    return out


def _get(value: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None  # type: ignore[assignment]
    return value


def _convert(value: dict[str, Any], path: str, avro_type: str) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        value = value.get(part)  # type: ignore[assignment]
        if not isinstance(value, dict):
            return
    if isinstance(value.get(leaf), str):
        try:
            value[leaf] = _CONVERT[avro_type](value[leaf])
        except KeyError:
            raise ValueError(value[leaf]) from None
