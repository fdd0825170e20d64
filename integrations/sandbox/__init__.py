"""Local simulators of every vendor, speaking the documented contracts. Mounted under /sandbox/ only when
SANDBOX_ENABLED; used by `make run`'s demo and by end-to-end tests. Each vendor adds a module here and lists its
URL patterns in `urls.py`."""
