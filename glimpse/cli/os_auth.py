"""How a `glimpse` client command reaches the Images API, as the OpenStack clients do: the `OS_*` environment
variables or `--os-*` options authenticate with Keystone (keystoneauth1) and the image endpoint comes from the
catalog; or `--url` names a server in noauth mode (the embedded default), with no token at all."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# (option, environment variable, help)
OS_OPTIONS = (
    ("auth-url", "OS_AUTH_URL", "Keystone's URL"),
    ("username", "OS_USERNAME", "user name"),
    ("user-id", "OS_USER_ID", "user id"),
    ("password", "OS_PASSWORD", "password"),
    ("token", "OS_TOKEN", "an existing token, instead of a user and password"),
    ("project-name", "OS_PROJECT_NAME", "project name"),
    ("project-id", "OS_PROJECT_ID", "project id"),
    ("user-domain-name", "OS_USER_DOMAIN_NAME", "the user's domain name"),
    ("user-domain-id", "OS_USER_DOMAIN_ID", "the user's domain id"),
    ("project-domain-name", "OS_PROJECT_DOMAIN_NAME", "the project's domain name"),
    ("project-domain-id", "OS_PROJECT_DOMAIN_ID", "the project's domain id"),
    ("region-name", "OS_REGION_NAME", "the catalog's region"),
    ("interface", "OS_INTERFACE", "the catalog's endpoint interface (public)"),
    ("cacert", "OS_CACERT", "CA bundle to verify TLS with"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection", "OS_* variables as for the openstack client, or --url")
    group.add_argument(
        "--url", metavar="URL", help="the image service's URL (noauth mode unless OS_AUTH_URL is set: then its token)"
    )
    for name, variable, text in OS_OPTIONS:
        group.add_argument(f"--os-{name}", default=os.environ.get(variable), help=f"{text} (${variable})")
    group.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate")


class AuthError(Exception):
    pass


@dataclass(frozen=True)
class Connection:
    """The image endpoint (without /v2), the headers each request carries and how TLS is verified."""

    endpoint: str
    headers: Callable[[], Mapping[str, str]]
    verify: bool | str


def _without_version(url: str) -> str:
    url = url.rstrip("/")
    return url.removesuffix("/v2").removesuffix("/v2.0") if url.endswith(("/v2", "/v2.0")) else url


def connect(args: argparse.Namespace) -> Connection:
    verify: bool | str = False if args.insecure else (args.os_cacert or True)
    if not args.os_auth_url:
        if not args.url:
            raise AuthError("Say where the image service is: --url URL, or the OS_* variables of a Keystone cloud.")
        return Connection(_without_version(args.url), dict, verify)
    try:
        from keystoneauth1 import exceptions as ks_exceptions
        from keystoneauth1 import session as ks_session
        from keystoneauth1.identity import generic
    except ImportError:
        raise AuthError("Keystone authentication needs keystoneauth1: pip install 'glimpse[keystone]'.") from None
    scope = {
        "project_name": args.os_project_name, "project_id": args.os_project_id,
        "project_domain_name": args.os_project_domain_name, "project_domain_id": args.os_project_domain_id,
    }  # fmt: skip
    plugin: generic.Token | generic.Password
    if args.os_token:
        plugin = generic.Token(auth_url=args.os_auth_url, token=args.os_token, **scope)
    else:
        plugin = generic.Password(
            auth_url=args.os_auth_url, username=args.os_username, user_id=args.os_user_id, password=args.os_password,
            user_domain_name=args.os_user_domain_name, user_domain_id=args.os_user_domain_id, **scope,
        )  # fmt: skip
    session = ks_session.Session(auth=plugin, verify=verify)
    try:
        endpoint = args.url or session.get_endpoint(
            service_type="image", interface=args.os_interface or "public", region_name=args.os_region_name
        )
        session.get_token()  # fail here, with Keystone's reason, rather than on the first upload request
    except ks_exceptions.ClientException as exc:
        raise AuthError(f"Keystone: {exc}") from None
    if not endpoint:
        raise AuthError("Keystone's catalog has no image endpoint for this interface and region.")

    def headers() -> Mapping[str, str]:
        return session.get_auth_headers() or {}

    return Connection(_without_version(str(endpoint)), headers, verify)
