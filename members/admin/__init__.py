"""Admin of the loyalty side, split by subject and scoped to the user's clients like everything else."""

from members.admin import members, messages, segments, sync

__all__ = ["members", "messages", "segments", "sync"]
