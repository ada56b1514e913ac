"""oslo.policy enforcement with Glance's rule names; an operator's policy.yaml overrides the defaults."""

from __future__ import annotations

import functools
import inspect
import logging
import re
import time
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread
from oslo_config import cfg
from oslo_context import context as oslo_context
from oslo_policy import _checks, opts, policy

from glimpse.auth.context import RequestContext
from glimpse.auth.defaults import list_rules
from glimpse.errors import PolicyRefused, PolicyUnavailable
from glimpse.logs import Occasional

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)

# oslo.policy formats %(project_id)s with str(), so an absent owner would read "None" and equal a caller
# without a project ("None" too). Absent values become two different markers that match nothing.
ABSENT_IN_TARGET = "<absent:target>"
ABSENT_IN_CREDENTIALS = "<absent:caller>"
# domain_id and system_scope stay None when absent: oslo.policy infers the token's scope from their truth.
IDENTITY_KEYS = ("user_id", "user_domain_id", "project_id", "project_domain_id")


def _conf(policy_file: str | None, options: Mapping[str, object] | None = None) -> cfg.ConfigOpts:
    """The enforcer's own [oslo_policy]: the service's values (config.Settings.policy_options) as overrides on
    this ConfigOpts only, since opts.set_defaults would change the option objects every enforcer shares."""
    conf = cfg.ConfigOpts()
    conf([], project="glimpse", default_config_files=[], default_config_dirs=[])
    conf.register_opts(opts._options, group="oslo_policy")
    for name, value in (options or {}).items():
        conf.set_override(name, value, group="oslo_policy")
    conf.set_override("policy_file", policy_file or "policy.yaml", group="oslo_policy")
    return conf


def get_enforcer() -> policy.Enforcer:
    """For the oslopolicy-* tools (entry point oslo.policy.enforcer)."""
    enforcer = policy.Enforcer(_conf(None))
    enforcer.register_defaults(list_rules())
    return enforcer


@functools.lru_cache(maxsize=512)
def _argspec_of(function: Callable[..., Any]) -> inspect.FullArgSpec:
    return inspect.getfullargspec(function)


class _RememberedSignatures:
    """Stands for the `inspect` module inside oslo_policy._checks, whose _check asks getfullargspec of every
    node of a rule whether its __call__ takes current_rule: tens of microseconds a node, most of a check's
    time. A function's signature does not change, so the answer is kept per function (a bound method's
    __func__; getfullargspec keeps `self` in both cases, so the answer is the same)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)

    @staticmethod
    def getfullargspec(function: Callable[..., Any]) -> inspect.FullArgSpec:
        return _argspec_of(getattr(function, "__func__", function))


if getattr(_checks, "inspect", None) is inspect:
    setattr(_checks, "inspect", _RememberedSignatures())  # noqa: B010  # not in the module's typed exports


class _CheckOnFirstUse:
    """A rule-check plugin (an oslo.policy.rule_checks entry point) loaded when a rule first names its kind."""

    def __init__(self, entry_point: EntryPoint) -> None:
        self._entry_point = entry_point

    def __call__(self, kind: str, match: str) -> Any:
        return self._entry_point.load()(kind, match)


# oslo.policy loads every rule-check plugin the first time it parses a rule; its own http(s) checks import
# requests (about 8 MiB in each worker) that a policy without an http: rule never uses. Their names are read
# now, each plugin is imported only when a rule uses it.
if _checks.extension_checks is None:
    _checks.extension_checks = {ep.name: _CheckOnFirstUse(ep) for ep in entry_points(group="oslo.policy.rule_checks")}


class _Enforcer(policy.Enforcer):
    """oslo.policy's Enforcer, looking at the policy files at most once a second rather than on every check.

    Its load_rules, which enforce() calls first, searches the configuration directories for the policy file
    when there is none and for every policy.d, compares modification times, and walks every registered default:
    about half of a metadata request's CPU time, for files that change a few times a year. Here that runs
    when it last ran a second ago or more, and at once on a forced reload (SIGHUP); an edited file still
    takes effect by itself, within a second.
    """

    RECHECK_SECONDS = 1.0
    _next_check = 0.0
    # Counts the times the rules may have changed: answers remembered under an older count are stale.
    generation = 0

    def load_rules(self, force_reload: bool = False) -> None:
        now = time.monotonic()
        if force_reload or now >= self._next_check or not self.rules:
            self.generation += 1
            super().load_rules(force_reload)
            self._next_check = now + self.RECHECK_SECONDS

    def set_rules(self, *args: Any, **kwargs: Any) -> None:
        self.generation += 1
        super().set_rules(*args, **kwargs)

    def clear(self) -> None:
        self.generation += 1
        super().clear()


# The checks whose answer depends on the caller's credentials and the target keys they name only. Exact types:
# a plugin (http:, https:, a subclass) may ask a server or the clock.
_PURE_CHECKS = (_checks.AndCheck, _checks.OrCheck, _checks.NotCheck, _checks.RuleCheck)
_TARGET_KEY = re.compile(r"%\(([^)]*)\)")


def _target_keys(check: _checks.BaseCheck, rules: Mapping[str, _checks.BaseCheck], seen: frozenset[str]) -> Any:
    """The target keys a rule reads (a frozenset), or None when its answer may depend on anything else: a
    plugin's check, a match formatted with the whole target (`%s`), a cycle of rules."""
    kind = type(check)
    if kind in (_checks.TrueCheck, _checks.FalseCheck):
        return frozenset()
    if kind in (_checks.RoleCheck, _checks.GenericCheck):
        match = str(getattr(check, "match", ""))
        named = _TARGET_KEY.findall(match)
        return frozenset(named) if match.count("%") == len(named) else None
    if kind not in _PURE_CHECKS:
        return None
    if kind is _checks.RuleCheck:
        name = str(getattr(check, "match", ""))
        if name in seen:
            return None
        try:
            children = [rules[name]]
        except KeyError:  # oslo.policy answers False
            return frozenset()
        seen = seen | {name}
    else:
        children = list(getattr(check, "rules", None) or [getattr(check, "rule", None)])
    keys: frozenset[str] = frozenset()
    for child in children:
        read = _target_keys(child, rules, seen) if isinstance(child, _checks.BaseCheck) else None
        if read is None:
            return None
        keys |= read
    return keys


