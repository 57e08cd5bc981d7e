"""intake — the command side: every change enters here, is validated, and becomes events.

domain/ decides (pure); handlers.py runs a decision against the store; entrypoints/ are HTTP.
"""
