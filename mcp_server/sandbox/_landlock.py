"""Landlock through its three system calls: file-system, TCP and scope rules for the calling process.

The `landlock` package on PyPI covers file-system rules only; the TCP (ABI 4) and
signal/abstract-socket scoping (ABI 6) rules are what keep a function off the
network and away from processes outside its sandbox, so the calls are made here.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from typing import NamedTuple

from mcp_server.sandbox._linux import libc, no_new_privs, os_error

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # same number on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1, 2, 4, 8
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 16, 32, 64, 128
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 256, 512, 1024, 2048, 4096
REFER, TRUNCATE, IOCTL_DEV = 8192, 16384, 32768
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1, 2

READ = READ_FILE | READ_DIR
PRUNE = READ | TRUNCATE | REMOVE_DIR | REMOVE_FILE  # a full data folder: read, shrink and remove, add nothing
WRITE = READ | WRITE_FILE | TRUNCATE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_FIFO | MAKE_SYM | REFER


class Rule(NamedTuple):
    """One path-beneath rule: an O_PATH handle on the path and the rights allowed beneath it."""

    fd: int
    allowed: int
    path: str


class _RulesetAttr(ctypes.Structure):
    _fields_ = (("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64))


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    version = libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def handled_fs(abi: int) -> int:
    """Every file-system right this ABI knows, so that all of them are denied unless a rule allows them."""
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(
    *,
    abi: int,
    read: Iterable[str],
    write: Iterable[str],
    files: Iterable[str],
    deny_tcp: bool,
    prune: Iterable[str] = (),
) -> list[str]:
    """Confine this process (and all it starts) to `read`/`write` trees plus read-write `files`.

    With `deny_tcp` (ABI 4+) TCP bind and connect are refused; from ABI 6 signals and
    abstract unix sockets cannot reach outside the sandbox. Paths that do not exist
    are skipped and returned, so the caller can say so.
    """
    rules, missing = prepare(abi, read=read, write=write, files=files, prune=prune)
    try:
        enforce(abi, rules, deny_tcp=deny_tcp)
    finally:
        release(rules)
    return missing


def prepare(
    abi: int, *, read: Iterable[str], write: Iterable[str], files: Iterable[str], prune: Iterable[str] = ()
) -> tuple[list[Rule], list[str]]:
    """Open the rules' paths (O_PATH) ahead of `enforce`, so that opening them is not paid when it counts;
    the rules, and the paths that do not exist."""
    fs = handled_fs(abi)
    rules: list[Rule] = []
    missing: list[str] = []
    for paths, rights in ((read, READ), (write, WRITE), (files, READ_FILE | WRITE_FILE | TRUNCATE), (prune, PRUNE)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                missing.append(path)
                continue
            allowed = rights & fs if os.path.isdir(path) else rights & fs & _FILE_RIGHTS
            rules.append(Rule(fd, allowed, path))
    return rules, missing


def enforce(abi: int, rules: Iterable[Rule], *, deny_tcp: bool) -> None:
    """Add one Landlock layer allowing exactly `rules` (layers only ever narrow what earlier ones allow)."""
    layer = ruleset(abi, rules, deny_tcp=deny_tcp)
    try:
        restrict_self(layer)
    finally:
        os.close(layer)


def ruleset(abi: int, rules: Iterable[Rule], *, deny_tcp: bool) -> int:
    """A ruleset (an fd) allowing `rules`, to add more rules to and apply later: it can be built ahead of time."""
    attr = _RulesetAttr(handled_fs(abi), NET_BIND_TCP | NET_CONNECT_TCP if deny_tcp and abi >= 4 else 0, 0)
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    layer = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if layer < 0:
        raise os_error("landlock_create_ruleset")
    try:
        add_rules(layer, rules)
    except OSError:
        os.close(layer)
        raise
    return layer


def add_rules(layer: int, rules: Iterable[Rule]) -> None:
    for rule in rules:
        beneath = _PathBeneath(rule.allowed, rule.fd)
        if libc.syscall(_ADD_RULE, ctypes.c_int(layer), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(beneath), 0):
            raise os_error(f"landlock_add_rule for {rule.path}")


def restrict_self(layer: int) -> None:
    """Apply a ruleset to this process and all it starts from now on."""
    no_new_privs()
    if libc.syscall(_RESTRICT_SELF, ctypes.c_int(layer), ctypes.c_uint32(0)) != 0:
        raise os_error("landlock_restrict_self")


def release(rules: Iterable[Rule]) -> None:
    """Close the rules' path handles."""
    for rule in rules:
        os.close(rule.fd)
