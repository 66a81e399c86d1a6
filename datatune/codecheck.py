"""Code-based verification of numeric answers (UniGen): the LLM writes a program, code runs it.

For a row of a numeric task the LLM sees the problem (never the row's answer) and writes a short
Python program that computes the answer and prints it. The program is untrusted and runs in an OS
sandbox, not behind a Python guard:

  - new user, mount, pid, network, ipc, uts (and cgroup) namespaces, made with unshare(2) by a small
    launcher (no bubblewrap or util-linux needed: as root, bwrap can only map the sandbox to host
    root, and `unshare(1)` cannot write a two-line id map without newuidmap);
  - a filesystem of its own: a tmpfs root holding read-only binds of the interpreter, its stdlib
    and the shared libraries it links (site-packages hidden), /dev/null & co, and a 16 MiB /tmp
    with the program; no /etc, /home, /root, /proc, no checkout, no host file writable;
  - no privileges: started as root, it runs as `nobody` on the host as well (uid map 0->0 only
    while the root is built, then setresuid); every capability and the bounding set dropped,
    no_new_privs; so setns, mount and the parent's /proc are out of reach;
  - a seccomp filter: fork, vfork and clone without CLONE_THREAD fail (no new processes; threads
    work), sockets fail, and so do mount, setns, unshare, ptrace, bpf, io_uring, keyrings, modules;
  - an empty environment apart from PATH, HOME=/tmp and LANG; stdin closed; `python -I -S`;
  - resource limits: address space, CPU seconds, file size (the output), no core, processes and
    files; a wall-clock timeout, after which the launcher is killed and with it the pid namespace's
    init, so the kernel kills everything in the namespace (a setsid program does not survive).

If the kernel refuses any of it, no program runs: `run_program` answers status "unavailable" and
`code_answers` raises SandboxUnavailable before asking the LLM, so verify leaves the rows unchecked.

The printed number (last line) is compared with the row's label, tolerant of commas, `$`, `%`,
a trailing `.0`, fractions and small float error. verify.py turns the answers into checks
(`code:agree`, `code:disagree:<value>`, `code:error`) and applies the policy.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from .core.errors import BudgetExceeded
from .records import Row
from .task import TaskSpec

log = logging.getLogger(__name__)


@dataclass
class ProgramResult:
    status: str  # "ok", "error" (non-zero exit), "timeout" or "unavailable" (no sandbox: nothing ran)
    stdout: str
    stderr: str
    returncode: int | None
    seconds: float


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# -- the sandbox -------------------------------------------------------------------------------
# The launcher runs as its own interpreter (`python -I -S -c _LAUNCHER CONFIG`), single-threaded, so
# it may fork. Four processes, each waiting for the next:
#   P  writes the user namespace's uid/gid maps from outside it, kills C at the hard deadline;
#   C  unshare(user), waits for the maps, unshare(mount, pid, net, ipc, uts, cgroup), forks D;
#   D  pid 1 of the new pid namespace: builds the root (tmpfs + read-only binds), pivot_root,
#      drops every privilege, forks E and reaps it; when D dies the kernel kills the whole namespace;
#   E  resource limits, the seccomp filter, then exec of `python -I -S /tmp/program.py`.
# Setup errors exit 125 with "datatune sandbox: ..." on stderr before E signals it is ready, so a
# program never runs outside the sandbox.
_LAUNCHER = r'''
import ctypes, json, os, resource, select, signal, sys
cfg = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.syscall.restype = ctypes.c_long
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x02000000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_SET_SECCOMP = 1, 24, 38, 47, 22
ready_fd = cfg["ready_fd"]


def die(what, err=None):
    err = ctypes.get_errno() if err is None else err
    os.write(2, ("datatune sandbox: %s failed: %s\n" % (what, os.strerror(err) if err else "error")).encode())
    os._exit(125)


def ok(rc, what):
    if rc != 0:
        die(what)


def status_code(status):
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def mount(src, dst, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    ok(libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), "mount %s" % dst)


def locked_flags(path):  # flags a bind mount in a user namespace must keep from its source mount
    f = os.statvfs(path).f_flag
    return (MS_NOEXEC if f & 8 else 0) | (1024 if f & 1024 else 0) | (2048 if f & 2048 else 0) | (1 << 21 if f & 4096 else 0)


def build_root(root):
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=0755")
    for kind, path, arg in cfg["ops"]:
        dst = root + path
        try:
            if kind == "symlink":
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                if not os.path.lexists(dst):
                    os.symlink(arg, dst)
            elif kind in ("bind", "dev"):
                if os.path.isdir(path):
                    os.makedirs(dst, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    open(dst, "a").close()
                mount(path, dst, None, MS_BIND)
                if kind == "bind":
                    mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | locked_flags(path))
            elif kind == "hide" and os.path.isdir(dst):
                mount("tmpfs", dst, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,nr_inodes=4,mode=0755")
        except OSError as e:
            if kind != "dev":  # /dev/null and friends are a convenience; everything else is needed
                die("preparing %s" % path, e.errno)
    os.makedirs(root + "/tmp", exist_ok=True)
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=%d,nr_inodes=1024,mode=1777" % cfg["tmp_bytes"])
    with open(root + "/tmp/program.py", "wb") as f:
        f.write(source)
    os.chmod(root + "/tmp/program.py", 0o644)
    os.chdir(root)
    ok(libc.syscall(cfg["nr_pivot_root"], b".", b"."), "pivot_root")
    ok(libc.umount2(b".", 2), "detaching the host filesystem")  # MNT_DETACH
    os.chdir("/")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir("/tmp")


def drop_privileges():
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break
    libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    if cfg["uid"] is not None:  # started as root: become the unprivileged user, on the host too
        os.setgroups([])
        os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
        os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    ok(libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")
    ok(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def run_program():  # E
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    for lim, soft, hard in ((resource.RLIMIT_AS, cfg["mem"], cfg["mem"]), (resource.RLIMIT_CPU, cfg["cpu"], cfg["cpu"] + 1),
                            (resource.RLIMIT_FSIZE, cfg["fsize"], cfg["fsize"]), (resource.RLIMIT_CORE, 0, 0),
                            (resource.RLIMIT_NPROC, cfg["nproc"], cfg["nproc"]), (resource.RLIMIT_NOFILE, 64, 64)):
        resource.setrlimit(lim, (soft, hard))
    flt = bytes.fromhex(cfg["seccomp"])
    buf = ctypes.create_string_buffer(flt, len(flt))

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Prog(len(flt) // 8, ctypes.addressof(buf))
    ok(libc.prctl(PR_SET_SECCOMP, 2, ctypes.addressof(prog), 0, 0), "seccomp")  # SECCOMP_MODE_FILTER
    os.write(ready_fd, b"R")
    os.close(ready_fd)
    exe = cfg["exe"]
    os.execve(exe, [exe, "-I", "-S", "/tmp/program.py"], cfg["env"])


def init(alive):  # D: pid 1
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    build_root(cfg["root"])
    os.setsid()
    drop_privileges()
    ok(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")  # after the uid change, which clears it
    if select.select([alive], [], [], 0)[0]:  # C is already gone
        os._exit(125)
    os.close(alive)
    child = os.fork()
    if child == 0:
        try:
            run_program()
        except OSError as e:
            die("starting the program", e.errno)
        os._exit(125)
    os.close(ready_fd)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            os._exit(status_code(status))


def namespaces(parent, to_parent, from_parent):  # C
    ok(libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    os.write(to_parent, b"u")
    if os.read(from_parent, 1) != b"m":
        os._exit(125)
    ok(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    if os.getppid() != parent:
        os._exit(125)
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    if libc.unshare(flags | CLONE_NEWCGROUP) != 0:
        ok(libc.unshare(flags), "unshare(mount, pid, net, ipc, uts)")
    alive_r, alive_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(alive_w)
        try:
            init(alive_r)
        except OSError as e:
            die("building the sandbox", e.errno)
        os._exit(125)
    os.close(alive_r)
    os.close(ready_fd)
    _, status = os.waitpid(child, 0)
    os._exit(status_code(status))


with open(cfg["program"], "rb") as f:
    source = f.read()
c_r, c_w = os.pipe()
p_r, p_w = os.pipe()
me = os.getpid()
child = os.fork()
if child == 0:
    os.close(c_r)
    os.close(p_w)
    try:
        namespaces(me, c_w, p_r)
    except OSError as e:
        die("entering namespaces", e.errno)
    os._exit(125)
os.close(c_w)
os.close(p_r)
os.close(ready_fd)
if os.read(c_r, 1) == b"u":
    try:
        if cfg["uid"] is None:  # unprivileged: map our own ids only
            with open("/proc/%d/setgroups" % child, "w") as f:
                f.write("deny")
        for name, line in (("uid_map", cfg["uid_map"]), ("gid_map", cfg["gid_map"])):
            with open("/proc/%d/%s" % (child, name), "w") as f:
                f.write(line)
    except OSError as e:
        os.kill(child, signal.SIGKILL)
        die("writing the user namespace's id maps", e.errno)
    os.write(p_w, b"m")
os.close(p_w)
signal.signal(signal.SIGALRM, lambda *a: os.kill(child, signal.SIGKILL))
signal.alarm(cfg["deadline"])
_, status = os.waitpid(child, 0)
os._exit(status_code(status))
'''

# The seccomp filter: no new processes (fork, vfork, clone without CLONE_THREAD; clone3 answers ENOSYS
# so that threads fall back to clone), no sockets, and none of the calls that reach outside a
# namespace or into the kernel (mount, setns, unshare, ptrace, bpf, io_uring, keyrings, modules...).
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_SYSCALLS = {  # name: (x86_64, aarch64); None where the call does not exist
    "fork": (57, None), "vfork": (58, None), "socket": (41, 198), "socketpair": (53, 199), "ptrace": (101, 117),
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51), "unshare": (272, 97),
    "setns": (308, 268), "perf_event_open": (298, 241), "bpf": (321, 280), "userfaultfd": (323, 282),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218), "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426), "io_uring_register": (427, 427), "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271), "kexec_load": (246, 104), "kexec_file_load": (320, 294),
    "init_module": (175, 105), "finit_module": (313, 273), "delete_module": (176, 106),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264), "open_tree": (428, 428),
    "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431), "fsmount": (432, 432),
    "fspick": (433, 433), "mount_setattr": (442, 442), "pidfd_getfd": (438, 438), "swapon": (167, 224),
    "swapoff": (168, 225), "reboot": (169, 142), "acct": (163, 89), "syslog": (103, 116),
    "iopl": (172, None), "ioperm": (173, None),
}
_CLONE, _CLONE3 = {"x86_64": 56, "aarch64": 220}, 435
_CLONE_THREAD, _CLONE_NEW_ANY = 0x10000, 0x7E020000
_EPERM, _ENOSYS = 1, 38


def _seccomp_filter(arch: str) -> bytes:
    """A classic BPF program for seccomp (struct sock_filter[]): deny the calls above, allow the rest."""
    import struct

    col = 0 if arch == "x86_64" else 1
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    errno = lambda e: 0x00050000 | e  # SECCOMP_RET_ERRNO
    ALLOW, KILL = 0x7FFF0000, 0x80000000
    ins = [(LD, 0, 0, 4), (JEQ, 1, 0, _AUDIT_ARCH[arch]), (RET, 0, 0, KILL), (LD, 0, 0, 0)]
    if arch == "x86_64":  # the x32 ABI numbers
        ins += [(JGE, 0, 1, 0x40000000), (RET, 0, 0, errno(_EPERM))]
    for nrs in _SYSCALLS.values():
        if nrs[col] is not None:
            ins += [(JEQ, 0, 1, nrs[col]), (RET, 0, 0, errno(_EPERM))]
    ins += [(JEQ, 0, 1, _CLONE3), (RET, 0, 0, errno(_ENOSYS))]
    # clone: a thread (CLONE_THREAD, no new namespace) is allowed, a process is not
    ins += [(JEQ, 0, 5, _CLONE[arch]), (LD, 0, 0, 16), (JSET, 2, 0, _CLONE_NEW_ANY), (JSET, 0, 1, _CLONE_THREAD),
            (RET, 0, 0, ALLOW), (RET, 0, 0, errno(_EPERM))]
    ins += [(RET, 0, 0, ALLOW)]
    return b"".join(struct.pack("=HBBI", *i) for i in ins)


_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_LIB_DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64")  # only when ldd cannot name the libraries
_SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
NPROC_LIMIT = 16  # threads count against it; processes are refused by the seccomp filter anyway


class SandboxUnavailable(BudgetExceeded):
    """The OS cannot sandbox a code check here, so none runs.

    A BudgetExceeded so that verify.py, which stops at one and keeps what it has, leaves the rows
    unchecked instead of failing the build or running programs unsandboxed.
    """


def _trace(path: str, ops: list, depth: int = 0) -> None:
    """The symlinks on the way to `path` and a bind of the real file, so the sandbox sees it at `path`."""
    parts = Path(path).parts
    cur = "/"
    for i, part in enumerate(parts[1:], start=1):
        nxt = os.path.join(cur, part)
        if os.path.islink(nxt) and depth < 16:
            target = os.readlink(nxt)
            ops.append(("symlink", nxt, target))
            base = target if target.startswith("/") else os.path.normpath(os.path.join(cur, target))
            _trace(os.path.join(base, *parts[i + 1:]), ops, depth + 1)
            return
        cur = nxt
    ops.append(("bind", cur, ""))


@functools.lru_cache(maxsize=1)
def _layout() -> tuple[str, tuple]:
    """The base interpreter and what of the host it needs: its stdlib, lib-dynload and shared libraries."""
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    stdlib = os.path.dirname(os.__file__)
    dynload = [p for p in sys.path if p.endswith("lib-dynload") and os.path.isdir(p)]
    wanted = [exe, stdlib] + dynload
    libs: list[str] = []
    try:
        objs = [exe] + [str(p) for d in dynload for p in sorted(Path(d).glob("*.so"))]
        out = subprocess.run(["ldd", *objs], capture_output=True, text=True, timeout=60, env={"PATH": os.defpath, "LC_ALL": "C"}).stdout
        for line in out.splitlines():
            m = re.match(r"\s+(?:\S+ => )?(/\S+) \(0x", line)
            if m:
                libs.append(m.group(1))
    except (OSError, subprocess.SubprocessError):
        pass
    if not any("libc.so" in lib for lib in libs):
        libs = [d for d in _LIB_DIRS if os.path.isdir(d)]
    ops: list = []
    for p in wanted + sorted(set(libs)):
        _trace(p, ops)
    binds = sorted({p for kind, p, _ in ops if kind == "bind"}, key=len)
    kept: list = []
    seen = set()
    for op in ops:  # in order; drop duplicates and anything inside a directory that is bound anyway
        inside = any(op[1] != b and op[1].startswith(b.rstrip("/") + "/") and os.path.isdir(b) for b in binds)
        if op in seen or inside:
            continue
        seen.add(op)
        kept.append(op)
    for sub in ("site-packages", "dist-packages"):  # the stdlib only: no installed packages, datatune included
        kept.append(("hide", os.path.join(stdlib, sub), ""))
    kept += [("dev", d, "") for d in ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random") if os.path.exists(d)]
    return exe, tuple(kept)


def _ids() -> tuple[int | None, int | None, str, str]:
    """(uid, gid) to switch to inside (None: keep our own) and the uid_map / gid_map lines."""
    uid, gid = os.geteuid(), os.getegid()
    if uid != 0:
        return None, None, f"{uid} {uid} 1\n", f"{gid} {gid} 1\n"
    try:
        import pwd

        nobody = pwd.getpwnam("nobody")
        nuid, ngid = nobody.pw_uid, nobody.pw_gid
    except (ImportError, KeyError):
        nuid = ngid = 65534
    # root inside maps to root only while the sandbox is built; the program runs as nobody on the host too
    return nuid, ngid, f"0 0 1\n{nuid} {nuid} 1\n", f"0 0 1\n{ngid} {ngid} 1\n"


def _machine() -> str:
    return os.uname().machine


def _run_sandboxed(source: str, timeout: float, memory_mb: int, max_output_bytes: int) -> ProgramResult:
    start = time.monotonic()
    arch = _machine()
    if sys.platform != "linux" or arch not in _AUDIT_ARCH or sys.byteorder != "little":
        return ProgramResult("unavailable", "", f"no sandbox for {sys.platform}/{arch}: code checks need Linux on x86_64 or aarch64",
                             None, 0.0)
    exe, ops = _layout()
    uid, gid, uid_map, gid_map = _ids()
    with tempfile.TemporaryDirectory(prefix="datatune-code-") as tmp:
        prog = Path(tmp) / "program.py"
        prog.write_text(source, encoding="utf-8")
        (Path(tmp) / "root").mkdir()
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        ready_r, ready_w = os.pipe()
        cpu = max(1, math.ceil(timeout)) + 1
        cfg = {"program": str(prog), "root": str(Path(tmp) / "root"), "ops": ops, "exe": exe, "env": _SANDBOX_ENV,
               "uid": uid, "gid": gid, "uid_map": uid_map, "gid_map": gid_map, "ready_fd": ready_w,
               "mem": memory_mb * 2**20, "cpu": cpu, "fsize": max(max_output_bytes * 4, 1 << 20), "nproc": NPROC_LIMIT,
               "tmp_bytes": 16 << 20, "deadline": cpu + 2, "nr_pivot_root": _PIVOT_ROOT[arch],
               "seccomp": _seccomp_filter(arch).hex()}
        try:
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                proc = subprocess.Popen([exe, "-I", "-S", "-c", _LAUNCHER, json.dumps(cfg)], cwd=tmp, env=dict(_SANDBOX_ENV),
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                                        close_fds=True, pass_fds=(ready_w,))
                os.close(ready_w)
                ready_w = -1
                status = "ok"
                try:
                    proc.wait(timeout=timeout + 0.5)  # the launcher's own start-up is not the program's time
                except subprocess.TimeoutExpired:
                    status = "timeout"
                finally:
                    _kill_group(proc.pid)  # the launcher; the namespace's pid 1 dies with it (PDEATHSIG), and all in it
                    proc.wait()
            os.set_blocking(ready_r, False)
            try:
                ready = os.read(ready_r, 1) == b"R"
            except BlockingIOError:
                ready = False
        finally:
            os.close(ready_r)
            if ready_w >= 0:
                os.close(ready_w)

        def read(p: Path) -> str:  # the end: where the answer and the traceback are
            with open(p, "rb") as f:
                f.seek(max(0, p.stat().st_size - max_output_bytes))
                return f.read(max_output_bytes).decode("utf-8", "replace")

        if not ready:
            why = read(err_path).strip() or f"the sandbox launcher exited with status {proc.returncode}"
            return ProgramResult("unavailable", "", why, proc.returncode, time.monotonic() - start)
        if status == "ok" and proc.returncode != 0:
            status = "error"
        return ProgramResult(status, read(out_path), read(err_path), proc.returncode, time.monotonic() - start)


_probe_lock = threading.Lock()
_probe: list[str | None] = []  # [] not yet tried, [None] works, [reason] refused


def sandbox_problem() -> str | None:
    """Why code checks cannot run here (None: the sandbox works). Tried once per process, on first use."""
    with _probe_lock:
        if not _probe:
            try:
                res = _run_sandboxed("print(2 + 3)", 20.0, 256, 4096)
            except OSError as e:
                res = ProgramResult("unavailable", "", f"the sandbox launcher could not start: {e}", None, 0.0)
            if res.status == "ok" and res.stdout.strip() == "5":
                _probe.append(None)
            else:
                detail = (res.stderr.strip().splitlines() or [f"status {res.status}"])[-1][:300]
                _probe.append(f"code checks are refused: the OS sandbox (user, mount, pid and network namespaces "
                              f"with a seccomp filter) is not available here: {detail}")
        return _probe[0]


def run_program(source: str, *, timeout: float = 10.0, memory_mb: int = 1024, max_output_bytes: int = 64_000) -> ProgramResult:
    """Run `source` in the sandbox; never raises for the program's own failures.

    status "unavailable" (stderr says why) when the OS cannot sandbox it: then nothing ran.
    """
    problem = sandbox_problem()
    if problem:
        return ProgramResult("unavailable", "", problem, None, 0.0)
    return _run_sandboxed(source, timeout, memory_mb, max_output_bytes)


# -- numbers -----------------------------------------------------------------------------------
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def parse_number(text: str) -> float | None:
    """The number a program printed or a label states: '1,000' '$5' '42.0' '3/4' '12%' 'Answer: 7'; else None."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    if not lines:
        return None
    line = lines[-1]
    t = line.replace(",", "").replace("$", "").replace("%", "").strip().rstrip(".")
    try:
        v = float(t)
    except ValueError:
        try:
            v = float(Fraction(t.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            found = _NUMBER.findall(line)
            if not found or len(re.sub(r"[\W\d_]+", "", line)) > 40:  # a sentence, not an answer
                return None
            try:
                v = float(found[-1].replace(",", ""))
            except ValueError:
                return None
    return v if math.isfinite(v) else None


def _decimals(label: str) -> int:
    m = re.search(r"\.(\d+)\s*%?\s*$", str(label).strip())
    return len(m.group(1)) if m else 0


def numbers_match(value: float, label: str, *, rel_tol: float = 1e-6) -> bool:
    """`value` equals the label's number, up to float error or the label's own rounding (33.33 for 33.333...)."""
    target = parse_number(label)
    if target is None:
        return False
    if math.isclose(value, target, rel_tol=rel_tol, abs_tol=1e-9):
        return True
    places = _decimals(label)
    return places > 0 and math.isclose(round(value, places), target, rel_tol=rel_tol, abs_tol=1e-9)


def format_number(value: float) -> str:
    """Short and stable: 18.0 -> '18', 0.30000000000000004 -> '0.3'."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


# -- the LLM writes the program ---------------------------------------------------------------
_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)


def extract_program(text: str) -> str:
    """The code of a reply: the first fenced block that prints, else the first block, else the reply."""
    blocks = [b.strip() for b in _FENCE.findall(str(text)) if b.strip()]
    if not blocks:
        return str(text).strip()
    return next((b for b in blocks if "print" in b), blocks[0])


def _clip(text: str, n: int = 2000) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n * 3 // 4] + "\n...\n" + text[-n // 4:]


def program_prompt(spec: TaskSpec, row: Row) -> list[dict]:
    return [
        {"role": "system", "content": "You write short, correct Python 3 programs that compute exact answers."},
        {"role": "user", "content": f"Task: {spec.description}\n\nProblem:\n{_clip(row.input)}\n\n"
                                    "Write a Python program that solves this problem. First assign every quantity the problem "
                                    "gives to a variable, then compute the answer step by step, then print only the final "
                                    "answer as a single number (no units, no words). Use only the standard library; no "
                                    "input(), files or network. Reply with one ```python block."},
    ]


def _feedback(res: ProgramResult | None, timeout: float) -> str:
    if res is None:
        return "The reply held no program."
    if res.status == "timeout":
        return f"The program did not finish within {timeout:g} seconds."
    if res.status == "error":
        err = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        return f"The program failed: {err[-1].strip()[:300] if err else f'exit status {res.returncode}'}."
    return f"The program printed {res.stdout.strip()[-200:]!r}, not a single number."


def code_answers(rows: Sequence[Row], spec: TaskSpec, llm, *, temperature: float = 0.0, stage: str = "verify",
                 timeout: float = 10.0, memory_mb: int = 1024, workers: int | None = None,
                 repairs: int = 1, spare_calls: int | None = None) -> list[str | None]:
    """One program per row, written by the LLM and run: the printed number (formatted), or None on any failure.

    A program that fails (an exception, a timeout, no number printed) goes back to the LLM with what went
    wrong, up to `repairs` times, using at most `spare_calls` requests beyond the first one per row.

    Raises SandboxUnavailable, before any LLM call, when the OS cannot sandbox the programs here.
    """
    problem = sandbox_problem()
    if problem:
        log.warning("%s", problem)
        raise SandboxUnavailable(problem)
    prompts = [program_prompt(spec, r) for r in rows]
    replies = llm.text_many(prompts, stage=stage, max_tokens=600, temperature=temperature)
    answers: list[str | None] = [None] * len(rows)

    def run(reply) -> tuple[str | None, str | None]:  # (answer, feedback for a repair)
        if isinstance(reply, Exception):
            return None, None
        code = extract_program(reply)
        if not code.strip():
            return None, _feedback(None, timeout)
        res = run_program(code, timeout=timeout, memory_mb=memory_mb)
        if res.status == "unavailable":  # the sandbox broke after the first probe: nothing ran
            raise SandboxUnavailable(res.stderr.strip()[-300:])
        v = parse_number(res.stdout) if res.status == "ok" else None
        return (format_number(v), None) if v is not None else (None, _feedback(res, timeout))

    with ThreadPoolExecutor(max_workers=workers or max(1, min(4, os.cpu_count() or 1))) as pool:
        todo = list(range(len(rows)))
        convo = [list(m) for m in prompts]
        for attempt in range(repairs + 1):
            got = list(pool.map(run, [replies[i] for i in todo]))
            retry = []
            for i, (answer, feedback) in zip(todo, got):
                answers[i] = answer
                if answer is None and feedback is not None:
                    convo[i] += [{"role": "assistant", "content": str(replies[i])[:3000]},
                                 {"role": "user", "content": f"{feedback} Fix it and reply with the whole corrected program in one ```python block."}]
                    retry.append(i)
            if spare_calls is not None:
                retry = retry[:max(0, spare_calls)]
                spare_calls -= len(retry)
            if attempt == repairs or not retry:
                break
            fixed = llm.text_many([convo[i] for i in retry], stage=stage, max_tokens=600, temperature=temperature)
            for i, reply in zip(retry, fixed):
                replies[i] = reply
            todo = retry
    return answers
