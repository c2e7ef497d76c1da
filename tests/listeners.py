"""Which TCP sockets a set of processes listens on, read from Linux /proc (no psutil, ss or lsof, no root).

``/proc/net/tcp{,6}`` list every socket of this network namespace with its inode and state; ``/proc/<pid>/fd/*``
links to ``socket:[<inode>]`` for each socket a process holds. Tests assert with it that every server the course
starts (Triton, torchrun, Dask) listens on loopback only.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

LISTEN = "0A"  # the TCP state column of /proc/net/tcp*


class Listener(NamedTuple):
    """One listening TCP socket: the process that holds it, its local address and port."""

    pid: int
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        """True on 127.0.0.0/8 or ::1 (also as ::ffff:127.x.y.z): addresses no other host can reach."""
        return is_loopback(self.address)


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (``::ffff:127.0.0.1``)."""
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def decode_address(hex_address: str) -> tuple[str, int]:
    """``"0100007F:1F90"`` -> ``("127.0.0.1", 8080)``; IPv6 too (/proc writes each 32-bit word in host order)."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # little-endian words on x86/arm
    return str(ipaddress.ip_address(words)), int(port, 16)


def listening_inodes(proc: Path = Path("/proc")) -> dict[int, tuple[str, int]]:
    """``{socket inode: (address, port)}`` of every TCP socket in state LISTEN (IPv4 and IPv6)."""
    found = {}
    for table in ("tcp", "tcp6"):
        path = proc / "net" / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN:
                found[int(fields[9])] = decode_address(fields[1])
    return found


def socket_inodes(pid: int, proc: Path = Path("/proc")) -> set[int]:
    """The inodes of the sockets process ``pid`` holds open (empty once it is gone)."""
    inodes = set()
    try:
        fds = list((proc / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def listening_sockets(pids: Iterable[int], proc: Path = Path("/proc")) -> list[Listener]:
    """Every TCP socket in LISTEN held by one of ``pids``, sorted: ``Listener(pid, address, port)``."""
    listening = listening_inodes(proc)
    return sorted(Listener(pid, *listening[inode]) for pid in set(pids) for inode in socket_inodes(pid, proc)
                  if inode in listening)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are running now (``/proc/<pid>/task/*/children``)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                pass
    return tree


def descendants(pid: int) -> list[int]:
    """The pids of every live process below ``pid``."""
    return process_tree(pid)[1:]
