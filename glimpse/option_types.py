"""oslo.config types that read Glance's option syntax the way Glance does.

Glance declares several lists with `bounds=True` (`allowed_ports = [80,443]`): oslo.config then requires
the brackets, and a list without them stops Glance. Glimpse has always read these lists without brackets,
so `GlanceList` reads both forms to the same value; with brackets it is exactly Glance's reading.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg, types


class GlanceList(types.List):
    """A bounded list (Glance's brackets) that also accepts the bare comma-separated form."""

    def __init__(self, item_type: types.ConfigType | None = None, type_name: str = "list value") -> None:
        super().__init__(item_type=item_type, bounds=True, type_name=type_name)

    def __call__(self, value: Any) -> list[Any]:
        if isinstance(value, str) and not value.strip().startswith("["):
            value = f"[{value.strip().rstrip(',')}]"
        result: list[Any] = super().__call__(value)
        return result


def glance_list_opt(name: str, item_type: types.ConfigType | None = None, **kwargs: Any) -> cfg.Opt:
    """A ListOpt declared as Glance declares it with `bounds=True`, also read without the brackets."""
    return cfg.Opt(name, type=GlanceList(item_type), **kwargs)
