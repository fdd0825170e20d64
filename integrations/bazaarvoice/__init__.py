"""Bazaarvoice: approved reviews turned into Annex Cloud points (connection settings so far)."""
