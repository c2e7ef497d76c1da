"""Process facts read from ``/proc`` (Linux, no psutil): group members, states, command lines."""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def stat_fields(pid: int | str) -> list[str] | None:
    """Return the fields of ``/proc/<pid>/stat`` after the command name (state first); None once it is gone."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()  # the name may hold ")"
    except OSError:
        return None


def process_group_members(pgid: int) -> list[int]:
    """Return the pids of live (not zombie) processes in process group ``pgid``."""
    fields = {entry.name: stat_fields(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()}
    return [int(pid) for pid, f in fields.items() if f is not None and f[0] != "Z" and int(f[2]) == pgid]


def command_line(pid: int) -> list[str] | None:
    """Return the ``argv`` of process ``pid``; None once it is gone."""
    try:
        return [part.decode(errors="replace") for part in (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")[:-1]]
    except OSError:
        return None

