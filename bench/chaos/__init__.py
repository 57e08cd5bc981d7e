"""`make chaos`: the fault catalogue of RELIABILITY.md as a tool. One load generator (unique
ids, acknowledgements recorded), one nemesis per fault, one checker (acknowledged ⊆ store ⊆
topic ⊆ effects, one effect per id, per-ticket order, projection equals a rebuild), run
against the distributed mode; `python -m bench.chaos [--quick] [--rounds N]`."""
