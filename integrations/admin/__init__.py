"""Admin of the vendor side, split by subject. Every admin here is scoped to the user's clients (list, change,
delete, actions, autocomplete and filters), and connection secrets are write-only and masked. Each vendor's own
admin pages, fields and actions live in its package (integrations/<vendor>/admin.py) and plug in through
`integrations.admin.base.VendorAdmin`."""

from integrations.admin import clients, connections, records, tokens

__all__ = ["clients", "connections", "records", "tokens"]