# The checks oslo.policy answers from the caller's credentials and the target alone, in this process.
_LOCAL_CHECKS = (*_PURE_CHECKS, _checks.TrueCheck, _checks.FalseCheck, _checks.RoleCheck, _checks.GenericCheck)


def _calls_out(check: object) -> bool:
    """Whether a rule holds a check of another kind: http:/https: (a request to a server, which blocks until it
    answers) or a plugin's, which may do anything. A rule it names is one of the rules, looked at on its own."""
    if type(check) not in _LOCAL_CHECKS:
        return True
    children = getattr(check, "rules", None) or [getattr(check, "rule", None)]
    return any(_calls_out(child) for child in children if child is not None)


@functools.lru_cache(maxsize=1024)
def _credentials(
    user_id: str | None,
    project_id: str | None,
    domain_id: str | None,
    user_domain_id: str | None,
    project_domain_id: str | None,
    system_scope: str | None,
    roles: frozenset[str],
    is_admin: bool,
) -> dict[str, Any]:
    values = oslo_context.RequestContext(
        user_id=user_id,
        project_id=project_id,
        domain_id=domain_id,
        user_domain_id=user_domain_id,
        project_domain_id=project_domain_id,
        system_scope=system_scope,
        roles=sorted(roles),
        is_admin=is_admin,
        request_id="-",  # not a policy value; None would cost a fresh uuid4
    ).to_policy_values()
    creds = {key: values[key] for key in values}
    for key in IDENTITY_KEYS:
        if not creds.get(key):
            creds[key] = ABSENT_IN_CREDENTIALS
    return creds


_ABSENT_KEY = object()
ANSWERS_KEPT = 4096


