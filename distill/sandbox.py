"""Run model-written Python programs in a locked-down, throwaway child process.

`run_program(code, stdin)` writes the program into a fresh temporary directory and runs this file as
a script (`python -I -S -B`: isolated, no site-packages, so the standard library only); as `__main__`
it builds the cage, then executes the program. `SandboxResult.guards` lists the layers put in place,
`.degraded` those this machine could not provide, and why.

OS-enforced (the kernel holds these whatever the program does, C code included):
  * wall clock: the program runs in a session of its own, whose process group is killed at `timeout_s`;
  * rlimits: CPU seconds, address space (`memory_mb`), file size (which also caps stdout and stderr,
    both written to files), open files, no core dumps;
  * network: a new, empty network namespace (not even loopback is up): it reaches nothing, this
    machine's own services included;
  * filesystem: a private mount namespace where every mount but the program's directory is read-only;
  * identity: started as root, the child becomes a fresh unprivileged uid (random, per run), so
    RLIMIT_NPROC holds (the kernel exempts root) at MAX_TASKS processes + threads, and it can neither
    signal other processes nor read root's files. As a normal user, a user namespace gives the
    network and mount namespaces instead.
Python-level (an audit hook, PEP 578, set before the program runs): sockets, fork, exec, spawn,
subprocess, os.system, signalling other processes, changing rlimits and ctypes raise PermissionError,
as does changing files outside the program's directory. A second net with a clear message, not a
boundary: native code could get around it, which is why ctypes is blocked and the OS layers exist.
Not isolated: reading world-readable files, the process list (no PID namespace), CPU and memory
bandwidth shared with other processes (that needs a cgroup).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The child runs this file in a fresh interpreter for every test case, so its start-up time is
# verification throughput: only os, sys, ctypes and resource load there. The parent's heavier
# modules (subprocess, tempfile, signal) are imported inside the functions that use them.

PROGRAM_FILE = "solution.py"
MAX_TASKS = 16  # processes + threads: room for the "run main() in a big-stack thread" idiom, not for a bomb
_CLONE_NEWNS, _CLONE_NEWUSER, _CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
_MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
# Per-mount flags a read-only remount must restate: the kernel refuses to drop locked ones.
_MOUNT_FLAGS = {"nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21}
_BLOCKED = ("socket.", "ctypes.", "os.fork", "os.exec", "os.spawn", "os.posix_spawn", "os.system", "subprocess.Popen")
_BLOCKED += ("os.kill", "resource.setrlimit", "resource.prlimit")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# Audit events that change the filesystem, and which of their arguments are the paths changed.
_PATH_EVENTS = {"os.rename": (0, 1), "os.link": (0, 1), "os.symlink": (1,), "shutil.rmtree": (0,)}
_PATH_EVENTS |= {e: (0,) for e in ("os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime")}


# ---------------------------------------------------------------- the child: this file as a script


def _child_main(argv: list[str]) -> None:
    uid, cpu_s, memory_bytes, file_bytes, report_fd, python_guard = (int(a) for a in argv)
    guards, degraded = _isolate(None if uid < 0 else uid, cpu_s, memory_bytes, file_bytes)
    os.write(report_fd, "\n".join([f"+{g}" for g in guards] + [f"-{d}" for d in degraded]).encode())
    os.close(report_fd)  # before the program runs, so nothing it starts can hold the report open
    with open(PROGRAM_FILE, encoding="utf-8") as f:
        source = f.read()
    if python_guard:
        _install_guard(os.path.realpath(os.getcwd()))
    main = type(sys)("__main__")  # a clean __main__: the program must not see this file's globals
    main.__file__, main.__builtins__ = PROGRAM_FILE, __builtins__
    sys.modules["__main__"], sys.argv = main, [PROGRAM_FILE]
    try:
        exec(compile(source, PROGRAM_FILE, "exec"), vars(main))
    except SystemExit:
        raise
    except BaseException as err:  # report it as Python would, without this file's frames on top
        import traceback

        traceback.print_exception(type(err), err, err.__traceback__.tb_next)
        sys.exit(1)


def _isolate(uid: int | None, cpu_s: int, memory_bytes: int, file_bytes: int) -> tuple[list[str], list[str]]:
    """Apply the OS layers that this machine allows; `(applied, missing with why)`."""
    import ctypes
    import resource

    libc = ctypes.CDLL(None, use_errno=True)
    guards, degraded = [], []
    root, uid0, gid0 = os.geteuid() == 0, os.getuid(), os.getgid()
    namespaces = libc.unshare(_CLONE_NEWNET | _CLONE_NEWNS | (0 if root else _CLONE_NEWUSER)) == 0
    if namespaces:
        if not root:  # map ourselves into the new user namespace, so files we create keep our uid
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid0} {uid0} 1"), ("gid_map", f"{gid0} {gid0} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        guards.append("network namespace")
        try:
            writable = _readonly_filesystem(libc, expose=uid is not None)
            guards.append("read-only filesystem")
            degraded += [f"read-only filesystem: still writable: {', '.join(writable)}"] if writable else []
        except OSError as err:
            degraded.append(f"read-only filesystem: {err}")
    else:
        why = os.strerror(ctypes.get_errno())
        degraded.append(f"namespaces: unshare failed ({why}); network and files are guarded in Python only")
    if uid is not None and "read-only filesystem" not in guards and any(map(_closed_ancestors, _needed_paths())):
        degraded.append("unprivileged uid: the standard library lies in a private directory and could not be exposed")
        uid = None
    limits = {resource.RLIMIT_CPU: (cpu_s, cpu_s + 1), resource.RLIMIT_AS: (memory_bytes,) * 2}
    limits |= {resource.RLIMIT_FSIZE: (file_bytes,) * 2, resource.RLIMIT_NOFILE: (64, 64), resource.RLIMIT_CORE: (0, 0)}
    for kind, value in limits.items():
        resource.setrlimit(kind, value)
    guards.append("rlimits")
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        guards.append("unprivileged uid")
    # RLIMIT_NPROC counts every task of the real uid: ours alone with a fresh uid or a user namespace,
    # all of the user's otherwise (so the user's current count is added), and root is never limited.
    if uid is not None or namespaces:
        resource.setrlimit(resource.RLIMIT_NPROC, (MAX_TASKS, MAX_TASKS))
        guards.append("task limit")
    elif not root:
        shared = _tasks_of(uid0) + MAX_TASKS
        resource.setrlimit(resource.RLIMIT_NPROC, (shared, shared))
        guards.append("task limit (shared with the user's other processes)")
    else:
        degraded.append("task limit: root is exempt from RLIMIT_NPROC; fork is blocked in Python only")
    return guards, degraded


def _mount(libc, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    args = (None if s is None else s.encode() for s in (source, target, fstype))
    if libc.mount(*args, flags, None if data is None else data.encode()) != 0:
        import ctypes

        raise OSError(ctypes.get_errno(), f"mount {target}: {os.strerror(ctypes.get_errno())}")


def _readonly_filesystem(libc, expose: bool) -> list[str]:
    """In the private mount namespace, remount all but the working directory read-only; the failures."""
    work = os.getcwd()
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)  # so nothing below propagates to the host
    if expose:
        _expose(_needed_paths(), libc)
    _mount(libc, work, work, None, _MS_BIND)  # a mount of its own, so it can stay writable
    os.chdir(work)  # onto that new mount: the old cwd lies on the mount about to turn read-only
    failed = []
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split() for line in f]
    for fields in mounts:
        target = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
        if target != work:
            flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY | sum(_MOUNT_FLAGS.get(o, 0) for o in fields[5].split(","))
            try:
                _mount(libc, None, target, None, flags)
            except OSError:
                failed.append(target)
    return failed


def _needed_paths() -> list[str]:
    """What the program must reach: its directory and the standard library."""
    return [os.getcwd(), *sorted(p for p in sys.path if os.path.isdir(p))]


def _closed_ancestors(path: str) -> list[str]:
    """The directories above `path` that other users cannot pass through."""
    parts = path.strip("/").split("/")
    return [a for a in ("/" + "/".join(parts[:i]) for i in range(1, len(parts))) if not os.stat(a).st_mode & 0o001]


def _expose(paths: list[str], libc) -> None:
    """Keep `paths` reachable for the unprivileged uid when a parent directory is private (pyenv under
    /root, mode 700): cover that directory with an empty tmpfs, hiding the rest, and bind them back."""
    closed = {a for path in paths for a in _closed_ancestors(path)}
    tops = [c for c in sorted(closed) if not any(c.startswith(o + "/") for o in closed)]
    originals = {p: os.open(p, os.O_PATH) for p in paths}  # still reachable through /proc once covered
    for top in tops:
        _mount(libc, "tmpfs", top, "tmpfs", 0, "mode=755")
    for path, fd in originals.items():
        if any(path.startswith(top + "/") for top in tops):
            os.makedirs(path, exist_ok=True)
            _mount(libc, f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC)
        os.close(fd)


def _tasks_of(uid: int) -> int:
    """How many tasks (threads included) the real uid runs now, as RLIMIT_NPROC counts them."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            count += int(status["Threads"]) if int(status["Uid"].split()[0]) == uid else 0
        except (OSError, KeyError):  # the process ended meanwhile
            continue
    return count


