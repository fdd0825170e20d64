"""Request hygiene for every view: NUL characters are refused with a 400 before any view or database sees them.

PostgreSQL text cannot hold NUL, so a NUL in a slug, a filter, a form or a JSON body would otherwise surface as a
500 from the database driver. Callback URLs are exempt: their deliveries are stored as received (with NUL replaced)
and refused by the receiving code with their own reason.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

NUL_MESSAGE = "The request contains a NUL character (\\u0000), which no field accepts."


class RejectNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/webhooks/") and carries_nul(request):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": NUL_MESSAGE}, status=400)
            return HttpResponseBadRequest(NUL_MESSAGE)
        return self.get_response(request)


def carries_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path or any("\x00" in key or "\x00" in value for key, value in query_pairs(request)):
        return True
    if request.content_type in ("application/json", "application/x-www-form-urlencoded", "text/plain"):
        body = request.body
        return b"\x00" in body or b"\\u0000" in body
    if request.content_type == "multipart/form-data":
        # The form's fields (not its files, which are stored as bytes): parsed once here, DRF and the admin reuse it.
        return any("\x00" in key or "\x00" in value for key, values in request.POST.lists() for value in values)
    return False


def query_pairs(request: HttpRequest) -> list[tuple[str, str]]:
    return [(key, value) for key, values in request.GET.lists() for value in values]
