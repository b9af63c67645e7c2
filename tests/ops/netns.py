"""Hosts of their own on this machine: network namespaces joined by a bridge.

Each host is a namespace with one interface (``eth0``) plugged into a bridge in
a "switch" namespace of its own (a fresh namespace: none of the machine's
firewall rules apply there). The test process joins the same bridge through an
interface in the root namespace, so it reaches every host as a client would.
Cutting a host off is setting its switch port down; healing, up again.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


class NamespacesUnavailable(Exception):
    pass


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def check_available() -> None:
    """Raises NamespacesUnavailable saying why when this machine cannot make the hosts."""
    if shutil.which("ip") is None:
        raise NamespacesUnavailable("iproute2's `ip` is not installed")
    if os.geteuid() != 0:
        raise NamespacesUnavailable("network namespaces need root (the test runs as uid %d)" % os.geteuid())
    probe = f"lgprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip("-n", probe, "link", "add", "br0", "type", "bridge")
    except subprocess.CalledProcessError as exc:
        raise NamespacesUnavailable(f"`ip netns add` or a bridge failed: {exc.stderr.strip()}") from None
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)


class Network:
    def __init__(self, hosts: list[str]) -> None:
        self.tag = f"{os.getpid() % 100000:05d}{random.randint(0, 99):02d}"
        self.subnet = f"10.{random.randint(100, 250)}.{random.randint(1, 250)}"
        self.switch = f"lg{self.tag}sw"
        self.tester = f"lgt{self.tag}"
        self.hosts = {name: f"lg{self.tag}{name}" for name in hosts}
        self.ips = {name: f"{self.subnet}.{10 + i}" for i, name in enumerate(hosts)}
        self.tester_ip = f"{self.subnet}.1"
        self._made: list[str] = []

    def up(self) -> None:
        _ip("netns", "add", self.switch)
        self._made.append(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        # The test process's own port on the switch.
        _ip("link", "add", self.tester, "type", "veth", "peer", "name", f"lgu{self.tag}")
        _ip("link", "set", f"lgu{self.tag}", "netns", self.switch)
        _ip("-n", self.switch, "link", "set", f"lgu{self.tag}", "name", "p-tester")
        _ip("-n", self.switch, "link", "set", "p-tester", "master", "br0", "up")
        _ip("addr", "add", f"{self.tester_ip}/24", "dev", self.tester)
        _ip("link", "set", self.tester, "up")
        for name, ns in self.hosts.items():
            _ip("netns", "add", ns)
            self._made.append(ns)
            inner, outer = f"lgi{self.tag}", f"lgo{self.tag}"
            _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "netns", self.switch)
            _ip("-n", ns, "link", "set", inner, "name", "eth0")
            _ip("-n", ns, "addr", "add", f"{self.ips[name]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", self.switch, "link", "set", outer, "name", f"p-{name}")
            _ip("-n", self.switch, "link", "set", f"p-{name}", "master", "br0", "up")

    def down(self) -> None:
        subprocess.run(["ip", "link", "del", self.tester], capture_output=True)
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._made.clear()

    def cut(self, name: str) -> None:
        _ip("-n", self.switch, "link", "set", f"p-{name}", "down")

    def heal(self, name: str) -> None:
        _ip("-n", self.switch, "link", "set", f"p-{name}", "up")

    def run_in(self, name: str, args: list[str]) -> list[str]:
        """The command line that runs ``args`` on host ``name``."""
        return ["ip", "netns", "exec", self.hosts[name], *args]


@contextmanager
def network(hosts: list[str]) -> Iterator[Network]:
    net = Network(hosts)
    try:
        net.up()
        yield net
    finally:
        net.down()
