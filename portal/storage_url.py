"""STORAGE_URL: where the portal keeps its files (member imports, segment exports), read from one environment value.

- empty: the local disk under MEDIA_ROOT (one host, or a disk every host mounts);
- `s3://BUCKET/PREFIX?endpoint_url=…&region_name=…`: an S3-compatible store through django-storages, which every
  web host and worker reads alike, so an upload taken by one web host is imported by a worker on another.

Credentials are never part of the URL (a URL ends up in logs and error pages): the S3 backend takes them from
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the host's instance role), as boto3 does.

Imported by settings.py, so it imports nothing from Django."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

FILE_SYSTEM_BACKEND = "django.core.files.storage.FileSystemStorage"
S3_BACKEND = "storages.backends.s3.S3Storage"
# The S3Storage options a STORAGE_URL may set in its query string (the rest keep django-storages' defaults).
S3_QUERY_OPTIONS = frozenset({"endpoint_url", "region_name", "addressing_style", "signature_version"})


class StorageUrlError(ValueError):
    """A STORAGE_URL the portal cannot use; the message names the part at fault, never the whole URL."""


def default_storage_from_url(url: str) -> dict[str, Any]:
    """The STORAGES["default"] entry for `url` (see the module's doc)."""
    if not url:
        return {"BACKEND": FILE_SYSTEM_BACKEND}
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise StorageUrlError(f"STORAGE_URL must start with s3:// (or be empty for MEDIA_ROOT), not {parts.scheme}://")
    if "@" in parts.netloc:
        raise StorageUrlError(
            "STORAGE_URL must not hold credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead"
        )
    if not parts.netloc:
        raise StorageUrlError("STORAGE_URL names no bucket: s3://BUCKET/PREFIX?endpoint_url=…")
    query = dict(parse_qsl(parts.query, keep_blank_values=False))
    unknown = sorted(set(query) - S3_QUERY_OPTIONS)
    if unknown:
        noun = "option" if len(unknown) == 1 else "options"  # no ngettext: settings.py imports this module
        raise StorageUrlError(
            f"STORAGE_URL has unknown {noun} {', '.join(unknown)}; use {', '.join(sorted(S3_QUERY_OPTIONS))}"
        )
    options: dict[str, Any] = {
        "bucket_name": parts.netloc,
        "location": parts.path.strip("/"),
        # Two exports of one segment share a file name: the second gets a suffix, as on the local disk, instead of
        # replacing the first's file (django-storages overwrites by default).
        "file_overwrite": False,
        **query,
    }
    return {"BACKEND": S3_BACKEND, "OPTIONS": options}
