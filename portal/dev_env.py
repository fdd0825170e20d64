"""Write a development `.env` with fresh secrets, once: `python -m portal.dev_env`.

Used by `make run` so a new checkout starts with its own SECRET_KEY and encryption key; an existing `.env` is
never touched (its key opens the secrets already stored in var/).
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ENV_FILE = Path(__file__).resolve().parent.parent / ".env"


def development_env() -> str:
    return "\n".join(
        [
            "# Development settings written by `python -m portal.dev_env`. Never commit this file.",
            "DEBUG=true",
            "SANDBOX_ENABLED=true",
            f"SECRET_KEY={secrets.token_urlsafe(50)}",
            f"FIELD_ENCRYPTION_KEYS={Fernet.generate_key().decode()}",
            "",
        ]
    )


def main() -> int:
    if ENV_FILE.exists():
        print(f"{ENV_FILE.name} exists; keeping it.")
        return 0
    ENV_FILE.write_text(development_env())
    ENV_FILE.chmod(0o600)
    print(f"Wrote {ENV_FILE.name} with a new SECRET_KEY and encryption key.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
