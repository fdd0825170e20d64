"""SessionM: welcome, offer-issued and offer-expiring messages (connection settings so far)."""
