"""RabbitMQ for the notification tests: a consumer as Ceilometer runs one (an oslo.messaging notification
listener), and a private broker a test may kill and start again without touching the machine's own.

The private broker is Debian's rabbitmq-server run as a second node (its own node name, ports, data and logs);
it registers with the machine's epmd like the main node does.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import kombu
from oslo_config import cfg

from glimpse.messaging.oslo import import_oslo_messaging
from tests.functional.server import free_port

oslo_messaging = import_oslo_messaging()

MACHINE_BROKER = "rabbit://guest:guest@127.0.0.1:5672/"
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


class Event:
    def __init__(self, priority: str, publisher_id: str, event_type: str, payload: Any) -> None:
        self.priority, self.publisher_id, self.event_type, self.payload = priority, publisher_id, event_type, payload

    def __repr__(self) -> str:
        return f"<{self.priority} {self.event_type} from {self.publisher_id}>"


class _Endpoint:
    def __init__(self, sink: queue.Queue[Event]) -> None:
        self.sink = sink

    def info(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any) -> None:
        self.sink.put(Event("info", publisher_id, event_type, payload))

    def error(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any) -> None:
        self.sink.put(Event("error", publisher_id, event_type, payload))


class Consumer:
    """Glance's notifications on one topic of the glance exchange, as a real listener receives them."""

    def __init__(self, url: str, topic: str, rabbit_conf: Path | None = None) -> None:
        """rabbit_conf: a file of [oslo_messaging_rabbit] options, the same the notifier reads."""
        self.url, self.topic = url, topic
        self.events: queue.Queue[Event] = queue.Queue()
        conf = cfg.ConfigOpts()
        conf(args=[], default_config_files=[str(rabbit_conf)] if rabbit_conf else [])
        self.transport = oslo_messaging.get_notification_transport(conf, url=url)
        target = oslo_messaging.Target(topic=topic, exchange="glance")
        self.listener = oslo_messaging.get_notification_listener(
            self.transport, [target], [_Endpoint(self.events)], executor="threading"
        )
        self.listener.start()

    def next(self, timeout: float = 30) -> Event:
        return self.events.get(timeout=timeout)

    def until(self, event_type: str, timeout: float = 30, **payload: Any) -> tuple[Event, list[Event]]:
        """The first event of that type whose payload has those values, and every event before it."""
        seen: list[Event] = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            if event.event_type == event_type and all(
                isinstance(event.payload, dict) and event.payload.get(k) == v for k, v in payload.items()
            ):
                return event, seen
            seen.append(event)

    def stop(self) -> None:
        self.listener.stop()
        self.listener.wait()
        self.transport.cleanup()

    def delete_queues(self) -> None:
        with kombu.Connection(amqp(self.url)) as conn:
            channel = conn.channel()
            for priority in ("audit", "debug", "info", "warn", "error", "critical", "sample"):
                channel.queue_delete(f"{self.topic}.{priority}")


def drain(url: str, topic: str, until_name: str, timeout: float) -> list[Event]:
    """The notifications waiting in the topic's (durable) info queue, read with kombu, up to the image.create of
    `until_name` (TimeoutError, with what came, when it does not): what a consumer that was away finds."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    with kombu.Connection(amqp(url)) as conn:
        exchange = kombu.Exchange("glance", type="topic", durable=True)
        box = conn.SimpleQueue(
            kombu.Queue(f"{topic}.info", exchange, routing_key=f"{topic}.info", durable=True), no_ack=True
        )
        try:
            while time.monotonic() < deadline:
                try:
                    message = box.get(timeout=1)
                except box.Empty:
                    continue
                body = json.loads(message.body) if isinstance(message.body, str | bytes) else message.body
                msg = json.loads(body["oslo.message"])
                events.append(Event(msg["priority"].lower(), msg["publisher_id"], msg["event_type"], msg["payload"]))
                if msg["event_type"] == "image.create" and msg["payload"].get("name") == until_name:
                    return events
        finally:
            box.close()
    raise Late(f"no image.create of {until_name} within {timeout} s", events)


class Late(TimeoutError):
    def __init__(self, message: str, events: list[Event]) -> None:
        super().__init__(message)
        self.events = events


def amqp(url: str) -> str:
    """oslo.messaging's rabbit:// as kombu names it."""
    return url.replace("rabbit://", "amqp://", 1)


def new_topic() -> str:
    return f"glimpse-test-{uuid.uuid4().hex[:12]}"


class PrivateBroker:
    """A RabbitMQ node of the test's own, on free ports, in workdir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port, self.dist_port = free_port(), free_port()
        self.node = f"glimpse{os.getpid()}x{self.port}@localhost"
        self.url = f"rabbit://guest:guest@127.0.0.1:{self.port}/"
        (workdir / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (workdir / "enabled_plugins").write_text("[].\n")
        self.log = workdir / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _env(self) -> dict[str, str]:
        w = self.workdir
        return {
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(w),  # the node's own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(w / "mnesia"),
            "RABBITMQ_LOG_BASE": str(w / "log"),
            "RABBITMQ_CONFIG_FILE": str(w / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(w / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(w / "rabbitmq-env.conf"),  # absent: not the machine's
            "RABBITMQ_PID_FILE": str(w / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self, timeout: float = 120) -> PrivateBroker:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [RABBITMQ_SERVER], env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            if b"Starting broker... completed" in self.log.read_bytes()[offset:]:
                try:
                    with kombu.Connection(amqp(self.url), connect_timeout=2) as conn:
                        conn.connect()
                    return self
                except OSError:
                    pass
            time.sleep(0.5)
        self.kill()
        raise RuntimeError(f"rabbitmq-server did not start within {timeout} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL the whole node: the broker is gone at once, as when its machine dies."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self.proc = None
