"""The event mapper: stored events to the Job aggregate's domain events and back.

It also reads ledgers written before the package became `klippfisk.*` (until 0.1.0's move):
their events carry topics such as "engine.job:Job.Submitted", which are registered here as
other names for today's classes, so such a ledger opens, verifies and keeps appending.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic, register_topic, resolve_topic

from klippfisk.engine.job import Job
from klippfisk.engine.persistence.encoding import decode_event_state, encode_event_state

__all__ = ["JobEventMapper", "former_topics"]

# The module the aggregate lived in before the move.
_FORMER_MODULE = "engine.job"


def former_topics() -> dict[str, type]:
    """Every topic a ledger written before the move stores, with today's class for it."""
    kinds = [v for v in vars(Job).values() if isinstance(v, type) and issubclass(v, Job.Event)]
    topics: dict[str, type] = {f"{_FORMER_MODULE}:Job": Job}
    topics.update({f"{_FORMER_MODULE}:Job.{kind.__name__}": kind for kind in kinds})
    return topics


class JobEventMapper(Mapper[str]):
    """Stored events to domain events and back, for events that hold plain JSON.

    The library's mapper runs every value through a transcoder with a Python hook per
    object; ours encodes and decodes in one C call (`encode_event_state`), in the same
    stored form, and takes the body already encoded for the hash when it has it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for topic, cls in former_topics().items():
            register_topic(topic, cls)

    def to_stored_event(self, domain_event: Any, body_json: str | None = None) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        version = state.pop("originator_version")
        data = encode_event_state(state, body_json)
        return StoredEvent(originator_id, version, get_topic(type(domain_event)), data)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = resolve_topic(stored_event.topic)
        try:
            state = decode_event_state(stored_event.state)
        except (ValueError, TypeError, KeyError) as exc:
            raise MapperDeserialisationError(
                f"Failed to deserialise the stored event {stored_event.originator_id} "
                f"version {stored_event.originator_version} ({stored_event.topic}): {exc}"
            ) from exc
        state["originator_id"] = str(stored_event.originator_id)
        state["originator_version"] = stored_event.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)  # as the library does: no __init__ checks
        return event