def _install_guard(work: str) -> None:
    """The Python-level net: an audit hook (it cannot be removed) refusing what a solution never needs."""
    import _posixsubprocess

    def refuse(what: str):
        raise PermissionError(f"sandbox: {what} is not allowed")

    def hook(event: str, args: tuple) -> None:
        if event.startswith(_BLOCKED) and not (event == "os.kill" and args[0] == os.getpid()):
            refuse(event)
        if event == "import" and args[0].split(".")[0] in ("ctypes", "_ctypes"):
            refuse(f"import {args[0]}")
        written = ((args[0],) if (args[2] or 0) & _WRITE_FLAGS else ()) if event == "open" else ()
        for path in written + tuple(args[i] for i in _PATH_EVENTS.get(event, ())):
            if not _inside(path, work):
                refuse(f"writing {os.fsdecode(path)!r} outside the working directory")

    # subprocess.Popen raises its own audit event, but the C helper under it does not.
    _posixsubprocess.fork_exec = lambda *args, **kwargs: refuse("_posixsubprocess.fork_exec")
    for name in [n for n in sys.modules if n.split(".")[0] in ("ctypes", "_ctypes")]:
        del sys.modules[name]  # loaded for the isolation; an import by the program now hits the hook
    sys.addaudithook(hook)


