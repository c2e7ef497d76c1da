"""The /proc listener reader that the lessons' watcher (tests/conftest.py) and the server tests rely on."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from listeners import is_loopback, listening_sockets, process_tree

CHILD = ("import socket, sys, time; s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(); "
         "print(s.getsockname()[1], flush=True); time.sleep(30)")


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("0.0.0.0", False)])
def test_a_child_listener_is_found_with_its_address(host, loopback):
    child = subprocess.Popen([sys.executable, "-c", CHILD, host], stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        assert child.pid in process_tree(os.getpid())
        found = [x for x in listening_sockets(process_tree(os.getpid())) if x.port == port]
        assert [(x.pid, x.address, x.loopback) for x in found] == [(child.pid, host, loopback)]
    finally:
        child.kill()
        child.wait()
    time.sleep(0.1)
    assert not [x for x in listening_sockets(process_tree(os.getpid())) if x.port == port]


def test_ipv6_and_mapped_loopback():
    assert is_loopback("::1") and is_loopback("::ffff:127.0.0.1") and is_loopback("127.3.2.1")
    assert not is_loopback("::") and not is_loopback("0.0.0.0") and not is_loopback("::ffff:10.0.0.1")
