"""Services: the router, gateway, border post and auditor, over the adapters."""
