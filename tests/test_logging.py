"""One logging configuration redacts secrets and authorization headers, whatever logs them."""

from __future__ import annotations

import logging
import sys

from integrations.models import Connection
from integrations.redaction import register_secret_values
from portal.logging import redact_event
from tests.factories import ConnectionFactory


def handler_output(caplog_records) -> str:
    return "\n".join(r.getMessage() for r in caplog_records)


def format_through_portal_handler(record: logging.LogRecord) -> str:
    handler = logging.getLogger().handlers[0]
    for log_filter in handler.filters:
        log_filter.filter(record)
    return handler.format(record)


def make_record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("integrations", logging.INFO, __file__, 1, msg, args, None)


def test_authorization_headers_and_secret_pairs_are_redacted():
    line = format_through_portal_handler(
        make_record("sent %s", {"Authorization": "Bearer abcdef123456789", "password": "hunter22", "page": 2})
    )
    assert "abcdef123456789" not in line
    assert "hunter22" not in line
    assert "'page': 2" in line


def test_decrypted_secret_values_are_redacted_anywhere(db):
    connection = ConnectionFactory(secrets={"api_key": "unusual-secret-9f8e7d"})
    Connection.objects.get(pk=connection.pk)  # decrypting registers the values
    line = format_through_portal_handler(make_record("vendor said: key unusual-secret-9f8e7d is wrong"))
    assert "unusual-secret-9f8e7d" not in line
    assert "[redacted]" in line


def test_tracebacks_are_redacted_too():
    try:
        raise ValueError("token=leaky-token-value-1")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = format_through_portal_handler(record)
    assert "leaky-token-value-1" not in line
    assert "ValueError" in line


def test_error_reports_are_redacted_like_log_lines():
    register_secret_values(["sentry-report-secret-value"])
    event = {"exception": {"values": [{"value": "call failed with sentry-report-secret-value"}]}, "extra": [1, None]}
    redacted = redact_event(event)
    assert "sentry-report-secret-value" not in str(redacted)
    assert redacted["extra"] == [1, None]


def test_callback_url_tokens_are_redacted_from_log_lines():
    from integrations.redaction import redact_text

    line = "Not Found: /api/webhooks/vibes/Zx9-secret_TOKEN_value/"
    assert redact_text(line) == "Not Found: /api/webhooks/vibes/[redacted]/"


def test_a_log_line_with_a_secret_url_encoded_or_base64_encoded_is_redacted():
    """A request line logged by urllib3 carries a key as the URL wrote it: `+` becomes %2B."""
    import base64

    from integrations.redaction import redact_text, register_secret_values

    secret = "sessionm-key+with/odd=chars-0123"
    register_secret_values([secret])
    encoded = base64.b64encode(secret.encode()).decode()
    line = f"POST /priv/v1/apps/sessionm-key%2Bwith%2Fodd%3Dchars-0123/users HTTP/1.1 token={encoded}"
    assert secret.split("+")[0] not in redact_text(line)
    assert encoded not in redact_text(line)
