"""Persistence: how the ledger's events are stored, shared out and read back.

- mapper.py, encoding.py: domain events to stored bytes and back (topics from before the
  `klippfisk.*` move included);
- store_env.py: the store settings as the library's environment;
- sqlite_store.py, postgres_store.py: each store's factory and its one writer
  (postgres_store is imported only when that store is configured);
- links.py: the connections the ledger keeps of its own, whichever the store;
- group_commit.py: concurrent commands share one transaction;
- projections.py: the read models (jobs by state, name, job_cid, source ref, labels);
- store_errors.py: driver errors as eventsourcing's, and StoreUnavailable.

The ledger (`klippfisk.engine.ledger`) is the only user; nothing here imports it.
"""

from __future__ import annotations

from klippfisk.engine.persistence.group_commit import GroupCommit
from klippfisk.engine.persistence.links import StoreLinks
from klippfisk.engine.persistence.mapper import JobEventMapper
from klippfisk.engine.persistence.projections import JobsProjection, LabelTest, Order, PageQuery
from klippfisk.engine.persistence.store_env import store_env
from klippfisk.engine.persistence.store_errors import StoreUnavailable

__all__ = [
    "GroupCommit",
    "JobEventMapper",
    "JobsProjection",
    "LabelTest",
    "Order",
    "PageQuery",
    "StoreLinks",
    "StoreUnavailable",
    "store_env",
]
