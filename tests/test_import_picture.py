"""The import picture (portal/import_picture.py): on the real tree no entry point imports another and integrations/
imports nothing of `portal` beyond its allow-list; on small fake trees each broken rule fails the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from portal import import_picture

REPO = Path(__file__).resolve().parent.parent


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """A fake checkout: the three packages (each with an __init__.py) and the given modules."""
    for package in import_picture.PACKAGES:
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_tree_keeps_both_rules_as_make_lint_runs_it() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "portal.import_picture"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert "BROKEN" not in run.stderr
    # The picture shows the mounting edges it allows, so a reader sees what the rule let through.
    assert "mounts    portal.urls -> members.api" in run.stdout


def test_an_admin_importing_the_client_api_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_tree(
        tmp_path,
        {
            "members/api.py": "def csv_download(segment): ...\n",
            "members/admin.py": "from members.api import csv_download\n",
        },
    )
    assert import_picture.main([str(root)]) == 1
    assert "an entry point imports another: members.admin -> members.api" in capsys.readouterr().err


ADMIN_SIBLING = {
    "members/admin/__init__.py": "from members.admin import members, sync\n",
    "members/admin/sync.py": "",
    # Relative, and inside a function: still one entry point importing another.
    "members/admin/members.py": "def inline():\n    from .sync import VendorStateInline\n",
}
VENDOR_TASKS = {
    "integrations/tasks.py": "",
    "integrations/vibes/__init__.py": "",
    "integrations/vibes/tasks.py": "from integrations import tasks\n",
}
METRICS_VIEWS = {"portal/views.py": "", "portal/metrics.py": "import portal.views\n"}
COMMAND_API = {"members/management/commands/report.py": "from members.api import MemberViewSet\n", "members/api.py": ""}


@pytest.mark.parametrize(
    "files",
    [ADMIN_SIBLING, VENDOR_TASKS, METRICS_VIEWS, COMMAND_API],
    ids=["admin-sibling-relative", "vendor-tasks", "metrics-views", "command-api"],
)
def test_every_kind_of_entry_point_is_caught(tmp_path: Path, files: dict[str, str]) -> None:
    lines, broken = import_picture.report(import_picture.edges(write_tree(tmp_path, files)))
    assert len(broken) == 1 and broken[0].startswith("an entry point imports another"), (lines, broken)


def test_what_may_import_an_entry_point_passes(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "portal/urls.py": "from portal.views import healthz\nfrom members.api import MemberViewSet\n",
            "portal/views.py": "from members.exports import csv_download\n",
            "members/api.py": "from members.exports import csv_download\n",
            "members/exports.py": "",
            # A vendor's api.py is its HTTP client: an admin may call it.
            "integrations/attentive/__init__.py": "",
            "integrations/attentive/api.py": "",
            "integrations/attentive/admin.py": "from integrations.attentive.api import AttentiveAPI\n",
        },
    )
    assert import_picture.main([str(root)]) == 0


def test_integrations_importing_the_project_package_fails_unless_allowed(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "portal/logging.py": "",
            "portal/celery.py": "",
            "integrations/http.py": "from portal.logging import redact_text\n",
            "integrations/queue.py": "from portal.celery import app\n",
        },
    )
    lines, broken = import_picture.report(import_picture.edges(root))
    assert broken == ["integrations imports the project package: integrations.http -> portal.logging"]
    assert any(line.startswith("allowed   integrations.queue -> portal.celery") for line in lines)
