"""Real systemd test hosts: systemd-nspawn containers booted from a debootstrapped Debian rootfs.

Each host shares the machine's network and gets its own loopback address (127.0.0.x), so services
on different hosts never clash on ports. The rootfs is built once, cached outside the work tree, and
never modified: every host boots with a volatile overlay and loses its changes when it stops.

    python3 scripts/testhosts.py image                      # build the cached rootfs if missing
    python3 scripts/testhosts.py up NAME=127.0.0.11 ...     # boot hosts; prints their JSON records
    python3 scripts/testhosts.py down NAME ...              # power them off (all hosts without NAME)
    python3 scripts/testhosts.py list

Needs root, and Debian's systemd-container and debootstrap packages (installed when missing).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOTFS = Path(os.environ.get("NATSOPS_ROOTFS", "/var/cache/natsops/rootfs-bookworm"))
MIRROR = os.environ.get("NATSOPS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates"
STATE = Path(os.environ.get("NATSOPS_HOSTS_STATE", "/run/natsops-testhosts"))
CGROUP_ROOTS = [Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")]
BOOT_TIMEOUT = 120.0  # seen over 60 s on a 2-core machine busy with other tests


def run(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, text=True, capture_output=True, **kwargs)


def ensure_tools() -> None:
    if shutil.which("systemd-nspawn") and shutil.which("debootstrap"):
        return
    quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "install", "-y", "-q", "systemd-container", "debootstrap", env=quiet)


def ensure_image() -> Path:
    """Build the rootfs once (about a minute); later calls reuse it."""
    ensure_tools()
    if (ROOTFS / "usr" / "lib" / "systemd" / "systemd").exists():
        return ROOTFS
    building = ROOTFS.with_name(ROOTFS.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    run("debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(building), MIRROR)
    (building / "etc" / "hostname").unlink(missing_ok=True)  # the machine name becomes the hostname
    (building / "etc" / "machine-id").write_text("")  # a fresh id on every boot
    for deb in (building / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        deb.unlink()
    building.rename(ROOTFS)
    return ROOTFS


def _cgroups(name: str) -> list[Path]:
    return [root / f"nspawn-{name}" for root in CGROUP_ROOTS if root.exists()]


def _init_pid(nspawn_pid: int) -> int | None:
    try:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def _record(name: str) -> dict | None:
    try:
        return json.loads((STATE / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def up(name: str, address: str) -> dict:
    """Boot one host and wait until systemd reports it running."""
    if (existing := _record(name)) and Path(f"/proc/{existing['nspawn_pid']}").exists():
        return existing
    image = ensure_image()
    STATE.mkdir(parents=True, exist_ok=True)
    groups = _cgroups(name)
    for group in groups:
        group.mkdir(exist_ok=True)
    # Each container in its own cgroup, or two of them collide on /payload.
    enter = "; ".join(f"echo $$ > {group}/cgroup.procs" for group in groups)
    # The hosts trust what this machine trusts (a proxy's CA, say), so pip and apt work inside as outside.
    certificates = "--bind-ro=/etc/ssl/certs " if Path("/etc/ssl/certs").is_dir() else ""
    command = (
        f"{enter}; exec systemd-nspawn -q -b -D {image} -M {name} --register=no --keep-unit "
        f"--volatile=overlay --console=read-only {certificates}"
    )
    log = open(STATE / f"{name}.log", "w")  # noqa: SIM115  (the container keeps writing to it)
    process = subprocess.Popen(
        ["sh", "-c", command],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"},
        start_new_session=True,
    )
    deadline = time.monotonic() + BOOT_TIMEOUT
    init = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (STATE / f"{name}.log").read_text()[-2000:]
            raise SystemExit(f"{name}: systemd-nspawn exited with {process.returncode}: {output}")
        init = init or _init_pid(process.pid)
        if init:
            state = run("nsenter", "-t", str(init), "-a", "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                break
        time.sleep(0.1)
    else:
        down(name, process.pid)
        raise SystemExit(f"{name}: not running within {BOOT_TIMEOUT}s")
    record = {"name": name, "address": address, "nspawn_pid": process.pid, "init_pid": init}
    (STATE / f"{name}.json").write_text(json.dumps(record))
    return record


def down(name: str, nspawn_pid: int | None = None) -> None:
    """Power a host off (SIGKILL if it hangs) and remove its cgroups and record."""
    record = _record(name) or {}
    pid = nspawn_pid or record.get("nspawn_pid")
    if pid and Path(f"/proc/{pid}").exists():
        init = record.get("init_pid") or _init_pid(pid)
        if init:
            run("nsenter", "-t", str(init), "-a", "systemctl", "poweroff", check=False)
        deadline = time.monotonic() + 15
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.killpg(pid, signal.SIGKILL)
            time.sleep(0.5)
    for group in _cgroups(name):
        for child in sorted(group.glob("**/"), key=lambda path: len(path.parts), reverse=True):
            with contextlib.suppress(OSError):  # a cgroup still in use stays; the next run reuses it
                child.rmdir()
    (STATE / f"{name}.json").unlink(missing_ok=True)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
        os.waitpid(pid, os.WNOHANG)


def names() -> list[str]:
    return sorted(path.stem for path in STATE.glob("*.json")) if STATE.exists() else []


def main(argv: list[str]) -> None:
    if os.geteuid() != 0:
        raise SystemExit("test hosts need root (systemd-nspawn, cgroups, nsenter)")
    command, args = (argv[0], argv[1:]) if argv else ("list", [])
    if command == "image":
        print(ensure_image())
    elif command == "up":
        print(json.dumps([up(*spec.split("=", 1)) for spec in args]))
    elif command == "down":
        for name in args or names():
            down(name)
    elif command == "list":
        print(json.dumps([_record(name) for name in names()]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
