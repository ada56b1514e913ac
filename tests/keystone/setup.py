"""Projects, users, roles and the image service in a real Keystone, through its v3 API (plain httpx).

`bootstrap_projects(ks)` makes what the functional tests log in with:

- project `service` with user `glance` (role admin there): the service user of `[keystone_authtoken]`;
- projects Prj1, Prj2, Prj3, each with users `<prj>-admin`, `<prj>-member` and `<prj>-reader` holding that role on
  that project (the roles are bootstrap's own; there admin implies manager, member and reader, and member implies
  reader, so tokens list the implied roles too);
- when given an image endpoint, service `glance` of type `image` with public/internal/admin endpoints in RegionOne.

Everything is get-or-create, so calling it again (or on an already set-up Keystone) is harmless.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.keystone.server import KeystoneServer

DOMAIN = "Default"
DOMAIN_ID = "default"
PROJECTS = ("Prj1", "Prj2", "Prj3")
ROLES = ("admin", "member", "reader")
SERVICE_PROJECT = "service"
SERVICE_USER = "glance"
INTERFACES = ("public", "internal", "admin")

Token = tuple[str, dict[str, Any]]  # (the X-Subject-Token, the "token" object of the response body)


def password_for(username: str) -> str:
    return f"{username}-secret"


def issue_token(
    auth_url: str,
    username: str,
    password: str,
    project: str | None = None,
    *,
    user_domain: str = DOMAIN,
    project_domain: str = DOMAIN,
) -> Token:
    """POST {auth_url}/auth/tokens with a password, scoped to `project` (by name) unless it is None.

    Raises httpx.HTTPStatusError on anything but 201 (a wrong password gives 401).
    """
    auth: dict[str, Any] = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": username, "domain": {"name": user_domain}, "password": password}},
        }
    }
    if project is not None:
        auth["scope"] = {"project": {"name": project, "domain": {"name": project_domain}}}
    response = httpx.post(f"{auth_url.rstrip('/')}/auth/tokens", json={"auth": auth}, timeout=60)
    response.raise_for_status()
    return response.headers["X-Subject-Token"], response.json()["token"]


def admin_client(ks: KeystoneServer) -> httpx.Client:
    """An httpx client on ks.url with the bootstrap admin's token (scoped to project admin)."""
    token, _ = issue_token(ks.url, ks.admin_username, ks.admin_password, ks.admin_project)
    return httpx.Client(base_url=ks.url.rstrip("/") + "/", headers={"X-Auth-Token": token}, timeout=60)


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.is_error:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")
    return response.json() if response.content else {}


def _find(client: httpx.Client, collection: str, **query: str) -> dict[str, Any] | None:
    found = _check(client.get(collection, params=query))[collection]
    return found[0] if found else None


def _project(client: httpx.Client, name: str, description: str) -> str:
    found = _find(client, "projects", name=name, domain_id=DOMAIN_ID)
    if found is not None:
        return str(found["id"])
    body = {"project": {"name": name, "domain_id": DOMAIN_ID, "description": description, "enabled": True}}
    return str(_check(client.post("projects", json=body))["project"]["id"])


def _user(client: httpx.Client, name: str, password: str, project_id: str) -> str:
    found = _find(client, "users", name=name, domain_id=DOMAIN_ID)
    if found is not None:  # make sure the password is the one we hand out
        _check(client.patch(f"users/{found['id']}", json={"user": {"password": password}}))
        return str(found["id"])
    body = {
        "user": {
            "name": name,
            "password": password,
            "domain_id": DOMAIN_ID,
            "default_project_id": project_id,
            "enabled": True,
        }
    }
    return str(_check(client.post("users", json=body))["user"]["id"])


def _role(client: httpx.Client, name: str) -> str:
    found = _find(client, "roles", name=name)
    if found is not None:
        return str(found["id"])
    return str(_check(client.post("roles", json={"role": {"name": name}}))["role"]["id"])


def _grant(client: httpx.Client, project_id: str, user_id: str, role_id: str) -> None:
    _check(client.put(f"projects/{project_id}/users/{user_id}/roles/{role_id}"))


def image_endpoints(ks: KeystoneServer) -> dict[str, str]:
    """{interface: url} of the image service's endpoints in the catalog; {} when there is none."""
    with admin_client(ks) as client:
        service = _find(client, "services", type="image")
        if service is None:
            return {}
        endpoints = _check(client.get("endpoints", params={"service_id": service["id"]}))["endpoints"]
        return {e["interface"]: e["url"] for e in endpoints}


def register_image_service(ks: KeystoneServer, url: str, *, name: str = "glance") -> str:
    """As `openstack service create --name glance image` and `openstack endpoint create --region RegionOne image
    public|internal|admin URL`; an existing image service keeps its id and gets its endpoints pointed at `url`.
    Returns the service id."""
    return register_service(ks, "image", url, name=name, description="OpenStack Image")


def register_service(ks: KeystoneServer, service_type: str, url: str, *, name: str, description: str = "") -> str:
    """A service of `service_type` in the catalog, its public/internal/admin endpoints in RegionOne at `url`."""
    with admin_client(ks) as client:
        service = _find(client, "services", type=service_type)
        if service is None:
            body = {"service": {"name": name, "type": service_type, "description": description, "enabled": True}}
            service = _check(client.post("services", json=body))["service"]
        service_id = str(service["id"])
        existing = {
            e["interface"]: e for e in _check(client.get("endpoints", params={"service_id": service_id}))["endpoints"]
        }
        for interface in INTERFACES:
            endpoint = existing.get(interface)
            if endpoint is None:
                body = {
                    "endpoint": {
                        "service_id": service_id,
                        "interface": interface,
                        "url": url,
                        "region_id": ks.region,
                        "enabled": True,
                    }
                }
                _check(client.post("endpoints", json=body))
            elif endpoint["url"] != url or endpoint.get("region_id") != ks.region:
                patch = {"endpoint": {"url": url, "region_id": ks.region, "enabled": True}}
                _check(client.patch(f"endpoints/{endpoint['id']}", json=patch))
        return service_id


