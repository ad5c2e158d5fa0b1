"""ansible-playbook runs for the tests: the one way every test starts a real ``ansible-playbook`` process.

``run_playbook`` runs a playbook to its end and returns what it printed; ``start_playbook`` starts one and
returns the process. Both give it the collection from the build (``.build/collections``), this interpreter for
every host, no colour and no warnings about the implicit localhost, with the extra variables in a JSON file
(``-e @file``) and the inventory (INI text or a YAML dict) in one, both in ``workdir``.

``PlaybookRun`` is one module task run that way, which a test can wait for or kill (SIGKILL). The in-process
harness (support.modules) cannot run two modules at once: it patches AnsibleModule for the whole process. A
playbook process can, and it is what an operator runs; a test can stop or kill it, module process included.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
COLLECTIONS_PATH = str(REPO_ROOT / ".build" / "collections")


def playbook_command(
    playbook: str | Path,
    workdir: Path,
    *,
    extra_vars: Mapping[str, Any] | None = None,
    inventory: str | Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    verbosity: int = 0,
    check: bool = False,
    diff: bool = False,
    json_output: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of an ``ansible-playbook`` run of ``playbook`` (a path, or a
    collection's playbook by name: ``natsops.jetstream.backup``).

    ``extra_vars`` come after ``ansible_python_interpreter`` (this interpreter), which they may override;
    ``inventory`` is INI text or a YAML inventory as a dict; ``env`` is laid over ``environ`` (``os.environ``
    unless given) and the settings every run has; ``verbosity`` is the -v count (``ANSIBLE_VERBOSITY`` from
    outside adds nothing); ``json_output`` prints the ``ansible.builtin.json`` callback's report (see
    ``json_report``) instead of the default output.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    run_id = f"{Path(str(playbook)).stem}-{os.urandom(3).hex()}"  # runs side by side in one workdir stay apart
    vars_file = workdir / f"{run_id}-vars.json"
    vars_file.write_text(json.dumps({"ansible_python_interpreter": sys.executable, **(extra_vars or {})}))
    command = [ANSIBLE_PLAYBOOK, str(playbook)]
    if inventory is not None:
        if isinstance(inventory, str):
            inventory_file = workdir / f"{run_id}-inventory.ini"
            inventory_file.write_text(inventory)
        else:
            inventory_file = workdir / f"{run_id}-inventory.yml"
            inventory_file.write_text(yaml.safe_dump(dict(inventory)))
        command += ["-i", str(inventory_file)]
    command += ["-e", f"@{vars_file}"]
    command += ["-" + "v" * verbosity] if verbosity else []
    command += ["--check"] if check else []
    command += ["--diff"] if diff else []
    environment = {
        **(os.environ if environ is None else environ),
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_VERBOSITY": "0",
        **({"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"} if json_output else {}),
        **(env or {}),
    }
    return command, environment


def run_playbook(
    playbook: str | Path, workdir: Path, *, cwd: Path | None = None, timeout: float = 300, **options: Any
) -> subprocess.CompletedProcess[str]:
    """``playbook`` run to its end (``options``: those of ``playbook_command``), in ``cwd``; its stdout and
    stderr captured as text, its returncode left for the test to judge."""
    command, env = playbook_command(playbook, workdir, **options)
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False)


def start_playbook(playbook: str | Path, workdir: Path, **options: Any) -> subprocess.Popen[str]:
    """``playbook`` started in a session of its own (stdout and stderr piped, as text), for a test to wait for,
    signal or kill."""
    command, env = playbook_command(playbook, workdir, **options)
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def json_report(stdout: str) -> dict[str, Any]:
    """The ``ansible.builtin.json`` callback's report (``json_output``): the last thing printed, after any -v
    lines (connection, commands)."""
    return json.loads(stdout[stdout.index("{") if stdout.startswith("{") else stdout.index("\n{\n") :])


class PlaybookRun:
    """``ansible-playbook`` running one task of ``natsops.jetstream.<module>`` with ``args`` on localhost."""

    def __init__(self, workdir: Path, module: str, args: dict[str, Any], check: bool = False, verbosity: int = 0):
        workdir.mkdir(parents=True, exist_ok=True)
        playbook = workdir / f"{module}-{os.urandom(3).hex()}.yml"
        task = {"name": module, f"natsops.jetstream.{module}": args}
        play = {"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [task]}
        playbook.write_text(json.dumps([play], indent=2))
        self.process = start_playbook(playbook, workdir, check=check, verbosity=verbosity, json_output=True)
        self.output = ""

    def processes(self) -> list[int]:
        """ansible-playbook and every process under it: its worker runs the module in a session of its own."""
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        found, queue = [], [self.process.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            queue.extend(children.get(pid, []))
        return found

    def signal(self, signum: int) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def kill(self) -> None:
        """SIGKILL ansible-playbook and the module process under it, as a lost controller would end them."""
        victims = self.processes()
        self.signal(signal.SIGKILL)
        self.process.wait(10)
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in victims):  # one stuck in a disk write dies once it returns
            if time.monotonic() > deadline:
                raise AssertionError(f"processes {victims} still run 10 s after SIGKILL")
            time.sleep(0.05)

    def result(self, timeout: float = 300) -> dict[str, Any]:
        """The task's result (``failed`` set when the module failed)."""
        stdout, stderr = self.process.communicate(timeout=timeout)
        self.output = stdout + stderr
        try:
            return json_report(stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError):
            raise AssertionError(f"ansible-playbook gave no task result:\n{self.output[-4000:]}") from None


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
