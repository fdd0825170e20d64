"""Admin of the vendor side, split by subject. Every admin here is scoped to the user's clients (list, change,
delete, actions, autocomplete and filters), and connection secrets are write-only and masked. Each vendor's own
admin pages, fields and actions live in its package (integrations/<vendor>/admin.py) and plug in through
`integrations.admin.base.VendorAdmin`."""

from integrations.admin import audit, clients, connections, records, tokens
from integrations.vendors import vendor_modules

# Import every vendor's admin.py now, while the admin autodiscovers, so that one may also register admins of its own
# (Annex Cloud's points transactions) before the admin's URLs are built. Only imported: their `ADMIN` is read later.
vendor_modules("admin")

__all__ = ["audit", "clients", "connections", "records", "tokens"]
