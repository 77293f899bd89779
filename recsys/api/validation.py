"""The one hook into APIFlask's validation: requests are validated by the declared pydantic models,
and a refusal is the project's own 400 (``InvalidRequestError``, naming the parameter), not
APIFlask's 422. A query parameter given twice is refused too.

APIFlask binds an adapter when ``@bp.input`` decorates a view, so the blueprints import this module
first: registering the adapter is the one thing done at import time in ``recsys.api``.
"""

from __future__ import annotations

from typing import Any

from apiflask.schema_adapters import registry
from apiflask.schema_adapters.pydantic import PydanticAdapter
from flask import Request
from pydantic import ValidationError

from recsys.errors import InvalidRequestError
from recsys.query.requests import refusal


class ProjectAdapter(PydanticAdapter):
    def validate_input(self, request: Request, location: str, **kwargs: Any) -> Any:
        if location == "query":
            data: Any = {}
            for name, values in request.args.lists():
                if len(values) != 1:
                    raise InvalidRequestError(f"parameter {name!r} must be given once", param=name)
                data[name] = values[0]
        elif location == "json":
            data = request.get_json(silent=True) if request.content_length else {}
            if not isinstance(data, dict):
                raise InvalidRequestError("the body must be a JSON object", param="body")
        else:
            return super().validate_input(request, location, **kwargs)
        try:
            return self.model_class.model_validate(data)
        except ValidationError as exc:
            raise refusal(exc, self.model_class) from None


registry.register("pydantic", ProjectAdapter)
