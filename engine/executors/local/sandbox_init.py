"""The sandbox's first process: builds the task's namespaces and root, runs the task, and
copies out what it left in its result paths.

Run as `python -I -S sandbox_init.py SPEC ARGV...`, SPEC being the `marshal` bytes of a
dict, in hex. It starts a fresh interpreter for every task, so it imports only what it
must: `marshal` is built in where `json` pulls in `re`, and `typing`, `functools` and
`signal` are left out; together that is about half of its start-up. It leaves with
`os._exit`, skipping an interpreter shutdown nobody waits for. One process doing every
mount with system calls is several times faster than a shell running mount(8) a dozen
times. It

1. joins the task's cgroups, before anything else, so it and every process the task makes
   are held by them (memory, processes, CPU, and one kill for all);
2. asks to be SIGKILLed if the runner dies (and leaves if it already has), so a crashed
   runner leaves nothing behind;
3. unshares mount, PID, IPC, UTS and (unless networking is allowed) network namespaces,
   plus a user namespace mapping the caller to root when not started as root;
4. builds the root: a tmpfs with the host's /usr and /etc bound read-only (the /bin, /lib
   symlinks copied), five /dev nodes, inputs read-only, and the writable paths (result
   paths, /tmp) as tmpfs mounts capped in bytes and inodes (their pages count against the
   task's memory cgroup); the root made read-only;
5. forks: the child is PID 1 of the new PID namespace, and when it exits the kernel kills
   every process left in it. The child mounts a new /proc, chroots, sets rlimits
   (processes, address space, CPU seconds, file size, no core files), as root drops to the
   task's own uid (and asks again for SIGKILL when its parent dies: a change of uid
   clears that; a pipe tells whether the parent died before), sets no new privileges,
   and execs the task;
6. the parent waits, then copies each result tmpfs to its host directory through the
   descriptors it opened before the task ran: regular files and directories only, never a
   link, device, fifo or socket, within a byte and an entry budget; what it skipped it
   writes, as one sentence, to the report file; and it passes the child's status on.

A failure before the exec prints one line to stderr and exits with status 125.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import resource
import stat
import sys
import warnings  # noqa: F401  os.execvp imports it lazily, which fails once chrooted

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see above)
if TYPE_CHECKING:
    from typing import Any

SETUP_FAILED = 125
SIGKILL = 9
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
CLONE_NEWIPC, CLONE_NEWUTS = 0x08000000, 0x04000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
# Flags a user namespace may not drop from a bind mount (statvfs reports them as MS_ bits).
LOCKED_FLAGS = MS_NOEXEC | 1024 | 2048 | 4096  # noexec, noatime, nodiratime, relatime
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
HOST_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
DEV_NODES = ("null", "zero", "full", "random", "urandom")
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
MAX_DEPTH = 64  # directories deeper than this in a result path are not copied
COPY_CHUNK = 1 << 20


_LIBC: list[ctypes.CDLL] = []


def _libc() -> ctypes.CDLL:
    if not _LIBC:
        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


class SetupError(Exception):
    """The sandbox could not be built."""


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc().mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source or fstype} on {target}",
    )


def _bind(source: str, target: str, read_only: bool, device: bool = False) -> None:
    """Bind `source` at `target`: never setuid, device nodes only where asked for."""
    _mount(source, target, None, MS_BIND | MS_REC)
    locked = os.statvfs(source).f_flag & LOCKED_FLAGS
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (0 if device else MS_NODEV) | locked
    _mount(None, target, None, flags | (MS_RDONLY if read_only else 0))


def _join_cgroups(procs_files: list[str]) -> None:
    """Move this process into the task's cgroups; its descendants are born there."""
    pid = str(os.getpid())
    for path in procs_files:
        try:
            with open(path, "w") as fh:
                fh.write(pid)
        except OSError as exc:
            raise SetupError(f"join cgroup {path}: {exc.strerror}") from exc


def _map_to_root(uid: int, gid: int) -> None:
    """In a new user namespace: be root inside, the caller outside."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)


def _capped_tmpfs(target: str, spec: dict[str, Any], mode: str) -> None:
    """A writable tmpfs of at most the task's disk cap, in bytes and in inodes."""
    owner = f",uid={spec['uid']},gid={spec['uid']}" if spec["uid"] is not None else ""
    options = f"mode={mode},size={spec['disk_bytes']},nr_inodes={spec['disk_inodes']}{owner}"
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, options)


