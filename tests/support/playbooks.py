"""One module task run by a real ansible-playbook process, which a test can wait for or kill (SIGKILL).

The in-process harness (support.modules) cannot run two modules at once: it patches AnsibleModule for
the whole process. A playbook process can, and it is what an operator runs; a test can stop or kill it,
module process included.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


class PlaybookRun:
    """``ansible-playbook`` running one task of ``natsops.jetstream.<module>`` with ``args`` on localhost."""

    def __init__(self, workdir: Path, module: str, args: dict[str, Any], check: bool = False, verbosity: int = 0):
        workdir.mkdir(parents=True, exist_ok=True)
        playbook = workdir / f"{module}-{os.urandom(3).hex()}.yml"
        task = {"name": module, f"natsops.jetstream.{module}": args}
        play = {"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [task]}
        playbook.write_text(json.dumps([play], indent=2))
        env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".build" / "collections"),
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        }
        command = (
            [ANSIBLE_PLAYBOOK, str(playbook)]
            + (["--check"] if check else [])
            + (["-" + "v" * verbosity] if verbosity else [])
        )
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
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
            # The json callback's report is the last thing printed; -v lines (connection, commands) come first.
            report = json.loads(stdout[stdout.index("{") if stdout.startswith("{") else stdout.index("\n{\n") :])
            return report["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError):
            raise AssertionError(f"ansible-playbook gave no task result:\n{self.output[-4000:]}") from None


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
