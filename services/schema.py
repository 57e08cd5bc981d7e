"""Every table of every service on one MetaData, for Alembic. Importing registers them."""

from libs.events.tables import metadata
from libs.platform import access  # noqa: F401  (api_keys, agents)
from services.intake.adapters import tables as intake_tables  # noqa: F401
from services.notify.adapters import tables as notify_tables  # noqa: F401
from services.query.adapters import tables as query_tables  # noqa: F401
from services.routing.adapters import tables as routing_tables  # noqa: F401
from services.sla.adapters import tables as sla_tables  # noqa: F401

__all__ = ["metadata"]
