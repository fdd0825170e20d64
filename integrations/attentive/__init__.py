"""Attentive SMS: activation, subscriptions, loyalty-action messages (seed 000)."""
