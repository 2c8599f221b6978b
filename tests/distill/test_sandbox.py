"""Hostile programs must fail their check and harm nothing; ordinary ones must run.

Each hostile program runs twice where it matters: with every layer, and with the Python audit hook
left out, to show the OS layer holds on its own (skipped on machines that lack that layer).
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid

import psutil
import pytest

from distill import sandbox
from distill.sandbox import MAX_TASKS, isolation, run_program

ISOLATION = isolation()
GUARDS = ISOLATION["guards"]


def needs(layer: str):
    return pytest.mark.skipif(layer not in GUARDS, reason=f"this machine lacks the {layer!r} layer: {ISOLATION['degraded']}")


def live_sandbox_processes() -> list[psutil.Process]:
    """Processes running the sandbox child that are still alive (zombies hold nothing and are reaped by init).
    Counted by command line, not machine-wide: other processes on a shared machine come and go."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if any(part.endswith("distill/sandbox.py") for part in cmdline) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def test_a_correct_program_passes_and_gets_its_stdin():
    result = run_program(
        "import sys\nnumbers = [int(x) for x in sys.stdin.read().split()]\nprint(sum(numbers))", stdin="1 2\n3\n"
    )
    assert result.ok and result.returncode == 0 and result.stdout == "6\n" and result.killed_reason is None
    assert not result.timed_out and not result.truncated


def test_the_program_may_use_its_own_directory_threads_and_the_standard_library():
    code = """
import json, threading, tempfile
open("scratch.txt", "w").write("kept")
with tempfile.NamedTemporaryFile("w", delete=False) as f:  # TMPDIR is the program's directory
    f.write("x")
threading.stack_size(2**26)  # the big-stack thread idiom of competitive programming
out = []
t = threading.Thread(target=lambda: out.append(open("scratch.txt").read()))
t.start(); t.join()
print(json.dumps([out[0], __name__]))
"""
    result = run_program(code)
    assert result.ok, result.stderr
    assert result.stdout == '["kept", "__main__"]\n'


def test_errors_are_reported_against_the_program_not_the_sandbox():
    result = run_program("x = 1\nraise ValueError('boom')")
    assert not result.ok and result.returncode == 1 and result.killed_reason is None
    assert 'File "solution.py", line 2' in result.stderr and "ValueError: boom" in result.stderr
    assert "sandbox.py" not in result.stderr


def test_infinite_loop_hits_the_wall_clock():
    start = time.monotonic()
    result = run_program("while True:\n    pass", timeout_s=1, cpu_s=10)
    assert result.timed_out and not result.ok and result.killed_reason == "wall-clock timeout (1 s)"
    assert time.monotonic() - start < 4
    assert not live_sandbox_processes()


def test_sleeping_forever_hits_the_wall_clock_and_spinning_hits_the_cpu_limit():
    assert run_program("import time\ntime.sleep(60)", timeout_s=0.5).timed_out
    result = run_program("while True:\n    pass", timeout_s=10, cpu_s=1)
    assert not result.timed_out and result.killed_reason == "CPU time limit (1 s)"


BOMB = "import os\nwhile True:\n    os.fork()"
COUNTED_FORKS = """
import os, time
forked = 0
try:
    while forked < 200:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        forked += 1
except OSError as err:
    print("stopped after", forked, type(err).__name__)
"""


def test_fork_bomb_cannot_fork():
    assert not live_sandbox_processes()
    start = time.monotonic()
    result = run_program(BOMB)
    assert time.monotonic() - start < 3
    assert not result.ok and result.killed_reason == "blocked: os.fork is not allowed"
    assert run_program(COUNTED_FORKS).stdout == "stopped after 0 PermissionError\n"
    assert not live_sandbox_processes()