def _inside(path, work: str) -> bool:
    if isinstance(path, int):
        return True  # an open descriptor: its file was checked when it was opened
    real = os.path.realpath(os.fsdecode(path))
    return real in (work, os.devnull) or real.startswith(work + os.sep)


# ---------------------------------------------------------------- the parent


class SandboxResult:
    """How one run ended. `ok`: exit status 0, in time, output complete. `killed_reason`: the limit or
    guard that stopped it (None for a program that simply failed). `guards`: the layers in place;
    `degraded`: those this machine could not provide, and why."""

    def __init__(self, ok, returncode, stdout, stderr, timed_out, killed_reason, truncated, guards, degraded):
        self.ok, self.returncode, self.stdout, self.stderr = ok, returncode, stdout, stderr
        self.timed_out, self.killed_reason, self.truncated = timed_out, killed_reason, truncated
        self.guards, self.degraded = guards, degraded

    def __repr__(self) -> str:
        return f"SandboxResult({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def run_program(
    code: str,
    stdin: str = "",
    timeout_s: float = 5,
    cpu_s: int = 5,
    memory_mb: int = 512,
    max_output_bytes: int = 65536,
    *,
    python_guard: bool = True,
) -> SandboxResult:
    """Run `code` with `stdin`; stdout and stderr are cut at `max_output_bytes` each.
    `python_guard=False` leaves the audit hook out: only for testing that the OS layers hold alone."""
    import secrets
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sandbox-") as base:
        work, files = os.path.join(base, "work"), {n: os.path.join(base, n) for n in ("stdin", "stdout", "stderr")}
        os.mkdir(work)
        for path, text in ((os.path.join(work, PROGRAM_FILE), code), (files["stdin"], stdin)):
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        # A fresh uid per run, far above real accounts: RLIMIT_NPROC then counts this run's tasks alone.
        uid = 2**20 + secrets.randbelow(2**30) if os.geteuid() == 0 else -1
        if uid >= 0:
            os.chmod(base, 0o711)  # the fresh uid may pass through to work/, not read its own output files
            os.chown(work, uid, uid)
        report, report_w = os.pipe()
        limits = [uid, cpu_s, memory_mb * 2**20, max_output_bytes + 1, report_w, int(python_guard)]  # +1: to see the cut
        argv = [sys.executable, "-I", "-S", "-B", os.path.abspath(__file__), *map(str, limits)]
        try:
            with open(files["stdin"], "rb") as i, open(files["stdout"], "wb") as o, open(files["stderr"], "wb") as e:
                # Nothing of ours leaks in (tokens, proxies); HOME and TMPDIR point at the only writable place.
                env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": work, "TMPDIR": work}
                proc = subprocess.Popen(
                    argv, stdin=i, stdout=o, stderr=e, cwd=work, env=env, start_new_session=True, pass_fds=[report_w]
                )
            os.close(report_w)
            report_w = -1
            timed_out = _wait(proc, timeout_s)
            lines = os.read(report, 65536).decode().splitlines()
        finally:
            for fd in (report, report_w):
                if fd >= 0:
                    os.close(fd)
        (stdout, cut_out), (stderr, cut_err) = (_read_capped(files[n], max_output_bytes) for n in ("stdout", "stderr"))
    rc, truncated = proc.returncode, cut_out or cut_err
    ok = rc == 0 and not timed_out and not truncated
    why = _why(rc, timed_out, truncated, stderr, timeout_s, cpu_s, memory_mb, max_output_bytes)
    guards = [line[1:] for line in lines if line.startswith("+")] + (["python audit hook"] if lines and python_guard else [])
    degraded = [line[1:] for line in lines if line.startswith("-")]
    return SandboxResult(ok, rc, stdout, stderr, timed_out, why, truncated, guards, degraded)


