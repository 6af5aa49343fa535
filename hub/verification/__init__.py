"""Verification at the service window: challenges, tap decisions, the service catalogue and
the signed status list a window agent decides by while the hub is out of reach."""
