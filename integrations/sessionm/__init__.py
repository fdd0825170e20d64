"""SessionM: profiles kept in step, welcome, offer-issued and offer-expiring messages, transactions relayed."""