def isolation() -> dict[str, list[str]]:
    """Which layers this machine gives (`guards`) and which it lacks (`degraded`): log it with a run."""
    result = run_program("pass")
    return {"guards": result.guards, "degraded": result.degraded}


def _wait(proc, timeout_s: float) -> bool:
    """Wait for the program, then kill its process group (leftovers; the program itself on timeout)
    *before* reaping it, so the group's id cannot have been reused by then. True on timeout."""
    import contextlib
    import signal
    import time

    deadline, timed_out = time.monotonic() + timeout_s, False
    while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        if time.monotonic() > deadline:
            timed_out = True
            break
        time.sleep(0.002)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # SIGKILL is delivered, not yet done: return only once the rest of the group has died too, so no
    # forked leftover outlives the call (bounded, in case the id was taken by a new group meanwhile).
    settled = time.monotonic() + 2.0
    while _group_alive(proc.pid) and time.monotonic() < settled:
        time.sleep(0.005)
    return timed_out


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs; zombies (dead, awaiting their reaper) hold nothing."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _read_capped(path: str, limit: int) -> tuple[str, bool]:
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    return data[:limit].decode("utf-8", errors="replace"), len(data) > limit


def _why(rc, timed_out, truncated, stderr, timeout_s, cpu_s, memory_mb, max_output_bytes) -> str | None:
    import signal

    if timed_out:
        return f"wall-clock timeout ({timeout_s:g} s)"
    if rc in (-signal.SIGXCPU, -signal.SIGKILL):  # the soft CPU limit sends SIGXCPU, the hard one SIGKILL
        return f"CPU time limit ({cpu_s} s)"
    if truncated:
        return f"output limit ({max_output_bytes} bytes)"
    if "MemoryError" in stderr:
        return f"memory limit ({memory_mb} MB)"
    blocked = [line for line in stderr.splitlines() if line.startswith("PermissionError: sandbox: ")]
    if blocked:
        return "blocked: " + blocked[-1].removeprefix("PermissionError: sandbox: ")
    if rc < 0:
        return f"killed by {signal.Signals(-rc).name}"
    return None


if __name__ == "__main__":
    _child_main(sys.argv[1:])
