"""The TCP sockets that processes listen on, read from Linux ``/proc`` (no tools, no root): what a test asserts
about every server it starts (torchrun, Triton, ...)."""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path
from typing import NamedTuple

LISTEN = "0A"  # the TCP state code of a listening socket in /proc/net/tcp{,6}


class Listener(NamedTuple):
    """One listening TCP socket: the process that holds it, its local address and port."""

    pid: int
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        """True on 127.0.0.0/8 or ::1 (also as ::ffff:127.x.y.z), the only addresses other hosts cannot reach."""
        address = ipaddress.ip_address(self.address)
        mapped = getattr(address, "ipv4_mapped", None)
        return (mapped or address).is_loopback


def _address(hex_address: str) -> str:
    """``0100007F`` → ``127.0.0.1``; IPv6 as four 32-bit words in the kernel's (host) byte order."""
    words = [int(hex_address[i : i + 8], 16) for i in range(0, len(hex_address), 8)]
    raw = b"".join(struct.pack("=I", word) for word in words)
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets ``pid`` holds open (empty once it has ended)."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = fd.readlink().name
            except OSError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:  # the process ended meanwhile
        pass
    return inodes


def listening_sockets(pids) -> list[Listener]:
    """Every TCP socket (IPv4 and IPv6) in LISTEN state held by one of ``pids``."""
    owner = {inode: pid for pid in pids for inode in _socket_inodes(pid)}
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:  # no IPv6 on this kernel
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state == LISTEN and inode in owner:
                hex_address, hex_port = local.split(":")
                found.append(Listener(owner[inode], _address(hex_address), int(hex_port, 16)))
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are running now (Linux ``/proc/<pid>/task/*/children``)."""
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
