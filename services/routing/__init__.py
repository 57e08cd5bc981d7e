"""routing — decides where a new ticket goes: help topic -> department, priority, SLA plan.

Its state (departments, help topics) is built from config events into its own tables.
"""
