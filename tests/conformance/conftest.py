from tests.keystone.fixtures import keystone_projects, keystone_server  # noqa: F401  (a real Keystone)
