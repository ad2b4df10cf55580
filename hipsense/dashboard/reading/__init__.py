"""The read side: what the pages and exports show, computed from the stored events.

Everything is ordered by event time and ``seq``, never by arrival, so a result that
arrives late (after a Pi was offline) lands in its own day and session.
"""
