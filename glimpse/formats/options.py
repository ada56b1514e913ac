"""[image_format] and [image_conversion]: which formats images may have, and what imports convert to."""

from __future__ import annotations

from oslo_config import cfg

IMAGE_FORMAT_OPTS: list[cfg.Opt] = [
    cfg.ListOpt(
        "disk_formats",
        default=["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"],
        help="Disk formats images may declare.",
    ),
    cfg.ListOpt(
        "container_formats",
        default=["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"],
        help="Container formats images may declare.",
    ),
    cfg.BoolOpt(
        "require_image_format_match", default=True, help="Refuse data whose content is not its declared disk_format."
    ),
    cfg.ListOpt(
        "vmdk_allowed_types",
        default=["streamOptimized", "monolithicSparse"],
        help="VMDK subformats accepted (single-file ones only are safe).",
    ),
    cfg.ListOpt("gpt_safety_checks_nonfatal", default=[], help="GPT/MBR safety checks that only warn (mbr, gptmbr)."),
]
CONVERSION_OPTS: list[cfg.Opt] = [
    cfg.StrOpt("output_format", default="raw", choices=["raw", "qcow2", "vmdk"], help="Format imports convert to."),
    cfg.IntOpt(
        "qemu_img_memory_limit",
        default=1024,
        min=64,
        help="MiB of address space one qemu-img process may use (Glimpse's own; Glance caps qemu-img info at 1 GiB).",
    ),
    cfg.IntOpt(
        "qemu_img_cpu_time_limit",
        default=1800,
        min=1,
        help="Seconds of CPU time one qemu-img process may use (Glimpse's own).",
    ),
]
