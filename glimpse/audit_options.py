"""Options of the audit log ([audit]) and of the retention policies' scheduled run ([retention]); Glimpse's own.

config.py collects them with every other section; the typed AuditSettings reach the composition root in Settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from oslo_config import cfg

AUDIT_OPTS: list[cfg.Opt] = [
    cfg.IntOpt(
        "retention_days",
        default=0,
        min=0,
        help="`glimpse audit purge` without --age-in-days removes audit rows older than this many days; 0 keeps "
        "them all (the command then needs --age-in-days). Nothing else ever removes or changes an audit row.",
    ),
]

RETENTION_OPTS: list[cfg.Opt] = [
    cfg.IntOpt(
        "run_interval",
        default=0,
        min=0,
        help="Seconds between scheduled runs of the retention policies in every API process (one node of the "
        "cluster acts at a time, holding a lease in the database); 0: only `glimpse retention run` runs them.",
    ),
    cfg.IntOpt(
        "lease_seconds",
        default=300,
        min=5,
        help="How long a run's lease lasts without renewal; the running node renews it before every deletion. A "
        "node that stopped (kill -9) holds the lease at most this long.",
    ),
]


@dataclass(frozen=True)
class AuditSettings:
    retention_days: int = 0
    run_interval: int = 0
    lease_seconds: int = 300


def audit_settings(conf: cfg.ConfigOpts) -> AuditSettings:
    return AuditSettings(
        retention_days=conf.audit.retention_days,
        run_interval=conf.retention.run_interval,
        lease_seconds=conf.retention.lease_seconds,
    )
