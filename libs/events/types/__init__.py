"""Every event type Deskstream knows, registered into one catalog (the contract between services)."""

from libs.events.catalog import EventCatalog
from libs.events.types import config, email, notifications, tickets

CATALOG = EventCatalog()
tickets.register(CATALOG)
config.register(CATALOG)
notifications.register(CATALOG)
email.register(CATALOG)

__all__ = ["CATALOG"]
