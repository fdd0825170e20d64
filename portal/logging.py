"""The project's redaction hooks, named by settings.py: the filter on every log handler, Django's error-page filter
and Sentry's before_send. What they redact, and how, is integrations/redaction.py's."""

from __future__ import annotations

import logging
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

from integrations.redaction import redact_text


def redact_event(event: Any, hint: Any = None) -> Any:
    """Sentry's before_send: every string of an error report goes through the same redaction as log lines."""
    if isinstance(event, str):
        return redact_text(event)
    if isinstance(event, dict):
        return {key: redact_event(value) for key, value in event.items()}
    if isinstance(event, list | tuple):
        return [redact_event(value) for value in event]
    return event


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's safe filter (settings, POST parameters marked sensitive) plus every secret value the process knows,
    wherever it appears in a frame's local variables."""

    def cleanse_special_types(self, request: Any, value: Any) -> Any:
        value = super().cleanse_special_types(request, value)
        return redact_text(value) if isinstance(value, str) else value

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        return [
            (name, redact_text(value) if isinstance(value, str) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


class RedactSecretsFilter(logging.Filter):
    """Rewrites each record's final message (and traceback text) with secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = ()
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact_text(formatted)
            record.exc_info = None
        return True
