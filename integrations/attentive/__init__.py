"""Attentive SMS: activation, subscriptions, loyalty-action messages (REST API v1)."""
