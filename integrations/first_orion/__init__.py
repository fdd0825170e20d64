"""First Orion ENGAGE: branded-call content pushed in batches to members' phones — content and aNumbers, pushes from a
segment or a list, tokens shared by every worker, batches sent once (flows.py), the confirmation page (admin.py) and
the client API (views.py)."""
