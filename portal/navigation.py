"""The admin's navigation grouped by what people do, not by Django app: each section lists the models (and pages)
of one task. A model not named here lands in its vendor's activity (vendor apps) or in Administration."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.text import slugify

from integrations.vendors import VENDORS

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Clients & connections",
        ("integrations.client", "integrations.connection", "integrations.apitoken", "integrations.auditentry"),
    ),
    (
        "Members & segments",
        (
            "members.member",
            "members.segment",
            "members.segmentexport",
            "members.memberimport",
            "members.membervendorstate",
            "members.pointstransaction",
        ),
    ),
    ("Messaging", ("members.loyaltyevent", "members.messagetemplate", "members.outboundmessage")),
    ("Vendors' activity", ("integrations.vendorcall", "integrations.webhookevent")),
    ("Jobs", ("integrations.jobrun",)),
)
VENDOR_SECTION = "Vendors' activity"
OTHER_SECTION = "Administration"
# django-celery-beat's raw tables are edited through the Jobs page; the periodic task list stays reachable from it.
HIDDEN = {"django_celery_beat.periodictask"}


def section_of(model_label: str) -> str:
    for name, labels in SECTIONS:
        if model_label in labels:
            return name
    app_label = model_label.split(".", 1)[0]
    return VENDOR_SECTION if app_label in VENDORS else OTHER_SECTION


def grouped(app_list: list[dict[str, Any]], *, site_admin: bool) -> list[dict[str, Any]]:
    """Django's per-app list regrouped into the task sections, in SECTIONS order, Administration last."""
    sections: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in SECTIONS}
    sections[OTHER_SECTION] = []
    order = {label: i for _, labels in SECTIONS for i, label in enumerate(labels)}
    for app in app_list:
        for model in app["models"]:
            label = f"{app['app_label']}.{model['object_name'].lower()}"
            if label not in HIDDEN:
                model["_order"] = order.get(label, len(order))
                sections[section_of(label)].append(model)
    if site_admin:
        sections["Jobs"].insert(0, page("Jobs & schedules", "Jobs", reverse("admin:jobs")))
    return [
        section(name, sorted(models, key=lambda m: (m.pop("_order", 0), m["name"])))
        for name, models in sections.items()
        if models
    ]


def page(name: str, object_name: str, url: str) -> dict[str, Any]:
    """A page that is not a model's list, shaped like a model entry of Django's app list."""
    return {"name": name, "object_name": object_name, "admin_url": url, "add_url": None, "view_only": True,
            "perms": {"view": True}}  # fmt: skip


def section(name: str, models: list[dict[str, Any]]) -> dict[str, Any]:
    slug = slugify(name)
    # app_url is an anchor, not a page: Django marks the section holding the current page by its models' URLs.
    return {"name": name, "app_label": slug, "app_url": f"#{slug}", "has_module_perms": True, "models": models}
