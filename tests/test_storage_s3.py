"""Files that every host can read (issue 22): with STORAGE_URL=s3://… member imports and segment exports live in an
S3-compatible store, so the worker that imports an upload, or writes an export, need not share a disk with the web
host that took it.

The end-to-end test starts moto's S3 server itself. The web side is this process (its own MEDIA_ROOT); the worker
side is another process with another MEDIA_ROOT, running the queued task by name on the same database. The bucket's
own listing (what the S3 server holds) is the record of where each file went, and both MEDIA_ROOTs stay empty."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest
import requests
from django.conf import settings as django_settings
from django.urls import reverse

from members.models import Member, MemberImport, SegmentExport
from portal.storage_url import S3_BACKEND, StorageUrlError, default_storage_from_url
from tests.factories import MemberFactory, SegmentFactory

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "portal-files"
REGION = "us-east-1"
# moto accepts any key; these are placeholders, never real credentials.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-access-key", "AWS_SECRET_ACCESS_KEY": "test-secret-key"}

# The worker side: one delivery of a queued task, run as a worker runs it (the task, its job run, its retries).
WORKER = """
import json, sys
import django
django.setup()
from django.conf import settings
from integrations.queue import task_named
result = task_named(sys.argv[1]).apply(args=[int(sys.argv[2])])
print(json.dumps({"media_root": str(settings.MEDIA_ROOT), "ok": result.successful(), "result": repr(result.result)}))
"""


# --- STORAGE_URL ---------------------------------------------------------------------------------------------------


def test_no_storage_url_keeps_files_under_media_root():
    assert default_storage_from_url("") == {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def test_an_s3_url_names_the_bucket_prefix_and_endpoint():
    storage = default_storage_from_url("s3://files/portal/prod?endpoint_url=https://s3.example:9000&region_name=eu-1")
    assert storage == {
        "BACKEND": S3_BACKEND,
        "OPTIONS": {
            "bucket_name": "files",
            "location": "portal/prod",
            "file_overwrite": False,
            "endpoint_url": "https://s3.example:9000",
            "region_name": "eu-1",
        },
    }


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("s3://AKIA-KEY:hunter2-pass@files", "must not hold credentials"),
        ("s3://files?acl=public-read", "unknown option acl"),
        ("ftp://files", "must start with s3://"),
        ("s3:///prefix", "names no bucket"),
    ],
)
def test_a_storage_url_the_portal_cannot_use_is_refused_in_words(url, words):
    with pytest.raises(StorageUrlError) as refused:
        default_storage_from_url(url)
    assert words in str(refused.value) and "hunter2" not in str(refused.value)


# --- A web host and a worker that share no disk ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def answers(url: str) -> bool:
    """Whether the server answers at all. Its first answer loads most of moto, which on a loaded machine takes
    seconds after the port is open: a read that times out means "not yet", as a refused connection does."""
    try:
        requests.get(url, timeout=(1, 10))
    except (requests.ConnectionError, requests.Timeout):
        return False
    return True


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory) -> Iterator[str]:
    """moto's S3 server on a free port, with the bucket made."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: answers(endpoint), timeout=60), "moto's S3 server did not answer within 60 s"
        bucket_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()


def bucket_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **lower_keys(CREDENTIALS))


def lower_keys(credentials: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
    }


def bucket_keys(endpoint: str, prefix: str) -> list[str]:
    listing = bucket_client(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def database_url() -> str:
    """The test database, for the worker process."""
    db = django_settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Hosts:
    """This process as the web host, and a worker on another "host": a process with its own MEDIA_ROOT."""

    def __init__(self, storage_url: str, web_media: Path, worker_media: Path) -> None:
        self.storage_url, self.web_media, self.worker_media = storage_url, web_media, worker_media

    def run_on_worker(self, task: str, object_id: int) -> None:
        env = {
            **os.environ,
            **CREDENTIALS,
            "DJANGO_SETTINGS_MODULE": "portal.test_settings",
            "DATABASE_URL": database_url(),
            "STORAGE_URL": self.storage_url,
            "TEST_MEDIA_ROOT": str(self.worker_media),
        }
        done = subprocess.run(
            [sys.executable, "-c", WORKER, task, str(object_id)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["media_root"] == str(self.worker_media)
        assert report["ok"], report["result"]


@pytest.fixture
def hosts(s3_endpoint, settings, monkeypatch, tmp_path) -> Hosts:
    storage_url = f"s3://{BUCKET}/portal?endpoint_url={s3_endpoint}&region_name={REGION}"
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    web_media, worker_media = tmp_path / "web-media", tmp_path / "worker-media"
    web_media.mkdir()
    worker_media.mkdir()
    settings.MEDIA_ROOT = str(web_media)
    settings.STORAGES = {**settings.STORAGES, "default": default_storage_from_url(storage_url)}
    return Hosts(storage_url, web_media, worker_media)


def member_rows(count: int) -> bytes:
    rows = ["email,phone,first_name", *(f"m{n}@example.com,+1404555{n:04d},First {n}" for n in range(count))]
    return ("\n".join(rows) + "\n").encode()


@pytest.mark.django_db(transaction=True)
def test_a_background_import_taken_by_the_web_host_is_imported_by_a_worker_on_another(
    hosts, s3_endpoint, admin_http, client_a, settings
):
    settings.MEMBER_IMPORT_SYNC_MAX_ROWS = 2
    upload = io.BytesIO(member_rows(5))
    upload.name = "members.csv"
    page = admin_http.post(reverse("admin:members_member_import"), {"client": client_a.pk, "file": upload}, follow=True)
    assert "5 rows are being imported in the background" in page.content.decode()
    member_import = MemberImport.objects.get()
    assert member_import.status == MemberImport.Status.QUEUED
    assert bucket_keys(s3_endpoint, "portal/member-imports/") == [f"portal/{member_import.file.name}"]

    hosts.run_on_worker("members.import_members", member_import.pk)

    member_import.refresh_from_db()
    assert (member_import.status, member_import.created, member_import.failed) == ("done", 5, 0)
    assert sorted(Member.objects.filter(client=client_a).values_list("phone", flat=True))[-1] == "+14045550004"
    assert bucket_keys(s3_endpoint, "portal/member-imports/") == []  # the upload is deleted once imported
    assert files_under(hosts.web_media) == files_under(hosts.worker_media) == []


@pytest.mark.django_db(transaction=True)
def test_a_segment_export_written_by_a_worker_is_downloaded_from_the_web_host(
    hosts, s3_endpoint, api_client_for, client_a, settings
):
    settings.SEGMENT_EXPORT_STREAM_MAX_ROWS = 2
    segment = SegmentFactory(client=client_a, name="Everyone")
    for n in range(4):
        segment.members.add(MemberFactory(client=client_a, phone=f"+1404555{n:04d}"))
    api = api_client_for(client_a)
    queued = api.get(f"/api/segments/{segment.pk}/export/")
    assert queued.status_code == 202
    export = SegmentExport.objects.get()

    hosts.run_on_worker("members.export_segment", export.pk)

    status = api.get(queued["Location"]).json()
    assert (status["status"], status["rows"]) == ("ready", 4)
    download = api.get(status["download_url"])
    body = b"".join(download.streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert [row[0] for row in rows] == ["phone", "+14045550000", "+14045550001", "+14045550002", "+14045550003"]
    export.refresh_from_db()
    key = f"portal/{export.file.name}"
    assert bucket_keys(s3_endpoint, "portal/segment-exports/") == [key]
    assert bucket_client(s3_endpoint).get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    assert files_under(hosts.web_media) == files_under(hosts.worker_media) == []
