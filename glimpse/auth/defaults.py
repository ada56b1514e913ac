"""Policy defaults: Glance's rule names and secure-RBAC check strings, so a Glance policy.yaml works as-is.

The names and check strings are the contract operators write policy files against; they must not drift.
"""

from __future__ import annotations

from oslo_policy import policy

# (name, check string, what it guards, [(method, path), ...])
RULES: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("default", "", "Rule used where a policy has no check of its own.", []),
    ("context_is_admin", "role:admin", "Who counts as an administrator.", []),
    ("service_api", "role:service or role:admin", "Other services (Nova, Cinder) calling the image API.", []),
    (
        "add_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s and project_id:%(owner)s)",
        "Create an image record.",
        [("POST", "/v2/images")],
    ),
    (
        "delete_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Delete an image.",
        [("DELETE", "/v2/images/{image_id}")],
    ),
    (
        "get_image",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))",
        "Show one image.",
        [("GET", "/v2/images/{image_id}")],
    ),
    (
        "get_images",
        "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
        "List images.",
        [("GET", "/v2/images")],
    ),
    (
        "modify_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Change image metadata.",
        [("PATCH", "/v2/images/{image_id}")],
    ),
    ("publicize_image", "rule:context_is_admin", "Make an image public.", [("PATCH", "/v2/images/{image_id}")]),
    (
        "communitize_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Make an image a community image.",
        [("PATCH", "/v2/images/{image_id}")],
    ),
    (
        "download_image",
        "rule:context_is_admin or (role:member and (project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))",
        "Download image data.",
        [("GET", "/v2/images/{image_id}/file")],
    ),
    (
        "download_from_store",
        "rule:context_is_admin or (role:member and (project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))",
        "Download image data from a chosen store.",
        [("GET", "/v2/images/{image_id}/file")],
    ),
    (
        "upload_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Upload image data.",
        [("PUT", "/v2/images/{image_id}/file")],
    ),
    (
        "delete_image_location",
        "rule:context_is_admin",
        "Remove an image location.",
        [("PATCH", "/v2/images/{image_id}")],
    ),
    (
        "get_image_location",
        "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
        "See image locations.",
        [("GET", "/v2/images/{image_id}")],
    ),
    (
        "set_image_location",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Set image locations.",
        [("PATCH", "/v2/images/{image_id}")],
    ),
    (
        "add_image_location",
        "rule:service_api or (role:member and project_id:%(project_id)s and project_id:%(owner)s)",
        "Add a location to a queued image.",
        [("POST", "/v2/images/{image_id}/locations")],
    ),
    (
        "fetch_image_location",
        "rule:service_api",
        "List image locations (service to service).",
        [("GET", "/v2/images/{image_id}/locations")],
    ),
    (
        "add_member",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Share an image with a project.",
        [("POST", "/v2/images/{image_id}/members")],
    ),
    (
        "delete_member",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Stop sharing an image with a project.",
        [("DELETE", "/v2/images/{image_id}/members/{member_id}")],
    ),
    (
        "get_member",
        "rule:context_is_admin or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
        "Show one image member.",
        [("GET", "/v2/images/{image_id}/members/{member_id}")],
    ),
    (
        "get_members",
        "rule:context_is_admin or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
        "List image members.",
        [("GET", "/v2/images/{image_id}/members")],
    ),
    (
        "modify_member",
        "rule:context_is_admin or (role:member and project_id:%(member_id)s)",
        "Accept or reject an image shared with your project.",
        [("PUT", "/v2/images/{image_id}/members/{member_id}")],
    ),
    ("manage_image_cache", "rule:context_is_admin", "Manage the image cache.", []),
    (
        "deactivate",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Deactivate an image.",
        [("POST", "/v2/images/{image_id}/actions/deactivate")],
    ),
    (
        "reactivate",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Reactivate an image.",
        [("POST", "/v2/images/{image_id}/actions/reactivate")],
    ),
    (
        "copy_image",
        "rule:context_is_admin",
        "Copy an image to more stores.",
        [("POST", "/v2/images/{image_id}/import")],
    ),
    (
        "list_cached_nodes",
        "rule:context_is_admin",
        "List the nodes caching an image.",
        [("GET", "/v2/cache/nodes/{image_id}")],
    ),
    ("get_task", "rule:default", "Show a task.", [("GET", "/v2/tasks/{task_id}")]),
    ("get_tasks", "rule:default", "List tasks.", [("GET", "/v2/tasks")]),
    ("add_task", "rule:default", "Create a task.", [("POST", "/v2/tasks")]),
    ("modify_task", "rule:default", "Change a task.", [("DELETE", "/v2/tasks/{task_id}")]),
    (
        "tasks_api_access",
        "rule:context_is_admin",
        "Use the tasks API at all.",
        [
            ("GET", "/v2/tasks/{task_id}"),
            ("GET", "/v2/tasks"),
            ("POST", "/v2/tasks"),
            ("DELETE", "/v2/tasks/{task_id}"),
        ],
    ),
    ("metadef_default", "", "Default metadata definitions rule.", []),
    ("metadef_admin", "rule:context_is_admin", "Administer metadata definitions.", []),
    (
        "get_metadef_namespace",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        "Get metadata definition namespace.",
        [("GET", "/v2/metadefs/namespaces/{namespace_name}")],
    ),
    (
        "get_metadef_namespaces",
        "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
        "Get metadata definition namespaces.",
        [("GET", "/v2/metadefs/namespaces")],
    ),
    (
        "modify_metadef_namespace",
        "rule:metadef_admin",
        "Modify metadata definition namespace.",
        [("PUT", "/v2/metadefs/namespaces/{namespace_name}")],
    ),
    (
        "add_metadef_namespace",
        "rule:metadef_admin",
        "Add metadata definition namespace.",
        [("POST", "/v2/metadefs/namespaces")],
    ),
    (
        "delete_metadef_namespace",
        "rule:metadef_admin",
        "Delete metadata definition namespace.",
        [("DELETE", "/v2/metadefs/namespaces/{namespace_name}")],
    ),
    (
        "get_metadef_object",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        "Get metadata definition object.",
        [("GET", "/v2/metadefs/namespaces/{namespace_name}/objects/{object_name}")],
    ),
    (
        "get_metadef_objects",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        "Get metadata definition objects.",
        [("GET", "/v2/metadefs/namespaces/{namespace_name}/objects")],
    ),
    (
        "modify_metadef_object",
        "rule:metadef_admin",
        "Modify metadata definition object.",
        [("PUT", "/v2/metadefs/namespaces/{namespace_name}/objects/{object_name}")],
    ),
    (
        "add_metadef_object",
        "rule:metadef_admin",
        "Add metadata definition object.",
        [("POST", "/v2/metadefs/namespaces/{namespace_name}/objects")],
    ),
    (
        "delete_metadef_object",
        "rule:metadef_admin",
        "Delete metadata definition object.",
        [("DELETE", "/v2/metadefs/namespaces/{namespace_name}/objects/{object_name}")],
    ),
    (
        "list_metadef_resource_types",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        "List metadata definition resource types.",
        [("GET", "/v2/metadefs/resource_types")],
    ),
    (
        "get_metadef_resource_type",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        "Get metadata definition resource type.",
        [("GET", "/v2/metadefs/namespaces/{namespace_name}/resource_types")],
    ),
    (
        "add_metadef_resource_type_association",
        "rule:metadef_admin",
        "Add metadata definition resource type association.",
        [("POST", "/v2/metadefs/namespaces/{namespace_name}/resource_types")],
    ),
    (
        "remove_metadef_resource_type_association",
        "rule:metadef_admin",
        "Remove metadata definition resource type association.",
        [("DELETE", "/v2/metadefs/namespaces/{namespace_name}/resource_types/{name}")],
    ),
    (
        "get_metadef_property",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        "Get metadata definition property.",
        [("GET", "/v2/metadefs/namespaces/{namespace_name}/properties/{property_name}")],
    ),
    (
        "get_metadef_properties",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        "Get metadata definition properties.",
        [("GET", "/v2/metadefs/namespaces/{namespace_name}/properties")],
    ),
    (
        "modify_metadef_property",
        "rule:metadef_admin",
        "Modify metadata definition property.",
        [("PUT", "/v2/metadefs/namespaces/{namespace_name}/properties/{property_name}")],
    ),
    (
        "add_metadef_property",
        "rule:metadef_admin",
        "Add metadata definition property.",
        [("POST", "/v2/metadefs/namespaces/{namespace_name}/properties")],
    ),
    (
        "remove_metadef_property",
        "rule:metadef_admin",
        "Remove metadata definition property.",
        [("DELETE", "/v2/metadefs/namespaces/{namespace_name}/properties/{property_name}")],
    ),
    (
        "get_metadef_tag",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        "Get metadata definition tag.",
        [("GET", "/v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}")],
    ),
    (
        "get_metadef_tags",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        "Get metadata definition tags.",
        [("GET", "/v2/metadefs/namespaces/{namespace_name}/tags")],
    ),
    (
        "modify_metadef_tag",
        "rule:metadef_admin",
        "Modify metadata definition tag.",
        [("PUT", "/v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}")],
    ),
    (
        "add_metadef_tag",
        "rule:metadef_admin",
        "Add metadata definition tag.",
        [("POST", "/v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}")],
    ),
    (
        "add_metadef_tags",
        "rule:metadef_admin",
        "Add metadata definition tags.",
        [("POST", "/v2/metadefs/namespaces/{namespace_name}/tags")],
    ),
    (
        "delete_metadef_tag",
        "rule:metadef_admin",
        "Delete metadata definition tag.",
        [("DELETE", "/v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}")],
    ),
    (
        "delete_metadef_tags",
        "rule:metadef_admin",
        "Delete metadata definition tags.",
        [("DELETE", "/v2/metadefs/namespaces/{namespace_name}/tags")],
    ),
    ("cache_image", "rule:context_is_admin", "Queue an image for caching.", [("PUT", "/v2/cache/{image_id}")]),
    ("cache_list", "rule:context_is_admin", "List cached images.", [("GET", "/v2/cache")]),
    (
        "cache_delete",
        "rule:context_is_admin",
        "Delete cached images.",
        [("DELETE", "/v2/cache"), ("DELETE", "/v2/cache/{image_id}")],
    ),
    ("cache_clean", "rule:context_is_admin", "Clean the image cache.", [("POST", "/v2/cache/clean")]),
    ("cache_prune", "rule:context_is_admin", "Prune the image cache.", [("POST", "/v2/cache/prune")]),
    # Glimpse's own: per-project quotas (GET/PUT /v2/quotas/{project_id}, GET /v2/info/usage).
    (
        "get_project_quota",
        "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
        "See a project's quotas and usage.",
        [("GET", "/v2/info/usage"), ("GET", "/v2/quotas/{project_id}")],
    ),
    (
        "set_project_quota",
        "rule:context_is_admin",
        "Set or list per-project quotas.",
        [("PUT", "/v2/quotas/{project_id}"), ("GET", "/v2/quotas")],
    ),
    # Glimpse's own: the audit log and retention policies.
    ("get_audit", "rule:context_is_admin", "Read the audit log.", [("GET", "/v2/audit")]),
    (
        "get_retention_policies",
        "rule:context_is_admin or (role:manager and project_id:%(project_id)s)",
        "See retention policies (a project manager: those of the project).",
        [("GET", "/v2/retention/policies"), ("GET", "/v2/retention/policies/{policy_id}")],
    ),
    (
        "manage_retention_policy",
        "rule:context_is_admin or (role:manager and project_id:%(project_id)s)",
        "Create or delete a retention policy (a project manager: one of the project, not a cloud-wide family's).",
        [("POST", "/v2/retention/policies"), ("DELETE", "/v2/retention/policies/{policy_id}")],
    ),
    ("run_retention", "rule:context_is_admin", "Run the retention policies now.", [("POST", "/v2/retention/run")]),
    # Glimpse's own: webhooks. A project's members manage the project's; only administrators make global ones
    # (project_id absent: they receive every project's events).
    (
        "get_webhooks",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "List webhooks.",
        [("GET", "/v2/webhooks")],
    ),
    (
        "get_webhook",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Show a webhook and its delivery log.",
        [("GET", "/v2/webhooks/{webhook_id}"), ("GET", "/v2/webhooks/{webhook_id}/deliveries")],
    ),
    (
        "add_webhook",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Add a webhook to a project.",
        [("POST", "/v2/webhooks")],
    ),
    (
        "add_global_webhook",
        "rule:context_is_admin",
        "Add a webhook for every project's events.",
        [("POST", "/v2/webhooks")],
    ),
    (
        "modify_webhook",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Change a webhook.",
        [("PATCH", "/v2/webhooks/{webhook_id}")],
    ),
    (
        "delete_webhook",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Delete a webhook.",
        [("DELETE", "/v2/webhooks/{webhook_id}")],
    ),
    (
        "test_webhook",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Send a webhook a test event.",
        [("POST", "/v2/webhooks/{webhook_id}/actions/test")],
    ),
    # Glimpse's own: the recycle bin (GET /v2/recycle-bin, restore, purge) and its retention periods.
    (
        "get_binned_images",
        "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
        "List the images in the recycle bin (a project's own; an administrator every project's).",
        [("GET", "/v2/recycle-bin")],
    ),
    (
        "get_binned_image",
        "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
        "Show an image in the recycle bin.",
        [("GET", "/v2/recycle-bin/{image_id}")],
    ),
    (
        "restore_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Restore an image from the recycle bin.",
        [("POST", "/v2/recycle-bin/{image_id}/restore")],
    ),
    (
        "purge_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Remove an image from the recycle bin for good, its data at once.",
        [("DELETE", "/v2/recycle-bin/{image_id}")],
    ),
    (
        "get_bin_retention",
        "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
        "See a project's recycle-bin retention period.",
        [("GET", "/v2/recycle-bin/retention/{project_id}")],
    ),
    (
        "set_bin_retention",
        "rule:context_is_admin",
        "Set a project's recycle-bin retention period, or list every project's.",
        [
            ("PUT", "/v2/recycle-bin/retention/{project_id}"),
            ("DELETE", "/v2/recycle-bin/retention/{project_id}"),
            ("GET", "/v2/recycle-bin/retention"),
        ],
    ),
    (
        "stores_info_detail",
        "rule:context_is_admin or rule:service_api",
        "See store details.",
        [("GET", "/v2/info/stores/detail")],
    ),
]


def list_rules() -> list[policy.RuleDefault]:
    """The defaults, for the enforcer and for oslopolicy-sample-generator --namespace glimpse."""
    rules: list[policy.RuleDefault] = []
    for name, check, description, operations in RULES:
        if operations:
            ops: list[policy.Operation] = [{"method": method, "path": path} for method, path in operations]
            rules.append(policy.DocumentedRuleDefault(name, check, description, ops, scope_types=["project"]))
        else:
            rules.append(policy.RuleDefault(name, check, description=description))
    return rules
