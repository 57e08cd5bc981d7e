"""gateway — the thin web UI (agent panel, portal, admin) over intake and query. Thin for now:
a landing page and the probes; the UI grows here."""
