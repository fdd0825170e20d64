"""The vendor side of the portal: clients, connections, the one way out (http.py), vendor APIs and flows."""
