"""The certificates of signed images, fetched with castellan from the key manager (Barbican) on the caller's behalf.

castellan authenticates the caller's own token at Keystone (rescoped to the caller's project) and finds Barbican in
the catalog unless [barbican] barbican_endpoint names it, exactly as Glance's cursive does; Barbican then applies its
own policy (a project's certificates are its members').
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from oslo_config import cfg

from glimpse.domain.entities import ManagedCertificate
from glimpse.errors import ConfigError, KeyManagerRefused, KeyManagerUnavailable, NotFound
from glimpse.extras import require

log = logging.getLogger(__name__)

# Failures that mean "nobody answered" rather than "the answer was no", by class name along the exception's causes:
# keystoneauth's and requests' connection errors and timeouts, and a catalog without a key-manager endpoint.
_UNREACHABLE = frozenset(
    {
        "ConnectFailure",
        "ConnectTimeout",
        "ConnectionError",
        "ConnectionRefusedError",
        "DiscoveryFailure",
        "EndpointNotFound",
        "EmptyCatalog",
        "ReadTimeout",
        "RetriableConnectionFailure",
        "ServiceUnavailable",
        "HTTPServerError",
        "GatewayTimeout",
        "BadGateway",
    }
)


def _unreachable(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(cls.__name__ in _UNREACHABLE for cls in type(current).__mro__):
            return True
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException) and id(reason) not in seen:
            current = reason
            continue
        current = current.__cause__ or current.__context__
    return False


class CastellanCertificates:
    """CertificateSource on castellan; `options`: {section: {option: value}} of [key_manager] and [barbican]."""

    def __init__(self, options: Mapping[str, Mapping[str, object]]) -> None:
        self._options = options
        self._lock = threading.Lock()
        self._api: Any = None  # castellan's KeyManager, made on first use: most deployments never sign an image

    def _manager(self) -> Any:
        with self._lock:
            if self._api is None:
                try:
                    require("castellan", "Signature verification of signed images")
                except ConfigError as exc:
                    raise KeyManagerUnavailable(exc.message) from None
                from castellan import key_manager
                from castellan.key_manager import key_manager_opts

                conf = cfg.ConfigOpts()
                conf.register_opts(key_manager_opts, group="key_manager")
                conf(args=[], project="glimpse", default_config_files=[], default_config_dirs=[])
                self._set(conf, "key_manager", self._options.get("key_manager", {}))
                api = key_manager.API(conf)  # the driver registers its own options ([barbican]) on conf
                self._set(conf, "barbican", self._options.get("barbican", {}))
                self._api = api
            return self._api

    @staticmethod
    def _set(conf: cfg.ConfigOpts, group: str, values: Mapping[str, object]) -> None:
        for name, value in values.items():
            if value is not None:
                conf.set_override(name, value, group)

    def certificate(self, cert_id: str, auth_token: str | None, project_id: str | None) -> ManagedCertificate:
        if not auth_token:
            raise KeyManagerRefused("no token to ask the key manager with (the service runs without Keystone)")
        manager = self._manager()
        from castellan.common import exception as castellan_errors
        from oslo_context.context import RequestContext

        context = RequestContext(auth_token=auth_token, project_id=project_id)
        try:
            managed = manager.get(context, cert_id)
            data = managed.get_encoded()
            fmt = str(managed.format)
        except castellan_errors.ManagedObjectNotFoundError:
            raise NotFound(f"Certificate not found with ID: {cert_id}") from None
        except Exception as exc:  # castellan lets the HTTP client's own errors through, besides its KeyManagerError
            if _unreachable(exc):
                log.warning("The key manager could not be reached for certificate %s: %s", cert_id, exc)
                raise KeyManagerUnavailable("the key manager could not be reached; try again later") from None
            log.warning("The key manager refused certificate %s: %s", cert_id, exc)
            raise KeyManagerRefused(f"Unable to retrieve certificate with ID: {cert_id}") from None
        return ManagedCertificate(format=fmt, data=bytes(data or b""))
