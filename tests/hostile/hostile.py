"""Functions that try to break out of, or break, the sandbox. Run only as source text inside it."""

import ctypes
import dataclasses
import datetime
import decimal
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time


class ExpenseNotFound(Exception):
    """Raised on purpose, to check that a function's own error comes back by name."""


def add(a, b):
    return a + b


def missing_expense(expense_id):
    raise ExpenseNotFound(f"no expense with id {expense_id}")


@dataclasses.dataclass
class Point:
    x: int
    when: datetime.date


def rich_value():
    return {
        "date": datetime.date(2024, 2, 29),
        "moment": datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.UTC),
        "time": datetime.time(8, 15),
        "tags": {"b", "a"},
        "frozen": frozenset({3, 1, 2}),
        "pair": (1, "x"),
        "price": decimal.Decimal("12.50"),
        "count": decimal.Decimal("3"),
        "where": pathlib.PurePosixPath("/a/b"),
        "point": Point(1, datetime.date(2000, 1, 1)),
    }


def not_json():
    return {"ok": [1, object()]}


def environment():
    return dict(os.environ)


def whoami():
    return {"pid": os.getpid(), "home": os.path.expanduser("~"), "cwd": os.getcwd(), "tmp": os.environ.get("TMPDIR")}


def save(key, value):
    folder = pathlib.Path("~/data").expanduser()
    folder.mkdir(exist_ok=True)
    (folder / f"{key}.txt").write_text(value)
    return str(folder / f"{key}.txt")


def load(key):
    return (pathlib.Path("~/data").expanduser() / f"{key}.txt").read_text()


def spin():
    while True:
        pass


def spin_in_c():
    return sum(range(10**12))


def sleep_forever():
    time.sleep(3600)


def ignore_sigterm():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(0.01)


def memory_bomb():
    hoard = []
    while True:
        hoard.append(bytearray(16 << 20))


def fork_bomb():
    forked = 0
    while True:
        try:
            os.fork()
        except OSError as exc:
            raise RuntimeError(f"fork refused after {forked} forks: {exc}") from exc
        forked += 1


def thread_bomb():
    stop = threading.Event()
    started = 0
    try:
        while True:
            threading.Thread(target=stop.wait, daemon=True).start()
            started += 1
    except RuntimeError as exc:
        raise RuntimeError(f"thread refused after {started} threads: {exc}") from exc
    finally:
        stop.set()


def huge_file():
    with open(os.path.expanduser("~/huge.bin"), "wb") as f:
        while True:
            f.write(b"x" * (1 << 20))


def write_file(path):
    with open(path, "w") as f:
        f.write("escaped")
    return path


def read_file(path):
    with open(path) as f:
        return f.read()


