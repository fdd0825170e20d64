"""Annex Cloud Loyalty API v3. The signed client arrives with the members and segments work; this module already
holds the partner access token of seed 000."""

from __future__ import annotations

import base64
import json


def partner_access_token(loyalty_token: str, site_id: str) -> str:
    """Seed 000: 'Create a JSON array with Loyalty Token and Site id. Encode with base64_encode()'. This is the
    credential a partner (Attentive) uses to call back into Annex Cloud; PHP's json_encode has no spaces."""
    if not (loyalty_token and site_id):
        return ""
    return base64.b64encode(json.dumps([loyalty_token, site_id], separators=(",", ":")).encode()).decode()
