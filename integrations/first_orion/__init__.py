"""First Orion ENGAGE: branded-call content pushed to members' phones (connection settings so far)."""