def connect(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(b"hello")
    return "connected"


def run_shell():
    return subprocess.run(["sh", "-c", "echo escaped"], capture_output=True, text=True).stdout


def system_shell(path):
    return os.system(f"echo escaped > {path}")


def print_megabytes():
    for _ in range(64):
        print("x" * (1 << 16))
    return "done"


def chatty():
    print("to stdout")
    print("to stderr", file=sys.stderr)
    return 1


def hard_exit():
    os._exit(3)


def recurse(n=0):
    return recurse(n + 1)


def leave_daemon():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(60)
        os._exit(0)
    return "left a daemon behind"


def linger(marker):
    for _ in range(4):
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
    pathlib.Path(marker).write_text("running")
    time.sleep(60)


def huge_result():
    return "x" * (2 << 20)


def list_dir(path):
    return sorted(os.listdir(path))


def priority():
    return {"policy": os.sched_getscheduler(0), "nice": os.nice(0)}


def kill_my_group():
    os.killpg(0, signal.SIGKILL)


def memory_in_children(children, mib):
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            hoard = b"x" * (mib << 20)  # written, so every page is resident
            time.sleep(60)
            os._exit(len(hoard) and 0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    return f"{children} children held {mib} MiB each"


def memfd_hoard(mib):
    kept = []
    chunk = b"x" * (1 << 20)
    for i in range(mib):
        if i % 32 == 0:  # memory files of 32 MiB each: below the file-size limit
            kept.append(os.memfd_create("hoard"))
        os.write(kept[-1], chunk)
    return f"memory files of {mib} MiB"


def now():
    return time.time()


def reply_early_and_linger(heartbeat):
    """Send the server a complete, valid reply on the call's own socket, then keep running."""
    import json
    import stat
    import struct

    def frame(message):
        body = json.dumps(message).encode()
        return struct.pack(">Q", len(body)) + body

    result = frame({"v": 1, "ok": True, "value": "early"})
    reply = frame({"v": 1, "stopped": None, "status": None, "cpu_s": None, "sizes": [0, 0, len(result)]}) + result
    sent = False
    for fd in range(3, 4096):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.write(fd, reply)
                sent = True
        except OSError:
            pass
    if not sent:
        raise RuntimeError("no socket to reply on")
    while True:
        with open(heartbeat, "a") as f:
            f.write(f"{time.time()}\n")
        time.sleep(0.01)


def fill_temp(files, size_kib=0):
    tmp = os.environ["TMPDIR"]
    chunk = b"x" * (size_kib << 10)
    for i in range(files):
        with open(os.path.join(tmp, f"f{i}"), "wb") as f:
            f.write(chunk)
    return files


def deep_chain(depth, where):
    os.chdir(os.environ["TMPDIR"] if where == "tmp" else os.environ["HOME"])
    for _ in range(depth):
        os.mkdir("d")
        os.chdir("d")
    return depth


def fill_data(files, size_kib, name):
    folder = pathlib.Path("~/data").expanduser() / name
    folder.mkdir(parents=True, exist_ok=True)
    chunk = b"x" * (size_kib << 10)
    for i in range(files):
        (folder / f"f{i}").write_bytes(chunk)
    return files


# -- escapes through the kernel's shared objects (x86_64 system call numbers) --------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.shmat.restype = ctypes.c_void_p
_KEY_SPEC_USER_KEYRING = -4
_KEYCTL_READ, _KEYCTL_SEARCH = 11, 10


def _checked(result):
    if result == -1 or result is None or result == ctypes.c_void_p(-1).value:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def read_key(description):
    """Find a key by description in the user keyring and read its payload."""
    key = _checked(_libc.syscall(250, _KEYCTL_SEARCH, _KEY_SPEC_USER_KEYRING, b"user", description.encode(), 0))
    buffer = ctypes.create_string_buffer(256)
    size = _checked(_libc.syscall(250, _KEYCTL_READ, key, buffer, 256))
    return buffer.raw[:size].decode()


def plant_key(description):
    """Add a key to the user keyring; its id."""
    payload = b"planted"
    return _checked(_libc.syscall(248, b"user", description.encode(), payload, len(payload), _KEY_SPEC_USER_KEYRING))


def shm_steal(key):
    """Attach the SysV segment with `key`, read what it holds and overwrite it."""
    segment = _checked(_libc.shmget(key, 0, 0))
    address = _checked(_libc.shmat(segment, None, 0))
    secret = ctypes.string_at(address, 7).decode()
    ctypes.memmove(address, b"owned!!", 7)
    return secret


def shm_leave(size):
    """Create a SysV segment of `size` bytes, touch it and leave it behind; its id."""
    segment = _checked(_libc.shmget(0, size, 0o1000 | 0o600))  # IPC_PRIVATE, IPC_CREAT
    address = _checked(_libc.shmat(segment, None, 0))
    ctypes.memset(address, 1, size)
    return segment


def unix_connect(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(2)
        conn.connect(path)
        conn.sendall(b"hello")
    return "connected"


def unix_sendto(path):
    """Reach a path-named datagram socket through a socketpair, whose datagram ends can send anywhere."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with ours, theirs:
        ours.sendto(b"hello", path)
    return "sent"


def talk_over_socketpair():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(b"ping")
        return theirs.recv(4).decode()


def identity():
    return {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups()}


def forbidden_syscalls():
    """Try system calls no function needs, with arguments that fail harmlessly when allowed; each one's errno."""
    tries = {
        "io_uring_setup": (425, 1, 0),  # EFAULT when allowed
        "unshare(CLONE_NEWUSER)": (272, 0x10000000),  # succeeds when allowed
        "setns": (308, -1, 0),  # EBADF
        "keyctl": (250, 0, _KEY_SPEC_USER_KEYRING, 0),  # succeeds
        "perf_event_open": (298, 0, 0, -1, -1, 0),  # EFAULT
        "ptrace": (101, 16, 999999, 0, 0),  # PTRACE_ATTACH: ESRCH
        "process_vm_readv": (310, 999999, 0, 0, 0, 0, 0),  # ESRCH
        "userfaultfd": (323, 1),  # UFFD_USER_MODE_ONLY: succeeds
        "personality": (135, 0x0040000),  # ADDR_NO_RANDOMIZE: succeeds
        "name_to_handle_at": (303, -100, 0, 0, 0, 0),  # EFAULT
        "open_tree": (428, -1, 0, 0),  # EBADF
        "fsopen": (430, 0, 0),  # EFAULT
        "kcmp": (312, 999999, 999999, 0, 0, 0),  # ESRCH
        "pidfd_getfd": (438, -1, 0, 0),  # EBADF
        "clone(CLONE_NEWUSER)": (56, 0x10000000 | signal.SIGCHLD, 0, 0, 0, 0),  # forks when allowed
    }
    found = {}
    for name, (number, *args) in tries.items():
        ctypes.set_errno(0)
        result = _libc.syscall(number, *(ctypes.c_long(a) for a in args))
        if result == 0 and name.startswith("clone"):
            os._exit(0)  # the child of a clone that was allowed
        if result > 0 and name.startswith("clone"):
            os.waitpid(result, 0)
        found[name] = ctypes.get_errno() if result == -1 else 0
    for name, family in (("socket(AF_NETLINK)", socket.AF_NETLINK), ("socket(AF_VSOCK)", 40)):
        try:
            socket.socket(family, socket.SOCK_DGRAM).close()
            found[name] = 0
        except OSError as exc:
            found[name] = exc.errno
    return found


def threads_and_forks_work():
    box = []
    worker = threading.Thread(target=box.append, args=("thread",))
    worker.start()
    worker.join()
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    return [*box, os.waitstatus_to_exitcode(status)]
