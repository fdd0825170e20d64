"""Local simulators of every vendor, speaking the documented contracts. Mounted under /sandbox/ only when
SANDBOX_ENABLED; used by `make run`'s demo and by end-to-end tests. Each vendor's simulator is its package's
`sandbox.py`; this package holds what they share and mounts them."""