def _build_root(spec: dict[str, Any]) -> list[tuple[int, int]]:
    """The task's root, all but /proc (the child mounts that: it must be of the new PID
    namespace). Returns (result tmpfs, host result directory) descriptor pairs."""
    root = spec["root"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount may reach the host
    _mount("tmpfs", root, "tmpfs", 0, "mode=0755,size=1m")
    for name in HOST_DIRS:
        host = f"/{name}"
        if os.path.islink(host):
            os.symlink(os.readlink(host), f"{root}/{name}")
        elif os.path.isdir(host):
            os.mkdir(f"{root}/{name}")
            _bind(host, f"{root}/{name}", True)
    for name in ("proc", "dev", "tmp"):
        os.mkdir(f"{root}/{name}")
    for node in DEV_NODES:
        open(f"{root}/dev/{node}", "w").close()
        _bind(f"/dev/{node}", f"{root}/dev/{node}", False, device=True)
    _capped_tmpfs(f"{root}/tmp", spec, "1777")
    for source, target, read_only in spec["mounts"]:
        inside = root + target
        if os.path.isdir(source):
            os.makedirs(inside, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            open(inside, "a").close()
        _bind(source, inside, read_only)
    pairs = []
    for host_dir, target in spec["results"]:
        inside = root + target
        os.makedirs(inside, exist_ok=True)
        _capped_tmpfs(inside, spec, "0755")
        pairs.append((os.open(inside, DIR_FLAGS), os.open(host_dir, DIR_FLAGS)))
    _mount(None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return pairs


def _become_task(spec: dict[str, Any], argv: list[str], parent: int) -> None:
    """Mount /proc, chroot, limit, drop to the task's uid, exec; `parent` is the read end of
    a pipe only the parent writes to (EOF: the parent is gone)."""
    root = spec["root"]
    _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chroot(root)
    os.chdir(spec["workdir"])
    for limit, value in (
        (resource.RLIMIT_NPROC, spec["nproc"]),
        (resource.RLIMIT_AS, spec["as_bytes"]),
        (resource.RLIMIT_CPU, spec["cpu_seconds"]),
        (resource.RLIMIT_FSIZE, spec["fsize_bytes"]),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(limit, (value, value))
    if spec["uid"] is not None:
        os.setgroups([])
        os.setgid(spec["uid"])
        os.setuid(spec["uid"])
        # A change of uid clears the parent-death signal: without this, a task outlived a
        # SIGKILLed runner.
        _check(_libc().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig")
    _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _exit_if_orphaned(parent)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"{argv[0]}: {exc.strerror}", file=sys.stderr, flush=True)
        os._exit(127 if isinstance(exc, FileNotFoundError) else 126)


def _exit_if_orphaned(parent: int) -> None:
    """Leave if the parent died before the parent-death signal was (last) asked for: then
    none will come. PID 1 of a namespace cannot ask getppid(), so a pipe tells."""
    os.set_blocking(parent, False)
    try:
        os.read(parent, 1)  # b"": every write end is closed, the parent has exited
    except BlockingIOError:
        return  # still there: its death from now on sends SIGKILL
    os._exit(SETUP_FAILED)


# --- copying the results out -------------------------------------------------------------


class _Budget:
    """What a copy may still take (bytes, entries), and what it skipped, by kind."""

    def __init__(self, max_bytes: int, max_entries: int) -> None:
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self.bytes, self.entries = max_bytes, max_entries
        self.skipped: dict[str, int] = {}
        self.failure = ""  # why copying stopped early, if it did

    def skip(self, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1

    def sentence(self) -> str:
        """One note saying what was left out ("" when nothing was)."""
        words = {
            "link": ("link", "links"),
            "fifo": ("fifo", "fifos"),
            "socket": ("socket", "sockets"),
            "device": ("device node", "device nodes"),
            "deep": (f"directory deeper than {MAX_DEPTH}", f"directories deeper than {MAX_DEPTH}"),
            "bytes": (
                f"file past the {self.max_bytes}-byte cap",
                f"files past the {self.max_bytes}-byte cap",
            ),
            "entries": (
                f"entry past the {self.max_entries}-entry cap",
                f"entries past the {self.max_entries}-entry cap",
            ),
        }
        parts = [
            f"{self.skipped[kind]} {word[self.skipped[kind] != 1]}"
            for kind, word in words.items()
            if kind in self.skipped
        ]
        if self.failure:
            parts.append(f"the rest, as copying failed ({self.failure})")
        return "results: skipped " + ", ".join(parts) if parts else ""


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def _copy_tree(src: int, dst: int, device: int, depth: int, budget: _Budget) -> None:
    """Copy the directory `src` into `dst` (both descriptors), without following links."""
    for name in os.listdir(src):
        info = os.stat(name, dir_fd=src, follow_symlinks=False)
        if info.st_dev != device:
            continue  # another result path mounted below this one: copied on its own
        kind = _kind(info.st_mode)
        if kind not in ("file", "directory"):
            budget.skip(kind)
        elif budget.entries <= 0:
            budget.skip("entries")
        elif kind == "directory" and depth >= MAX_DEPTH:
            budget.skip("deep")
        elif kind == "file" and info.st_size > budget.bytes:
            budget.skip("bytes")
        else:
            budget.entries -= 1
            if kind == "file":
                _copy_file(name, src, dst, info.st_mode, budget)
            else:
                _copy_directory(name, src, dst, device, depth, budget)


def _copy_directory(
    name: str, src: int, dst: int, device: int, depth: int, budget: _Budget
) -> None:
    inner = os.open(name, DIR_FLAGS, dir_fd=src)
    try:
        os.mkdir(name, 0o755, dir_fd=dst)
        outer = os.open(name, DIR_FLAGS, dir_fd=dst)
        try:
            _copy_tree(inner, outer, device, depth + 1, budget)
        finally:
            os.close(outer)
    finally:
        os.close(inner)


def _copy_file(name: str, src: int, dst: int, mode: int, budget: _Budget) -> None:
    source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src)
    try:
        opened = os.fstat(source).st_mode
        if not stat.S_ISREG(opened):  # swapped since it was looked at
            budget.skip(_kind(opened))
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        target = os.open(name, flags, 0o644 | (mode & 0o111), dir_fd=dst)
        try:
            while budget.bytes > 0:
                sent = os.sendfile(target, source, None, min(COPY_CHUNK, budget.bytes))
                if sent == 0:
                    break
                budget.bytes -= sent
        finally:
            os.close(target)
    finally:
        os.close(source)


def _copy_results(pairs: list[tuple[int, int]], spec: dict[str, Any]) -> None:
    """Copy every result tmpfs out, then write what was skipped to the report file."""
    budget = _Budget(spec["disk_bytes"], spec["disk_inodes"])
    for src, dst in pairs:
        try:
            _copy_tree(src, dst, os.fstat(src).st_dev, 0, budget)
        except OSError as exc:
            budget.failure = exc.strerror or str(exc)
    sentence = budget.sentence()
    if sentence:
        with open(spec["report"], "w") as fh:
            fh.write(sentence)


# --- the two processes -------------------------------------------------------------------


def _set_up(spec: dict[str, Any]) -> list[tuple[int, int]]:
    """Cgroups, namespaces and the root, in that order; the result descriptor pairs."""
    outer_uid, outer_gid = os.getuid(), os.getgid()
    _join_cgroups(spec["cgroup_procs"])
    _check(_libc().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig")
    if os.getppid() != spec["runner_pid"]:
        raise SetupError("the runner ended before the sandbox was set up")
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    flags |= (0 if spec["network"] else CLONE_NEWNET) | (CLONE_NEWUSER if spec["userns"] else 0)
    _check(_libc().unshare(flags), "unshare")
    if spec["userns"]:
        _map_to_root(outer_uid, outer_gid)
    return _build_root(spec)


def _failed(exc: BaseException) -> None:
    print(f"sandbox set-up failed: {exc}", file=sys.stderr, flush=True)
    os._exit(SETUP_FAILED)


def main() -> None:
    spec = marshal.loads(bytes.fromhex(sys.argv[1]))
    argv = sys.argv[2:]
    try:
        pairs = _set_up(spec)
    except (SetupError, OSError) as exc:
        _failed(exc)
    parent, held = os.pipe()  # the parent holds `held` open until it exits
    child = os.fork()
    if child == 0:
        try:
            os.close(held)
            _check(_libc().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig")
            _become_task(spec, argv, parent)
        except (SetupError, OSError) as exc:
            _failed(exc)
    os.close(parent)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    _copy_results(pairs, spec)
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
