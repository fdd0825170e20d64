"""What settings take from the vendor registry instead of naming vendors: the apps installed, the queue of every
vendor task, the schedules and the admin templates each vendor package carries."""

from __future__ import annotations

from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.template.loader import get_template

from integrations.job_catalog import SCHEDULES
from integrations.queue import task_named
from integrations.vendors import VENDOR_PACKAGES, VENDORS, vendor_apps
from portal.celery import app as celery_app


def queue_of(task_name: str) -> str:
    return celery_app.amqp.router.route({}, task_name)["queue"].name


def test_every_vendor_package_with_an_apps_module_is_installed_under_the_vendors_key():
    installed = {config.name: config.label for config in apps.get_app_configs()}
    expected = {spec.package: spec.key for spec in VENDORS.values() if spec.is_app}
    assert {"integrations.attentive", "integrations.vibes", "integrations.first_orion"} <= set(expected)
    assert {package: installed.get(package) for package in expected} == expected


def test_vendor_tasks_go_to_the_queue_their_spec_names():
    assert queue_of("integrations.attentive_subscribe") == "sync"
    assert queue_of("integrations.attentive_unsubscribe") == "sync"
    assert queue_of("integrations.match_vibes_persons") == "sync"
    assert queue_of("first_orion.run_push") == "bulk"
    assert queue_of("bazaarvoice.pull_reviews") == "bulk"
    assert queue_of("sessionm.scan_offers") == "sync"
    # Shared tasks keep their routes; a task nobody routes goes to the default queue.
    assert queue_of("integrations.process_received_callbacks") == "inbound"
    assert queue_of("integrations.roll_up_callbacks") == "celery"


def test_the_moved_vendor_tasks_keep_their_names_and_the_vibes_schedule_comes_from_its_spec():
    for name in ("integrations.attentive_subscribe", "integrations.attentive_unsubscribe"):
        assert task_named(name).__module__ == "integrations.attentive.tasks"
    assert task_named("integrations.match_vibes_persons").__module__ == "integrations.vibes.tasks"
    vibes_schedules = {schedule.task for schedule in VENDORS["vibes"].schedules}
    assert "integrations.match_vibes_persons" in vibes_schedules
    assert vibes_schedules <= {schedule.task for schedule in SCHEDULES}


def test_vendor_admin_templates_are_found_in_the_vendors_package():
    for vendor, template in [
        ("annexcloud", "admin/annexcloud/site_credentials.html"),
        ("attentive", "admin/attentive/activate.html"),
        ("bazaarvoice", "admin/bazaarvoice/pull_now.html"),
        ("first_orion", "admin/first_orion/confirm_push.html"),
        ("sessionm", "admin/sessionm/campaigns.html"),
    ]:
        assert f"/integrations/{vendor}/templates/" in get_template(template).origin.name


def test_the_vendor_apps_are_installed_from_the_registry_and_settings_name_none():
    assert vendor_apps() and set(vendor_apps()) <= set(settings.INSTALLED_APPS)
    # Every registered package that is an app is installed (Attentive has models since its sign-up sources moved).
    assert {"integrations.attentive", "integrations.vibes"} <= set(vendor_apps()) <= set(VENDOR_PACKAGES)
    source = (Path(__file__).resolve().parent.parent / "portal" / "settings.py").read_text()
    assert [package for package in VENDOR_PACKAGES if f'"{package}"' in source] == []
