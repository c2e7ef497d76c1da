"""Process facts read from ``/proc`` (Linux, no psutil): group members, states, command lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

PROC = Path("/proc")


def stat_fields(pid: int | str) -> list[str] | None:
    """Return the fields of ``/proc/<pid>/stat`` after the command name (state first); None once it is gone."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()  # the name may hold ")"
    except OSError:
        return None


def _live_pids() -> Iterator[tuple[int, list[str]]]:
    """Yield ``(pid, stat fields)`` of every process that is not a zombie."""
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := stat_fields(entry.name)) is not None and fields[0] != "Z":
            yield int(entry.name), fields


def process_group_members(pgid: int) -> list[int]:
    """Return the pids of live processes in process group ``pgid``."""
    return [pid for pid, fields in _live_pids() if int(fields[2]) == pgid]


def command_line(pid: int) -> list[str] | None:
    """Return the ``argv`` of process ``pid``; None once it is gone."""
    try:
        return [part.decode(errors="replace") for part in (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")[:-1]]
    except OSError:
        return None

