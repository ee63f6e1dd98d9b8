"""Functions that try to break out of, or break, the sandbox. Run only as source text inside it."""

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
