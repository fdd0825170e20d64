"""`make run`'s process runner: starts each process of portal/Procfile (web, worker, beat) with its output prefixed
by its name, and on Ctrl-C (or SIGTERM) stops them as a terminal would and exits 0.

Why not honcho: on Ctrl-C the terminal already sends SIGINT to every process in the foreground group, and honcho
then sends SIGTERM on top (and SIGKILL after its timeout), so Celery logged a second, "cold" shutdown with SIGTERM
errors from its pool, honcho printed the kills and exited 130 (make: *** Error 130). Here each process runs in its own
session, so only this runner gets the terminal's SIGINT; it hands each process group exactly one SIGINT (Celery's
warm shutdown, runserver's quiet exit), waits, and escalates only for a process that does not stop.

    python -m portal.run [--procfile portal/Procfile] [--grace 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 20.0


def read_procfile(path: Path) -> dict[str, str]:
    """name -> command, from `name: command` lines (blank lines and # comments skipped)."""
    processes: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


class Runner:
    def __init__(self, processes: dict[str, str], grace: float) -> None:
        self.commands = processes
        self.grace = grace
        self.width = max(len(name) for name in processes)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()
        self.print_lock = threading.Lock()

    def say(self, name: str, text: str) -> None:
        with self.print_lock:
            sys.stdout.write(f"{name.ljust(self.width)} | {text}\n")
            sys.stdout.flush()

    def start(self) -> None:
        for name, command in self.commands.items():
            proc = subprocess.Popen(  # noqa: S602 - the Procfile's commands are shell lines (${PORTAL_PORT:-8000})
                command,
                shell=True,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},  # lines appear as they are written
                # Its own session: the terminal's Ctrl-C reaches only this runner, which stops each process once.
                start_new_session=True,
            )
            self.procs[name] = proc
            threading.Thread(target=self.relay, args=(name, proc), daemon=True).start()
            self.say("system", f"{name} started (pid {proc.pid})")

    def relay(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.say(name, raw.decode(errors="replace").rstrip())

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()

    def wait(self) -> int:
        """Until Ctrl-C (exit 0) or until a process ends by itself (the others are stopped; exit 1)."""
        while not self.stopping.wait(0.2):
            ended = [name for name, proc in self.procs.items() if proc.poll() is not None]
            if ended:
                for name in ended:
                    self.say("system", f"{name} exited with code {self.procs[name].returncode}: stopping the others")
                self.stop("a process ended")
                return 1
        self.stop("Ctrl-C")
        return 0

    def stop(self, reason: str) -> None:
        self.say("system", f"stopping ({reason})")
        self.signal_all(signal.SIGINT)
        if not self.wait_all(self.grace):
            self.signal_all(signal.SIGTERM)
            if not self.wait_all(5):
                self.signal_all(signal.SIGKILL)
                self.wait_all(5)
        time.sleep(0.2)  # let the relays print the last lines
        self.say("system", "stopped")

    def signal_all(self, signum: int) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is None:
                if signum != signal.SIGINT:
                    self.say("system", f"{name} did not stop: sending {signal.Signals(signum).name}")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signum)

    def wait_all(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procfile", type=Path, default=ROOT / "portal" / "Procfile")
    parser.add_argument("--grace", type=float, default=GRACE_SECONDS, help="Seconds to stop before SIGTERM.")
    args = parser.parse_args(argv)
    runner = Runner(read_procfile(args.procfile), args.grace)
    signal.signal(signal.SIGINT, runner.request_stop)
    signal.signal(signal.SIGTERM, runner.request_stop)
    runner.start()
    return runner.wait()


if __name__ == "__main__":
    sys.exit(main())
