"""The one egress policy every server-side fetch goes through, read from Glance's and Glimpse's options."""

from __future__ import annotations

from glimpse.config import Settings
from glimpse.errors import BadRequest, ConfigError
from glimpse.optvalues import as_float, as_int, as_list
from glimpse.sources.egress import EgressPolicy
from glimpse.sources.egress import Limits as EgressLimits


def egress_policy(settings: Settings) -> EgressPolicy:
    """The one egress policy: [import_filtering_opts] (Glance's names) and [egress] (Glimpse's own limits)."""
    f, e = settings.import_filter, settings.egress

    def words(opts: dict[str, object], key: str) -> tuple[str, ...]:
        return tuple(str(v).strip().lower() for v in as_list(opts.get(key)) if str(v).strip())

    def ports(key: str) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in words(f, key))
        except ValueError:
            raise ConfigError(f"[import_filtering_opts] {key} must list port numbers.") from None

    defaults = EgressLimits()
    limits = EgressLimits(
        connect_timeout=as_float(e.get("connect_timeout") or defaults.connect_timeout),
        read_timeout=as_float(e.get("read_timeout") or defaults.read_timeout),
        min_rate=as_int(e.get("min_rate", defaults.min_rate)),
        rate_window=as_float(e.get("min_rate_window") or defaults.rate_window),
        total_timeout=as_float(e.get("total_timeout") or defaults.total_timeout),
        max_redirects=as_int(e.get("max_redirects", defaults.max_redirects)),
    )
    policy = EgressPolicy(
        allowed_schemes=words(f, "allowed_schemes"),
        disallowed_schemes=words(f, "disallowed_schemes"),
        allowed_hosts=tuple(h.rstrip(".") for h in words(f, "allowed_hosts")),
        disallowed_hosts=tuple(h.rstrip(".") for h in words(f, "disallowed_hosts")),
        allowed_ports=ports("allowed_ports"),
        disallowed_ports=ports("disallowed_ports"),
        allow_private_addresses=bool(f.get("allow_private_addresses")),
        limits=limits,
    )
    try:
        return policy.refusing(*own_endpoints(settings))
    except BadRequest as exc:
        raise ConfigError(f"public_endpoint or bind_host cannot be read as an address: {exc.message}") from None


def own_endpoints(settings: Settings) -> list[str]:
    """Where this service answers: a fetch must never come back to it (whatever the operator trusts)."""
    own = [settings.public_endpoint] if settings.public_endpoint else []
    if settings.bind_host not in ("0.0.0.0", "::", ""):
        own.append(f"[{settings.bind_host}]:{settings.bind_port}" if ":" in settings.bind_host
                   else f"{settings.bind_host}:{settings.bind_port}")  # fmt: skip
    return own


def store_egress_policy(settings: Settings) -> EgressPolicy:
    """What the http store (and so a location) may read: the same policy, plus the operator's own web servers."""
    hosts = as_list(settings.egress.get("http_store_allowed_hosts"))
    return egress_policy(settings).trusting(*(str(h) for h in hosts if str(h).strip()))
