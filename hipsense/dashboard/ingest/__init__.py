"""From the broker into the database: a shared subscription, validation, batched storing, and
acknowledgements sent only after the batch is committed."""

from hipsense.dashboard.ingest.service import SHARE_GROUP, IngestService, IngestStats

__all__ = ["SHARE_GROUP", "IngestService", "IngestStats"]
