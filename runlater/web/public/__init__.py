"""The public front doors: no API key, no session (``/ping``; status pages and badges)."""
