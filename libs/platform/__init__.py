"""Plumbing every service shares: settings, database engine, HTTP probes, logging, serving.

Rule: nothing here knows about tickets. Domain code never imports Flask or SQLAlchemy from here.
"""
