"""oslo.policy enforcement with Glance's rule names; an operator's policy.yaml overrides the defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oslo_config import cfg
from oslo_policy import opts, policy

from glimpse.auth.context import RequestContext
from glimpse.auth.defaults import list_rules
from glimpse.errors import Forbidden


def _conf(policy_file: str | None) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    conf([], project="glimpse", default_config_files=[], default_config_dirs=[])
    # An override on this ConfigOpts only: opts.set_defaults would change the option objects every
    # enforcer in the process shares.
    conf.register_opts(opts._options, group="oslo_policy")
    conf.set_override("policy_file", policy_file or "policy.yaml", group="oslo_policy")
    return conf


def get_enforcer() -> policy.Enforcer:
    """For the oslopolicy-* tools (entry point oslo.policy.enforcer)."""
    enforcer = policy.Enforcer(_conf(None))
    enforcer.register_defaults(list_rules())
    return enforcer


class Policy:
    def __init__(self, policy_file: str | None = None) -> None:
        self._enforcer = policy.Enforcer(_conf(policy_file))
        self._enforcer.register_defaults(list_rules())
        self._enforcer.load_rules()

    @staticmethod
    def credentials(ctx: RequestContext) -> dict[str, Any]:
        return {"roles": sorted(ctx.roles), "project_id": ctx.project_id, "user_id": ctx.user_id}

    def check(self, ctx: RequestContext, rule: str, target: Mapping[str, Any]) -> bool:
        if rule not in self._enforcer.registered_rules:
            # oslo.policy would apply the catch-all "default" rule; a misspelt name must fail loudly instead.
            raise KeyError(f"Policy rule {rule} is not registered.")
        return bool(self._enforcer.enforce(rule, dict(target), self.credentials(ctx)))

    def check_roles(self, roles: frozenset[str], project_id: str | None, rule: str) -> bool:
        """A rule that depends on the caller only, such as context_is_admin."""
        creds = {"roles": sorted(roles), "project_id": project_id}
        return bool(self._enforcer.enforce(rule, {"project_id": project_id}, creds))

    def enforce(self, ctx: RequestContext, rule: str, target: Mapping[str, Any]) -> None:
        if not self.check(ctx, rule, target):
            raise Forbidden(f"You are not authorized to complete {rule} action.")
