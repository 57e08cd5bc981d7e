"""query — read models (tickets, thread entries) and the read API. Tables are documented for
analysts in docs/projections.md; columns are never renamed, only added."""
