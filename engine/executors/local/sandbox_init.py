"""The sandbox's first process: builds the task's namespaces and root, then becomes the task.

Run as `python -I -S sandbox_init.py SPEC ARGV...`, SPEC being the `marshal` bytes of a
dict, in hex. It starts a fresh interpreter for every task, so it imports only what it
must: `marshal` is built in where `json` pulls in `re`, and `typing`, `functools` and
`signal` are left out; together that is about half of its start-up. It leaves with
`os._exit`, skipping an interpreter shutdown nobody waits for. One process doing every
mount with system calls is several times faster than a shell running mount(8) a dozen
times. It

1. asks to be SIGKILLed if the runner dies, so a crashed runner leaves nothing behind;
2. unshares mount, PID and (unless networking is allowed) network namespaces, plus a user
   namespace mapping the caller to root when not started as root;
3. forks: the child is PID 1 of the new PID namespace, and when it exits the kernel kills
   every process left in it; the parent waits and passes the child's status on;
4. in the child: a tmpfs root with the host's /usr and /etc bound read-only (the /bin, /lib
   symlinks copied), a new /proc, five /dev nodes, a private /tmp, inputs read-only and
   result paths writable at their targets; the root made read-only; chroot; rlimits
   (processes, address space, CPU seconds, file size, no core files); as root, a drop to the task's
   own uid with no new privileges; then exec of the task.

A failure before the exec prints one line to stderr and exits with status 125.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import resource
import sys
import warnings  # noqa: F401  os.execvp imports it lazily, which fails once chrooted

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see above)
if TYPE_CHECKING:
    from typing import Any

SETUP_FAILED = 125
SIGKILL = 9
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
# Flags a user namespace may not drop from a bind mount (statvfs reports them as MS_ bits).
LOCKED_FLAGS = MS_NOEXEC | 1024 | 2048 | 4096  # noexec, noatime, nodiratime, relatime
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
HOST_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
DEV_NODES = ("null", "zero", "full", "random", "urandom")


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


def _map_to_root(uid: int, gid: int) -> None:
    """In a new user namespace: be root inside, the caller outside."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)


def _build_root(spec: dict[str, Any]) -> str:
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
    _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for node in DEV_NODES:
        open(f"{root}/dev/{node}", "w").close()
        _bind(f"/dev/{node}", f"{root}/dev/{node}", False, device=True)
    _mount(
        "tmpfs", f"{root}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={spec['tmp_bytes']}"
    )
    for source, target, read_only in spec["mounts"]:
        inside = root + target
        if os.path.isdir(source):
            os.makedirs(inside, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            open(inside, "a").close()
        _bind(source, inside, read_only)
    _mount(None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return root


def _become_task(spec: dict[str, Any], argv: list[str]) -> None:
    root = _build_root(spec)
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
    _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"{argv[0]}: {exc.strerror}", file=sys.stderr, flush=True)
        os._exit(127 if isinstance(exc, FileNotFoundError) else 126)


def main() -> None:
    spec = marshal.loads(bytes.fromhex(sys.argv[1]))
    argv = sys.argv[2:]
    outer_uid, outer_gid = os.getuid(), os.getgid()
    try:
        _check(_libc().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig")
        flags = CLONE_NEWNS | CLONE_NEWPID | (0 if spec["network"] else CLONE_NEWNET)
        if spec["userns"]:
            flags |= CLONE_NEWUSER
        _check(_libc().unshare(flags), "unshare")
        if spec["userns"]:
            _map_to_root(outer_uid, outer_gid)
    except (SetupError, OSError) as exc:
        print(f"sandbox set-up failed: {exc}", file=sys.stderr, flush=True)
        os._exit(SETUP_FAILED)
    child = os.fork()
    if child == 0:
        try:
            _check(_libc().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig")
            _become_task(spec, argv)
        except (SetupError, OSError) as exc:
            print(f"sandbox set-up failed: {exc}", file=sys.stderr, flush=True)
            os._exit(SETUP_FAILED)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