def unregister_image_service(ks: KeystoneServer) -> None:
    """Remove the image service and its endpoints from the catalog (if there is one)."""
    with admin_client(ks) as client:
        service = _find(client, "services", type="image")
        if service is None:
            return
        for endpoint in _check(client.get("endpoints", params={"service_id": service["id"]}))["endpoints"]:
            _check(client.delete(f"endpoints/{endpoint['id']}"))
        _check(client.delete(f"services/{service['id']}"))


def authtoken_options(ks: KeystoneServer) -> dict[str, str]:
    """The [keystone_authtoken] options for the service user `glance` (keystonemiddleware's names)."""
    return {
        "www_authenticate_uri": ks.base_url,
        "auth_url": ks.base_url,
        "auth_type": "password",
        "username": SERVICE_USER,
        "password": password_for(SERVICE_USER),
        "project_name": SERVICE_PROJECT,
        "user_domain_name": DOMAIN,
        "project_domain_name": DOMAIN,
        "region_name": ks.region,
    }


def authtoken_conf(ks: KeystoneServer) -> str:
    """authtoken_options(ks) as a glance-api.conf section: "[keystone_authtoken]\nauth_url = ...\n..."."""
    lines = [f"{key} = {value}" for key, value in authtoken_options(ks).items()]
    return "[keystone_authtoken]\n" + "\n".join(lines) + "\n"


def bootstrap_projects(ks: KeystoneServer, image_endpoint: str | None = None) -> dict[str, Any]:
    """Create (or find) the service project/user, Prj1..3 with their admin/member/reader users, and optionally the
    image service. Returns:

    {
      "auth_url": ks.url, "region": "RegionOne", "domain": "Default",
      "roles": {"admin": id, "member": id, "reader": id},
      "projects": {"admin": id, "service": id, "Prj1": id, "Prj2": id, "Prj3": id},
      "users": {name: {"id", "password", "project", "project_id", "role"}}   # "admin", "glance", "Prj1-admin", ...
      "service_user": users["glance"],
      "keystone_authtoken": authtoken_options(ks),
      "image_service_id": id or None,
      "token": token(user, project=None) -> (token_id, token_body)   # project defaults to the user's own
    }
    """
    users: dict[str, dict[str, str]] = {}
    projects: dict[str, str] = {}
    with admin_client(ks) as client:
        roles = {name: _role(client, name) for name in ROLES}
        admin_project = _find(client, "projects", name=ks.admin_project, domain_id=DOMAIN_ID)
        admin_user = _find(client, "users", name=ks.admin_username, domain_id=DOMAIN_ID)
        assert admin_project is not None and admin_user is not None, "Keystone was not bootstrapped"
        projects[ks.admin_project] = str(admin_project["id"])
        users[ks.admin_username] = {
            "id": str(admin_user["id"]),
            "password": ks.admin_password,
            "project": ks.admin_project,
            "project_id": projects[ks.admin_project],
            "role": "admin",
        }

        def add_user(name: str, project: str, role: str) -> None:
            password = password_for(name)
            user_id = _user(client, name, password, projects[project])
            _grant(client, projects[project], user_id, roles[role])
            users[name] = {
                "id": user_id,
                "password": password,
                "project": project,
                "project_id": projects[project],
                "role": role,
            }

        projects[SERVICE_PROJECT] = _project(client, SERVICE_PROJECT, "Service users")
        add_user(SERVICE_USER, SERVICE_PROJECT, "admin")
        for project in PROJECTS:
            projects[project] = _project(client, project, f"Glimpse test project {project}")
            for role in ROLES:
                add_user(f"{project}-{role}", project, role)

    image_service_id = register_image_service(ks, image_endpoint) if image_endpoint else None

    def token(user: str, project: str | None = None) -> Token:
        """A token for `user` (any name in "users") scoped to `project` (default: the user's own project)."""
        return issue_token(ks.url, user, users[user]["password"], project or users[user]["project"])

    result: dict[str, Any] = {
        "auth_url": ks.url,
        "region": ks.region,
        "domain": DOMAIN,
        "roles": roles,
        "projects": projects,
        "users": users,
        "service_user": users[SERVICE_USER],
        "keystone_authtoken": authtoken_options(ks),
        "image_service_id": image_service_id,
        "token": token,
    }
    return result


def openstack_env(ks: KeystoneServer, user: str, project: str, password: str) -> dict[str, str]:
    """OS_* variables for the real `openstack` / `glance` CLIs (merge them into an environment without OS_*)."""
    return {
        "OS_AUTH_URL": ks.url,
        "OS_AUTH_TYPE": "password",
        "OS_USERNAME": user,
        "OS_PASSWORD": password,
        "OS_PROJECT_NAME": project,
        "OS_USER_DOMAIN_NAME": DOMAIN,
        "OS_PROJECT_DOMAIN_NAME": DOMAIN,
        "OS_REGION_NAME": ks.region,
        "OS_IDENTITY_API_VERSION": "3",
        "OS_IMAGE_API_VERSION": "2",
    }
