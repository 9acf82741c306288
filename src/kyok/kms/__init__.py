"""The key-management domain: instances, keys, versions, states, aliases, key rings.

Plain business rules over ports (``kyok.store.ports``, :mod:`kyok.kms.ports`): no HTTP, no SQL.
The use cases are the methods of :class:`KeyService`; adapters parse a request, make one call
and render the result or the :mod:`kyok.kms.errors` error it raises.
"""

from kyok.kms.events import EventAction, KmsEvent, NullAuditSink
from kyok.kms.keys import KeyState, KeyView
from kyok.kms.lifecycle import Action
from kyok.kms.query import parse_key_query
from kyok.kms.results import RewrapResult, UnwrapResult, WrapResult
from kyok.kms.service import KeyService
from kyok.kms.timers import Timers

__all__ = [
    "Action",
    "EventAction",
    "KeyService",
    "KeyState",
    "KeyView",
    "KmsEvent",
    "NullAuditSink",
    "RewrapResult",
    "Timers",
    "UnwrapResult",
    "WrapResult",
    "parse_key_query",
]
