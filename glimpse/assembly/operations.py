"""What the cli's one-shot commands work on: scrub, backup, restore, purge, metadef files, a Glance import."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from glimpse.assembly.database import current_engine
from glimpse.assembly.stores import build_stores, node_name
from glimpse.config import Settings
from glimpse.db import embedded
from glimpse.db.metadef_files import MetadefFiles
from glimpse.db.purge import purge
from glimpse.db.repositories import ImageRepository
from glimpse.db.scrub_queue import ScrubQueue
from glimpse.db.session import SessionFactory, make_sessionmaker
from glimpse.db.snapshots import ImageSnapshots
from glimpse.domain.glance_import import GlanceImport
from glimpse.domain.ports import StoreRegistry
from glimpse.domain.scrubber import Scrubber, ScrubTiming
from glimpse.domain.stores import StoreMaintenance
from glimpse.sources.glance_db import GlanceDatabase


def build_scrubber(settings: Settings) -> Scrubber:
    """`glimpse scrub`: the configured database and stores, Glance's scrub options."""
    node = node_name(settings)
    return scrubber(settings, make_sessionmaker(current_engine(settings)), build_stores(settings, node), node)


def scrubber(settings: Settings, sessions: SessionFactory, stores: StoreRegistry, node: str) -> Scrubber:
    """A scrubber on these sessions and stores (the server's purges from the recycle bin use one too)."""
    timing = ScrubTiming(
        scrub_time=settings.scrub_time,
        pool_size=settings.scrub_pool_size,
        stale_after=timedelta(seconds=settings.task_stale_after),
    )
    return Scrubber(ScrubQueue(sessions), stores, node, timing)


def hold_database(settings: Settings, what: str) -> None:
    """This process uses the embedded database until it exits: `glimpse db restore` refuses meanwhile."""
    embedded.hold_shared(settings.database_url, what)


def backup_database(settings: Settings, target: Path) -> embedded.Copy:
    return embedded.backup(settings.database_url, target)


def restore_database(settings: Settings, source: Path) -> tuple[embedded.Copy, Path | None]:
    return embedded.restore(settings.database_url, source)


def purge_database(settings: Settings, age_in_days: int, max_rows: int) -> dict[str, int]:
    return purge(make_sessionmaker(current_engine(settings)), age_in_days, max_rows)


def build_metadef_files(settings: Settings) -> MetadefFiles:
    """`glimpse db load-metadefs`, `unload-metadefs`, `export-metadefs` on the configured database."""
    return MetadefFiles(make_sessionmaker(current_engine(settings)))


def build_glance_import(settings: Settings, source_url: str) -> GlanceImport:
    """`glimpse db import-glance`: the Glance database at source_url into the configured one."""
    sessions = make_sessionmaker(current_engine(settings))
    stores = build_stores(settings, node_name(settings))
    maintenance = StoreMaintenance(ImageRepository(sessions), stores, settings.hashing_algorithm)
    return GlanceImport(GlanceDatabase(source_url), ImageSnapshots(sessions), maintenance)
