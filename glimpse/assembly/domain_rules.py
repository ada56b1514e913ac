"""The domain's rules as the operator set them: limits, formats, property protections, import options and timing."""

from __future__ import annotations

from datetime import timedelta

from glimpse.assembly import log
from glimpse.auth.policy import Policy
from glimpse.config import Settings
from glimpse.domain.import_claim import ImportTiming
from glimpse.domain.import_sources import ImportOptions
from glimpse.domain.limits import Limits
from glimpse.domain.metadefs import PageLimits
from glimpse.domain.property_rules import parse as parse_property_rules
from glimpse.domain.protections import UNPROTECTED, PropertyProtections
from glimpse.domain.resumable import UploadTiming
from glimpse.domain.schema import ImageSchema
from glimpse.errors import ConfigError
from glimpse.formats.conversion import ProcessLimits
from glimpse.formats.inspection import FormatRules
from glimpse.sources.egress import EgressPolicy

# Import methods this build carries out; the operator's enabled_import_methods can only narrow them.
IMPLEMENTED_IMPORT_METHODS: tuple[str, ...] = ("glance-direct", "web-download", "copy-image", "glance-download")


def limits(settings: Settings) -> Limits:
    return Limits(
        image_size_cap=settings.image_size_cap,
        image_property_quota=settings.image_property_quota,
        image_tag_quota=settings.image_tag_quota,
        limit_param_default=settings.limit_param_default,
        api_limit_max=settings.api_limit_max,
        hashing_algorithm=settings.hashing_algorithm,
        heartbeat_every=settings.upload_heartbeat_timeout / 4,
        image_location_quota=settings.image_location_quota,
        image_property_value_max_length=settings.image_property_value_max_length,
        deduplicate=settings.deduplicate_image_data,
    )


def upload_timing(settings: Settings) -> UploadTiming:
    return UploadTiming(
        expire_after=timedelta(hours=settings.resumable_upload_expiration),
        stale_after=timedelta(seconds=settings.upload_heartbeat_timeout),
    )


def page_limits(settings: Settings) -> PageLimits:
    return PageLimits(settings.limit_param_default, settings.api_limit_max)


def image_schema(settings: Settings) -> ImageSchema:
    try:
        return ImageSchema(settings.disk_formats, settings.container_formats)
    except ValueError as exc:
        raise ConfigError(f"[image_format] {exc}") from None


def format_rules(settings: Settings) -> FormatRules:
    return FormatRules(
        require_image_format_match=settings.require_image_format_match,
        vmdk_allowed_types=settings.vmdk_allowed_types,
        gpt_safety_checks_nonfatal=settings.gpt_safety_checks_nonfatal,
    )


def property_protections(settings: Settings, policy: Policy) -> PropertyProtections:
    """The operator's property_protection_file, read and checked once (a wrong one stops the start-up)."""
    path = settings.property_protection_file
    if path is None:
        return UNPROTECTED
    fmt = settings.property_protection_rule_format
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"property_protection_file {path} cannot be read: {exc}") from None
    sections = parse_property_rules(text, fmt, path)
    if fmt == "policies":
        named = {e for s in sections for entries in s.allowed.values() for e in entries} - {"@", "!"}
        for rule in sorted(r for r in named if not policy.defines(r)):
            log.warning("property_protection_file %s names policy rule %s, which no policy defines: it allows "
                        "nobody until the policy file defines it.", path, rule)  # fmt: skip
    log.info("Property protections from %s (%s format): %d sections.", path, fmt, len(sections))
    return PropertyProtections(sections, fmt, policy)


def import_options(settings: Settings, egress: EgressPolicy) -> ImportOptions:
    return ImportOptions(
        methods=tuple(m for m in settings.enabled_import_methods if m in IMPLEMENTED_IMPORT_METHODS),
        egress=egress,
        plugins=settings.import_plugins,
        conversion_format=settings.conversion_format,
        qemu_limits=ProcessLimits(settings.qemu_img_memory_limit * 1024 * 1024, settings.qemu_img_cpu_time_limit),
        inject=settings.inject_properties,
        inject_ignore_roles=settings.inject_ignore_roles,
        remote_endpoints=settings.remote_endpoints,
        download_properties=settings.download_properties,
    )


def import_timing(settings: Settings) -> ImportTiming:
    return ImportTiming(
        heartbeat_every=settings.task_heartbeat_interval,
        stale_after=timedelta(seconds=settings.task_stale_after),
        step_timeout=float(settings.import_step_timeout),
        upload_abandoned_after=timedelta(seconds=settings.upload_heartbeat_timeout),
    )
