"""``GET /v1/facets``: counts per brand, category level, price bucket, stock status and attribute over a
query's matching set (see :mod:`recsys.query.facets` for what that set is), so a storefront (and the
playground) can draw its filter menus from the catalogue's own values."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response, g

from recsys.api import validation  # noqa: F401  (before any @bp.input)
from recsys.api.schemas import FacetParams, FacetsReply
from recsys.api.views import reply, state
from recsys.query.facets import facets_for

bp = APIBlueprint("facets", __name__, tag="search")


@bp.get("/v1/facets")
@bp.input(FacetParams, location="query", arg_name="params")
@bp.output(FacetsReply, description="facet counts over the matching set, with the filters applied")
@bp.doc(
    summary="Facet counts for filter menus",
    description="With q: over the search's candidate pool after filters (the products its first pages "
    "can show); without q: over every product that passes the filters. Every filter applies to every "
    "facet, so a chosen value counts only itself.",
)
def facets(params: FacetParams) -> Response:
    st = state()
    version, body = facets_for(
        st.engine,
        params.q,
        params.filters,
        understand=params.intent == "on",
        vectorise=st.service.query_vector,
    )
    g.index_version = version
    return reply(body)
