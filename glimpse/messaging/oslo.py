"""The real sender: oslo.messaging's Notifier, configured from the operator's files as Glance configures it.

oslo.messaging reads the files itself (on a private ConfigOpts): [oslo_messaging_notifications],
[oslo_messaging_rabbit], [DEFAULT] transport_url and control_exchange (glance unless set, as Glance sets it).
It is built in the sending thread of each process: a connection is never shared across a fork.
"""

from __future__ import annotations

import importlib
import logging
import threading
import warnings
from collections.abc import Sequence
from types import ModuleType

from oslo_config import cfg

from glimpse.messaging.queue import Payload, Send

_failed = threading.local()


class _FailureSpy(logging.Filter):
    """oslo.messaging's Notifier logs, and swallows, a message it could not send: this notes the failure for
    the sending thread (which counts it as dropped) and keeps the message, with its whole payload, out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and getattr(_failed, "watching", False):
            _failed.reason = record.getMessage().split(". Payload=", 1)[0]
            return False
        return True


_SPY = _FailureSpy()


class NotDelivered(Exception):
    pass


def import_oslo_messaging() -> ModuleType:
    """oslo.messaging, the notifications extra. Its dependencies import eventlet when it is installed, which
    warns that it is deprecated: nothing monkey-patches here, so oslo.messaging sends on plain threads."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        return importlib.import_module("oslo_messaging")


def oslo_sender(config_files: Sequence[str], publisher_id: str) -> Send:
    oslo_messaging = import_oslo_messaging()

    conf = cfg.ConfigOpts()
    oslo_messaging.set_transport_defaults("glance")
    conf(args=[], project="glance", default_config_files=list(config_files), default_config_dirs=[])
    notifier = oslo_messaging.Notifier(oslo_messaging.get_notification_transport(conf), publisher_id=publisher_id)
    # The Notifier logs what its driver raised; the messaging driver logs, and swallows, what the broker's client
    # raised (an unreachable broker): both are failures, and neither line may carry the payload.
    for logger in ("oslo_messaging.notify.notifier", "oslo_messaging.notify.messaging"):
        logging.getLogger(logger).addFilter(_SPY)

    def send(priority: str, event_type: str, payload: Payload) -> None:
        _failed.watching, _failed.reason = True, None
        try:
            getattr(notifier, priority)({}, event_type, payload)
        finally:
            _failed.watching = False
        if _failed.reason:
            raise NotDelivered(_failed.reason)

    return send
