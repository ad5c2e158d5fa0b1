"""dr_drill's report.md, rendered by ansible.builtin.template as the playbook renders it (trim_blocks on): each
list item on a line of its own, whatever the report holds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.playbooks import run_playbook

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "playbooks" / "templates" / "dr_drill_report.md.j2"

STREAM = {
    "label": "stream ORDERS",
    "bytes": 614741,
    "duration": 0.029,
    "verification": {"match": True, "actual": {"messages": 3000, "first_seq": 1, "last_seq": 3000, "consumers": ["a"]}},
}
PASSED = {
    "drill": "20261202T083710Z",
    "passed": True,
    "backup_path": "/drills/20261202T083710Z/backup",
    "total_bytes": 614741,
    "backup_seconds": 0.025,
    "restore_seconds": 0.138,
    "skipped": [],
    "streams": [STREAM],
    "failures": [],
    "error": None,
}
CASES = {
    "passed": (PASSED, ["- Backup: ", "- Restore into the scratch target: "]),
    "existing backup": ({**PASSED, "backup_seconds": None}, ["- Backup: ", "- Restore into the scratch target: "]),
    "failed, with skips": (
        {
            **PASSED,
            "passed": False,
            "skipped": [{"stream": "CACHE", "reason": "memory storage"}, {"stream": "TMP", "reason": "memory storage"}],
            "error": "1 stream failed",
            "failures": [{"stream": "ORDERS", "msg": "expected 1501, got 1500"}, {"stream": "EVENTS", "msg": "gone"}],
        },
        ["- Backup: ", "- Restore into the scratch target: ", "- Skipped: ", "- ORDERS: ", "- EVENTS: "],
    ),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    workdir = tmp_path_factory.mktemp("drill-report")
    tasks = [
        {
            "name": f"Render {name}",
            "ansible.builtin.template": {"src": str(TEMPLATE), "dest": str(workdir / f"{index}.md"), "mode": "0644"},
            "vars": {"dr_drill_report": report},
        }
        for index, (name, (report, _items)) in enumerate(CASES.items())
    ]
    playbook = workdir / "render.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    run = run_playbook(playbook, workdir, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return {name: (workdir / f"{index}.md").read_text() for index, name in enumerate(CASES)}


@pytest.mark.parametrize("case", CASES)
def test_every_list_item_is_a_line_of_its_own(case: str, rendered: dict[str, str]) -> None:
    text = rendered[case]
    items = [line for line in text.splitlines() if line.startswith("- ")]
    assert [next(start for start in CASES[case][1] if item.startswith(start)) for item in items] == CASES[case][1]
    for start in CASES[case][1]:
        assert text.count(start.strip()) == 1, text  # never run into another line ("0.025 s- Restore ...")


def test_the_lines_say_what_happened(rendered: dict[str, str]) -> None:
    assert "- Backup: `/drills/20261202T083710Z/backup`, 614741 bytes in 0.025 s\n" in rendered["passed"]
    assert "- Restore into the scratch target: 0.138 s\n\n| Restored |" in rendered["passed"]
    assert "614741 bytes (an existing backup)\n- Restore" in rendered["existing backup"]
    failed = rendered["failed, with skips"]
    assert "Result: **FAILED**" in failed
    assert "- Skipped: CACHE (memory storage), TMP (memory storage)\n\n| Restored |" in failed
    assert "1 stream failed\n\n- ORDERS: expected 1501, got 1500\n- EVENTS: gone\n" in failed
    assert "| stream ORDERS | 3000 | 1 | 3000 | a | 614741 | 0.029 | yes |" in failed
