"""The README's journeys, run as written: every code block marked `<!-- readme-test -->` is executed against the live
server (curl through bash, `manage.py` lines in-process against the test database) on the demo `seed_demo` creates,
so an edited README that no longer works fails here. Also: the sandbox credentials it lists are the simulators'."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from integrations import connections
from integrations.annexcloud import sandbox as annex_cloud_simulator
from integrations.attentive import sandbox as attentive_simulator
from integrations.models import ApiToken, Client, Connection
from integrations.vendors import vendor_modules
from integrations.vibes import sandbox as vibes_simulator
from members.models import LoyaltyEvent, Member, Segment

pytestmark = pytest.mark.django_db(transaction=True)

README = Path(__file__).resolve().parents[1] / "README.md"
DOCUMENTED_HOST = "http://127.0.0.1:8000"
MARKED_BLOCK = re.compile(r"<!-- readme-test -->\s*\n\s*```sh\n(.*?)\n\s*```", re.DOTALL)


def marked_commands() -> list[str]:
    """Each command of the marked blocks: continuation lines joined, comments dropped."""
    commands: list[str] = []
    for block in MARKED_BLOCK.findall(README.read_text()):
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]
    return commands


@pytest.fixture
def demo(live_server, settings, tmp_path):
    """The demo of `make run`, its simulators served by the live server, Attentive and Vibes verified as the README
    says, and what the README asks the reader to export."""
    settings.DEBUG = True
    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    for simulator in (attentive_simulator, vibes_simulator, annex_cloud_simulator):
        simulator.state.__init__()
    call_command("seed_demo", stdout=StringIO())
    client = Client.objects.get(slug="demo")
    for vendor in ("attentive", "vibes"):
        outcome = connections.verify(Connection.objects.get(client=client, vendor=vendor))
        assert outcome.ok, outcome.message
    _, key = ApiToken.issue(client, "readme")
    env = {
        "TOKEN": key,
        "MEMBER_ID": str(Member.objects.get(client=client, email="amanda@example.com").pk),
        "SEGMENT_ID": str(Segment.objects.get(client=client, name="Demo members").pk),
    }
    yield live_server.url, env, tmp_path
    for simulator in (attentive_simulator, vibes_simulator, annex_cloud_simulator):
        simulator.state.__init__()


def run_curl(command: str, url: str, env: dict[str, str], cwd: Path) -> str:
    # --fail-with-body: an HTTP error answer fails the command (and shows the body in the assertion).
    command = command.replace(DOCUMENTED_HOST, url).replace("curl ", "curl -sS --fail-with-body ", 1)
    done = subprocess.run(
        ["bash", "-c", command], env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_manage(command: str, url: str, env: dict[str, str]) -> str:
    words = shlex.split(command.replace(DOCUMENTED_HOST, url))
    args = words[words.index("manage.py") + 1 :]
    for name, value in env.items():
        args = [arg.replace("$" + name, value) for arg in args]
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_every_marked_readme_command_works_on_the_demo(demo):
    url, env, cwd = demo
    commands = marked_commands()
    assert len(commands) >= 8, commands
    outputs = {}
    for command in commands:
        if "manage.py" in command:
            outputs[command] = run_manage(command, url, env)
        else:
            assert command.startswith("curl "), command
            outputs[command] = run_curl(command, url, env, cwd)
    # What the journeys promise happened.
    assert LoyaltyEvent.objects.filter(external_id="demo-order-1001", member__email="amanda@example.com").exists()
    assert (cwd / "segment.csv").read_text().startswith('"phone","email"')
    assert attentive_simulator.state.fail == "403"
    points = next(out for cmd, out in outputs.items() if "/points/" in cmd)
    assert '"points_after"' in points and "applied" in points.lower()
    callback = next(out for cmd, out in outputs.items() if "vibes_send_callback" in cmd)
    assert "HTTP 20" in callback


def test_the_readme_lists_each_simulators_credentials():
    text = README.read_text()
    for key, module in vendor_modules("sandbox").items():
        for value in [*module.DEMO_SECRETS.values(), *getattr(module, "DEMO_SETTINGS", {}).values()]:
            assert f"`{value}`" in text, f"{key}: {value} is not in the README"
