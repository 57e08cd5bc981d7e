"""notify — autoresponses and alerts by email; each (event, recipient, template) at most once.

domain/ composes messages (pure); adapters/mail.py delivers over SMTP or into the maildrop.
"""
