"""Parrot as the registry knows it: where it lives, the key a connection holds, its scheduled pull and its queue."""

from __future__ import annotations

from integrations.vendor_spec import Schedule, SecretSpec, VendorSpec

SPEC = VendorSpec(
    key="parrot",
    label="Parrot",
    package="tests.parrot_vendor",
    base_urls={"production": "https://api.parrot.example"},
    secrets=(SecretSpec("api_key", "API key"),),
    schedules=(
        Schedule(
            name="Pull Parrot squawks",
            task="parrot.pull_squawks",
            crontab={"minute": "*/5"},
            description="Counts what Parrot's members said since the last pull.",
        ),
    ),
    task_queues={"parrot.*": "bulk"},
)
