"""Glance's legacy tasks API: `POST /v2/tasks` with an `import` task (admin only by default).

A new image is made from `image_properties` and filled from `import_from` as web-download fills one; the task
answered is the web-download import's. As in Glance 33 (bug 2152110) a URI the egress policy refuses is a 400
at once, and a refused import leaves no image behind.
"""

from __future__ import annotations

from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain.entities import Task
from glimpse.domain.imports import ImportService
from glimpse.domain.inputs import check_url
from glimpse.domain.service import ImageService
from glimpse.errors import BadRequest


def create_import_task(images: ImageService, imports: ImportService, ctx: RequestContext, body: Any) -> Task:
    imports.authorize_task_creation(ctx)
    if not isinstance(body, dict) or body.get("type") != "import":
        raise BadRequest("Invalid type value: only tasks of type 'import' can be created.")
    task_input = body.get("input")
    if not isinstance(task_input, dict) or not isinstance(task_input.get("image_properties", {}), dict):
        raise BadRequest("An import task needs an 'input' object with 'import_from' and 'image_properties'.")
    uri = check_url(task_input.get("import_from"), "import_from")
    try:
        imports.vet_source(uri)
    except BadRequest as exc:
        raise BadRequest(f"URI for legacy import task does not pass filtering: {uri} ({exc.message})") from None
    image = images.create(ctx, dict(task_input.get("image_properties") or {}))
    try:
        return imports.start(ctx, image.id, {"method": {"name": "web-download", "uri": uri}})
    except BaseException:
        images.delete(ctx, image.id)  # no task, no image: nothing is left behind by a refused import
        raise