class Policy:
    def __init__(self, policy_file: str | None = None, options: Mapping[str, object] | None = None) -> None:
        """policy_file: the operator's, found (None: the defaults alone); options: the rest of [oslo_policy]."""
        self._enforcer = _Enforcer(_conf(policy_file, options))
        self._enforcer.register_defaults(list_rules())
        self._enforcer.load_rules()
        # A named rule's answer per caller and the values of the target keys it reads: oslo.policy's walk of
        # the rule tree was a tenth of a show's CPU time, for the same few callers and rules all day. Forgotten
        # whenever the rules may have changed (_Enforcer.generation: a reload, at most a second after an edit).
        self._generation = -1
        self._reads: dict[str, Any] = {}
        self._answers: dict[tuple[Any, ...], bool] = {}
        self._calls_out = (-1, False)  # (the rules' generation, the answer)
        self._unanswered = Occasional(log)  # a policy server away fails every request that asks it

    @property
    def calls_out(self) -> bool:
        """Whether a check may wait on something outside this process (an http: rule asks a server), so that it
        must not run on the event loop, where every other request of the worker would wait with it."""
        enforcer = self._enforcer
        enforcer.load_rules()
        generation, answer = self._calls_out
        if generation != enforcer.generation:
            answer = any(_calls_out(check) for check in enforcer.rules.values())
            self._calls_out = (enforcer.generation, answer)
        return answer

    async def run_check(self, check: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """check(*args), which asks this policy and does nothing slower: here on the event loop, or in a thread while
        a rule may ask a server (calls_out), so that a slow policy server holds only the request waiting on it."""
        if self.calls_out:
            return await anyio.to_thread.run_sync(functools.partial(check, *args, **kwargs))
        return check(*args, **kwargs)

    def reload(self) -> str | None:
        """Read the policy file again now (SIGHUP); oslo.policy also does when the file's mtime changes.
        Returns the file read, None when there is none (the defaults apply)."""
        self._enforcer.load_rules(force_reload=True)
        path: str | None = self._enforcer.policy_path
        return path

    @staticmethod
    def credentials(ctx: RequestContext) -> dict[str, Any]:
        """What rules read of the caller, built as oslo.context does (system_scope, domain_id, ...).

        Built once per caller identity, not per check: an oslo.context object and its policy values cost about a
        tenth of a show, twice per request. A copy each time (its lists too), so no check can change another's."""
        shared = _credentials(
            ctx.user_id,
            ctx.project_id,
            ctx.domain_id,
            ctx.user_domain_id,
            ctx.project_domain_id,
            ctx.system_scope,
            ctx.roles,
            ctx.is_admin,
        )
        return {key: list(value) if isinstance(value, list) else value for key, value in shared.items()}

    @staticmethod
    def target(target: Mapping[str, Any]) -> dict[str, Any]:
        return {key: ABSENT_IN_TARGET if value is None else value for key, value in target.items()}

    def check(self, ctx: RequestContext, rule: str, target: Mapping[str, Any]) -> bool:
        if rule not in self._enforcer.registered_rules:
            # oslo.policy would apply the catch-all "default" rule; a misspelt name must fail loudly instead.
            raise KeyError(f"Policy rule {rule} is not registered.")
        return self._allowed(ctx, rule, target)

    def is_admin(self, ctx: RequestContext) -> bool:
        """The context_is_admin rule, which depends on the caller only."""
        return self._allowed(ctx, "context_is_admin", {"project_id": ctx.project_id, "domain_id": ctx.domain_id})

    def _allowed(self, ctx: RequestContext, rule: str, target: Mapping[str, Any]) -> bool:
        """enforce(rule), its answer remembered when the rule reads nothing but the caller and target keys."""
        enforcer = self._enforcer
        enforcer.load_rules()
        if enforcer.generation != self._generation:
            self._reads.clear()
            self._answers.clear()
            self._generation = enforcer.generation
        try:
            reads = self._reads[rule]
        except KeyError:
            try:
                reads = _target_keys(enforcer.rules[rule], enforcer.rules, frozenset({rule}))
            except KeyError:  # no such rule: oslo.policy answers False
                reads = frozenset()
            self._reads[rule] = reads = None if reads is None else tuple(sorted(reads))
        key: tuple[Any, ...] | None = None
        if reads is not None:
            caller = (ctx.user_id, ctx.project_id, ctx.domain_id, ctx.user_domain_id, ctx.project_domain_id,
                      ctx.system_scope, ctx.roles, ctx.is_admin)  # fmt: skip
            # The type too: True and 1 are equal keys but format as "True" and "1".
            values = [target.get(name, _ABSENT_KEY) for name in reads]
            key = (rule, caller, *values, *map(type, values))
            try:
                return self._answers[key]
            except KeyError:
                pass
            except TypeError:  # a value that cannot be a key (a list): asked every time
                key = None
        answer = self._enforce(rule, self.target(target), self.credentials(ctx))
        if key is not None:
            if len(self._answers) >= ANSWERS_KEPT:
                self._answers.clear()
            self._answers[key] = answer
        return answer

    def check_roles(self, roles: frozenset[str], project_id: str | None, rule: str) -> bool:
        """A rule that depends on the caller only, such as context_is_admin."""
        ctx = RequestContext(project_id=project_id, user_id=None, roles=roles)
        return self._enforce(rule, self.target({"project_id": project_id}), self.credentials(ctx))

    def check_rule(self, ctx: RequestContext, rule: str) -> bool:
        """Whether the named rule holds for the caller alone: the property protection file's policies format
        (`rule:<name>` against an empty target, as Glance checks it). A rule nobody defined allows nobody;
        oslo.policy would fall back on the `default` rule, which allows everyone."""
        if not self.defines(rule):
            return False
        check = policy.Rules.from_dict({"property": f"rule:{rule}"})["property"]
        return self._enforce(check, {}, self.credentials(ctx))

    def _enforce(self, rule: str | _checks.BaseCheck, target: dict[str, Any], creds: dict[str, Any]) -> bool:
        """oslo.policy's answer. A remote check's server that fails to answer (refused, timed out, a 5xx) makes
        oslo.policy raise whatever its HTTP client raised: that is PolicyUnavailable (503), not a refusal nor a
        crash, and the operator sees why in the log."""
        try:
            return bool(self._enforcer.enforce(rule, target, creds))
        except Exception as exc:
            if not self.calls_out:
                raise
            name = str(getattr(rule, "match", rule))
            self._unanswered.warning(name, "Policy check %s could not be answered: %s", name, exc)
            raise PolicyUnavailable("The policy server could not be reached; try again later.") from exc

    def defines(self, rule: str) -> bool:
        """Whether the defaults or the operator's policy file name this rule."""
        self._enforcer.load_rules()
        return rule in self._enforcer.rules

    def enforce(self, ctx: RequestContext, rule: str, target: Mapping[str, Any]) -> None:
        if not self.check(ctx, rule, target):
            raise PolicyRefused(rule)