@needs("task limit")
def test_fork_bomb_is_capped_by_the_kernel_without_the_python_guard():
    start = time.monotonic()
    result = run_program(COUNTED_FORKS, python_guard=False)
    forked = int(result.stdout.split()[2])
    assert forked <= MAX_TASKS - 1 and "BlockingIOError" in result.stdout  # EAGAIN from RLIMIT_NPROC
    assert not run_program(BOMB, python_guard=False).ok
    assert time.monotonic() - start < 5
    assert not live_sandbox_processes()  # the sleeping children died with the process group


def test_unbounded_allocation_hits_the_memory_limit():
    result = run_program("x = []\nwhile True:\n    x.append(' ' * 10**7)", memory_mb=256)
    assert not result.ok and result.killed_reason == "memory limit (256 MB)"


@pytest.mark.parametrize("python_guard", [True, pytest.param(False, marks=needs("read-only filesystem"))])
@pytest.mark.parametrize(
    "how", ["open({path!r}, 'w').write('x')", "import os\nos.close(os.open({path!r}, os.O_CREAT | os.O_WRONLY))"]
)
def test_writing_outside_its_directory_fails_and_leaves_nothing(how, python_guard):
    path = os.path.join(tempfile.gettempdir(), f"sandbox-escape-{uuid.uuid4().hex}")
    result = run_program(how.format(path=path), python_guard=python_guard)
    assert not result.ok
    assert ("PermissionError" if python_guard else "Read-only file system") in result.stderr
    assert not os.path.exists(path)


def test_deleting_outside_its_directory_is_refused():
    with tempfile.NamedTemporaryFile(delete=False) as victim:
        pass
    try:
        for code in (f"import os\nos.remove({victim.name!r})", f"import shutil\nshutil.rmtree({os.path.dirname(victim.name)!r})"):
            assert not run_program(code).ok
        assert os.path.exists(victim.name)
    finally:
        os.remove(victim.name)


@pytest.mark.parametrize("python_guard", [True, pytest.param(False, marks=needs("network namespace"))])
def test_a_socket_to_a_listening_local_port_never_arrives(python_guard):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'hello')"
        result = run_program(code, python_guard=python_guard)
        assert not result.ok
        assert ("sandbox: socket" if python_guard else "Network is unreachable") in result.stderr
        listener.settimeout(0.3)
        with pytest.raises(TimeoutError):
            listener.accept()


def test_huge_output_is_cut():
    result = run_program("while True:\n    print('x' * 1000)", max_output_bytes=10_000)
    assert result.truncated and not result.ok and result.killed_reason == "output limit (10000 bytes)"
    assert len(result.stdout) == 10_000


@pytest.mark.parametrize(
    ("code", "blocked"),
    [
        ("import subprocess\nsubprocess.run(['true'])", "subprocess.Popen"),
        ("import os\nos.system('true')", "os.system"),
        ("import ctypes", "import ctypes"),
        ("import os\nos.kill(1, 0)", "os.kill"),  # pid 1: init
        ("import resource\nresource.setrlimit(resource.RLIMIT_CPU, (100, 100))", "resource.setrlimit"),
        ("import _posixsubprocess\n_posixsubprocess.fork_exec()", "_posixsubprocess.fork_exec"),
    ],
)
def test_the_python_guard_names_what_it_blocked(code, blocked):
    result = run_program(code)
    assert not result.ok and result.killed_reason == f"blocked: {blocked} is not allowed"


def test_the_environment_is_stripped(monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    result = run_program("import os\nprint(sorted(os.environ))")
    assert "SECRET_TOKEN" not in result.stdout and "PATH" in result.stdout


def test_layers_are_reported():
    assert {"rlimits", "python audit hook"} <= set(GUARDS)
    assert set(ISOLATION) == {"guards", "degraded"}
    if os.geteuid() == 0 and not ISOLATION["degraded"]:
        assert {"network namespace", "read-only filesystem", "unprivileged uid", "task limit"} <= set(GUARDS)


def test_task_count_for_a_user_without_namespaces():
    # The fallback when no user namespace can be had: RLIMIT_NPROC must leave room for the user's processes.
    assert sandbox._tasks_of(os.getuid()) >= 1
