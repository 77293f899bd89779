"""The playground page.

Fast tier (Flask test client, hash encoder): the page and its files are served with a strict
Content-Security-Policy, the script writes no HTML and fetches nothing from elsewhere, and the index
panel's admin reads (latest job, audit charts) are guarded and never read a path they did not list.

Model tier: end to end in headless Chromium (Debian's package, driven by playwright) against a real
gunicorn serving a fresh index of the small catalogue plus a product titled ``<script>...``, built
with the real model and audited. Screenshots at desktop and phone width go to the test's output folder
and to ``bench/results/playground/``. Under CI (``CI=true``) a missing browser fails; elsewhere it skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import pytest
from flask.testing import FlaskClient

from recsys.api import create_app
from recsys.api.playground import STATIC
from recsys.audit.service import run_audit
from recsys.build.assemble import BuildResult
from recsys.build.pipeline import build_index
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.query.cache import InProcessCache
from recsys.query.engine import Engine
from recsys.settings import PROJECT_ROOT, Settings
from tests.test_api_gunicorn import free_port, gunicorn

TOKEN = "playground-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = PROJECT_ROOT / "bench" / "results" / "playground"
XSS_TITLE = "<script>alert(1)</script> Wireless Headphones"
XSS_BRAND = "<img src=x onerror=alert(2)>"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# -- fast tier: the page and the panel's endpoints -------------------------------------------------


@pytest.fixture
def client(full_build: tuple[Settings, BuildResult], full_engine: Engine) -> FlaskClient:
    settings = full_build[0].replace(admin_token=TOKEN)
    return create_app(settings, engine=full_engine, cache=InProcessCache()).test_client()


@pytest.mark.parametrize("path", ["/", "/playground"])
def test_the_page_is_served_with_a_strict_policy(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe" not in policy
    html = response.get_data(as_text=True)
    assert '<script src="/playground/static/playground.js" defer></script>' in html
    assert "<script>" not in html and not re.search(r"\son[a-z]+\s*=", html)  # no inline script at all


def test_the_static_files_are_served(client: FlaskClient) -> None:
    for name, mimetype in (("playground.js", "text/javascript"), ("playground.css", "text/css")):
        response = client.get(f"/playground/static/{name}")
        assert response.status_code == 200 and response.mimetype == mimetype
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        response.close()
    assert client.get("/playground/static/../__init__.py").status_code == 404


def test_the_script_writes_no_html_and_fetches_nothing_from_elsewhere() -> None:
    script = (STATIC / "playground.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "localStorage" not in script  # the token lives in sessionStorage only
    for name in ("index.html", "playground.css", "playground.js"):
        text = (STATIC / name).read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), name


def test_the_page_is_not_in_the_openapi_document_but_the_panel_reads_are(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "/" not in paths and "/playground" not in paths
    assert {"/v1/reindex/latest", "/v1/audit/charts", "/v1/audit/charts/{name}"} <= set(paths)
    assert paths["/v1/reindex/latest"]["get"]["security"] == [{"bearer": []}]


def test_latest_job_needs_the_token_and_names_the_build(client: FlaskClient) -> None:
    assert client.get("/v1/reindex/latest").status_code == 401
    assert client.get("/v1/reindex/latest", headers={"Authorization": "Bearer wrong"}).status_code == 401
    body = client.get("/v1/reindex/latest", headers=AUTH).get_json()
    assert body["task"]["status"] == "succeeded" and body["task"]["id"] == body["task_id"]
    assert body["task"]["version"] == body["index_version"]


def test_latest_job_is_a_404_before_any_job(settings: Settings, encoder: Encoder, template: Template) -> None:
    engine = Engine(settings, encoder, template, IndexStore(settings.index_dir))
    app = create_app(settings.replace(admin_token=TOKEN), engine=engine, cache=InProcessCache())
    response = app.test_client().get("/v1/reindex/latest", headers=AUTH)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "task_not_found"


def test_audit_charts_are_listed_and_served_by_name_only(
    small_build: Settings, encoder: Encoder, template: Template
) -> None:
    settings = small_build.replace(admin_token=TOKEN)
    engine = Engine(settings, encoder, template, IndexStore(settings.index_dir))
    client = create_app(settings, engine=engine, cache=InProcessCache()).test_client()
    assert client.get("/v1/audit/charts", headers=AUTH).status_code == 404  # not audited yet
    run_audit(settings)
    assert client.get("/v1/audit/charts").status_code == 401
    listed = client.get("/v1/audit/charts", headers=AUTH).get_json()
    names = {chart["name"] for chart in listed["charts"]}
    assert {"map.png", "prices.png"} <= names and listed["version"] == engine.live().version
    response = client.get("/v1/audit/charts/map.png", headers=AUTH)
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.get_data()[:8] == b"\x89PNG\r\n\x1a\n"
    response.close()
    for bad in ("report.md", "..%2Fsummary.json", "summary.json", "nope.png"):
        assert client.get(f"/v1/audit/charts/{bad}", headers=AUTH).status_code == 404, bad
    for version in ("../audits", "nope"):
        assert client.get(f"/v1/audit/charts?version={version}", headers=AUTH).status_code == 404
    assert client.get("/v1/audit/charts?path=x", headers=AUTH).status_code == 400


# -- model tier: a real browser against a real gunicorn --------------------------------------------


def _chromium() -> Any:
    """playwright's sync API, or a skip (a failure under CI) that says what is missing."""
    reason = None
    try:
        from playwright import sync_api
    except ImportError:
        reason = "the playwright package is not installed (pip install -e '.[dev]')"
    if reason is None and not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run does it)"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run under CI: {reason}")
        pytest.skip(reason)
    return sync_api


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    base_settings: Settings,
    model_encoder: Encoder,
    template: Template,
    small_catalogue: Path,
) -> Iterator[str]:
    """gunicorn on a fresh data dir: the small catalogue plus a hostile product, built with the real
    model (through a recorded job) and audited. Yields the base URL."""
    _chromium()
    root = tmp_path_factory.mktemp("playground")
    catalogue = root / "catalogue.jsonl"
    hostile = {
        "id": "p-xss",
        "title": XSS_TITLE,
        "brand": XSS_BRAND,
        "category": ["Electronics", "Audio", "Headphones"],
        "price": 29.99,
        "in_stock": True,
        "attributes": {"colour": "<b>red</b>", "connectivity": "wireless"},
    }
    catalogue.write_text(small_catalogue.read_text(encoding="utf-8") + json.dumps(hostile) + "\n")
    settings = base_settings.replace(data_dir=root / "data")
    build_index(catalogue, settings=settings, encoder=model_encoder, template=template)
    run_audit(settings)
    port = free_port()
    env = {
        **os.environ,
        "RECSYS_DATA_DIR": str(settings.data_dir),
        "RECSYS_EMBEDDINGS_DIR": str(settings.resolved_embeddings_dir),
        "RECSYS_ADMIN_TOKEN": TOKEN,
        "RECSYS_QUERY_RUNTIME": "torch",
        "RECSYS_TORCH_THREADS": "1",
        "RECSYS_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "RECSYS_WEB_THREADS": "4",
    }
    for name in ("RECSYS_REDIS_URL", "RECSYS_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    with gunicorn(env, port, root / "gunicorn.log", ready_within=120):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser(served: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium with a fresh profile for the module; each test opens its own tab."""
    sync_api = _chromium()
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=BROWSER_ARGS,
            viewport={"width": 1280, "height": 800},
            base_url=served,
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


class Tab:
    """A page and what went wrong in it: script errors, dialogs (an alert would mean injected script)."""

    def __init__(self, context: Any) -> None:
        self.page = context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))

    def open(self, path: str = "/") -> Any:
        self.page.goto(path)
        self.page.wait_for_load_state("networkidle")
        return self.page

    def cards(self) -> Any:
        return self.page.locator("#result-list > li.card")

    def settle(self) -> None:
        """Wait for the search (and its facets) that the last action started to be shown."""
        self.page.locator('#results[aria-busy="false"]').wait_for(state="attached")

    def wait_for_results(self) -> None:
        self.settle()
        self.cards().first.wait_for()

    def close(self, allowed: tuple[str, ...] = ()) -> None:
        errors = [e for e in self.errors if not any(a in e for a in allowed)]
        self.page.close()
        assert errors == [] and self.dialogs == []


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    opened = Tab(browser)
    yield opened
    if not opened.page.is_closed():
        opened.close()


def query_of(page: Any) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def test_typing_a_query_shows_results_and_a_filter_narrows_them(tab: Tab) -> None:
    page = tab.open("/")
    assert page.locator("#summary").inner_text().startswith("Type a query")
    page.get_by_label("Search products").press_sequentially("wireless headphones", delay=40)
    tab.wait_for_results()  # no Enter: search as you type
    assert query_of(page)["q"] == ["wireless headphones"]
    titles = tab.cards().locator("h3").all_inner_texts()
    assert titles and any("Headphones" in t or "Earbuds" in t for t in titles[:3])

    brand = page.get_by_label("Brand", exact=True)
    choice = brand.locator("option").nth(1).get_attribute("value")
    assert choice
    brand.select_option(choice)
    page.wait_for_url(re.compile(r"brand="))
    tab.settle()
    brands = tab.cards().locator(".brand").all_inner_texts()
    assert brands and all(b == f"Brand: {choice}" for b in brands)
    first = tab.cards().first.locator("h3").inner_text()

    linked = Tab(tab.page.context)  # opening the link shows the same search
    again = linked.open(page.url)
    linked.wait_for_results()
    assert again.get_by_label("Search products").input_value() == "wireless headphones"
    assert again.get_by_label("Brand", exact=True).input_value() == choice
    assert linked.cards().first.locator("h3").inner_text() == first
    linked.close()


def test_the_intent_line_and_switching_intent_off(tab: Tab) -> None:
    page = tab.open("/?q=wireless+headphones+under+%2450")
    tab.wait_for_results()
    line = page.locator("#intent-line")
    assert "Showing results under $50" in line.inner_text()
    assert "searched: wireless headphones" in line.inner_text()
    prices = [float(p.strip("$").replace(",", "")) for p in tab.cards().locator(".price").all_inner_texts()]
    assert prices and max(prices) <= 50
    page.get_by_role("button", name="Search without intent").click()
    page.wait_for_url(re.compile(r"intent=off"))
    tab.settle()
    assert "Query understanding is off" in line.inner_text()
    assert not page.get_by_label("Understand the query").is_checked()


def test_a_misspelt_query_says_what_was_searched_instead(tab: Tab) -> None:
    page = tab.open("/?q=wireless+headfones")
    tab.wait_for_results()
    spelling = page.locator("#spelling").inner_text()
    assert "Showing results for wireless headphones" in spelling and "you typed headfones" in spelling
    titles = " ".join(tab.cards().locator("h3").all_inner_texts()).lower()
    assert "headphones" in titles


def test_similar_items_and_explain_open_per_result(tab: Tab) -> None:
    tab.open("/?q=leather+boots")
    tab.wait_for_results()
    card = tab.cards().first
    similar = card.get_by_role("button", name="Similar items")
    similar.click()
    assert similar.get_attribute("aria-expanded") == "true"
    items = card.locator(".similar li")
    items.first.wait_for()
    assert items.count() == 5
    card.get_by_role("button", name="Explain").click()
    table = card.locator("table.explain")
    table.wait_for()
    text = table.inner_text()
    for row in (
        "Cosine, full text",
        "Dense score",
        "Lexical (BM25, normalised)",
        "Fusion",
        "Filters applied",
    ):
        assert row in text
    score = card.locator(".score").inner_text().split()[1]
    assert f"= {score}" in text  # the fusion adds up to the score shown


def test_recommend_for_picked_products(tab: Tab) -> None:
    page = tab.open("/?q=running+shoes")
    tab.wait_for_results()
    for n in range(2):
        pick = tab.cards().nth(n).get_by_role("button", name=re.compile("^Pick"))
        pick.click()
        assert pick.get_attribute("aria-pressed") == "true"
    assert page.locator("#pick-list li").count() == 2
    page.get_by_role("button", name="Recommend for these").click()
    recommended = page.locator("#recommend-list li")
    recommended.first.wait_for()
    assert recommended.count() == 5


def test_a_hostile_title_renders_as_text(tab: Tab) -> None:
    page = tab.open("/?q=wireless+headphones+script+alert")
    tab.wait_for_results()
    hostile = tab.cards().filter(has_text="alert(1)")
    assert hostile.locator("h3").inner_text() == XSS_TITLE
    assert hostile.locator(".brand").inner_text() == f"Brand: {XSS_BRAND}"
    assert page.locator("#result-list script, #result-list img, #result-list b").count() == 0
    page.wait_for_timeout(300)
    assert tab.dialogs == []

    page = tab.open(f"/?q=wireless+headphones&brand={quote(XSS_BRAND)}")  # the brand as a filter, linked
    tab.wait_for_results()
    assert tab.cards().locator("h3").all_inner_texts() == [XSS_TITLE]
    options = page.get_by_label("Brand", exact=True).locator("option").all_inner_texts()
    assert f"{XSS_BRAND} (1)" in options
    assert page.locator("img:not(#charts img), b, #result-list script").count() == 0


def test_keyboard_only_search_and_labelled_controls(tab: Tab) -> None:
    page = tab.open("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to results"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("hoodie")
    page.keyboard.press("Enter")
    tab.wait_for_results()
    assert query_of(page)["q"] == ["hoodie"]
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select')]
              .filter((el) => !el.labels.length && !el.getAttribute('aria-label')).map((el) => el.id)"""
    )
    assert unlabelled == []
    actions = page.evaluate(
        "() => [...document.querySelectorAll('.card .row > *, #price-buckets > *, .pager > :not(span)')]"
        ".map((e) => e.tagName)"
    )
    assert actions and set(actions) == {"BUTTON"}  # actions are buttons, reachable and pressable by keyboard
    assert page.locator("#admin").is_hidden()  # no token: no admin panel


def test_index_panel_and_the_admin_token(tab: Tab) -> None:
    page = tab.open("/")
    info = page.locator("#index-info")
    info.get_by_text("Built").wait_for()
    version = get_json(page, "/v1/index")["version"]
    assert version in info.inner_text() and "minilm" in info.inner_text().lower()
    assert page.locator("#admin").is_hidden()

    page.get_by_label("Admin token").fill("wrong")
    page.get_by_label("Admin token").press("Enter")
    page.locator("#error").get_by_text("refused").wait_for()

    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_role("button", name="Use token").click()
    job = page.locator("#job")
    job.get_by_text("succeeded").wait_for()
    assert version in job.inner_text()
    audit = page.locator("#audit")
    audit.get_by_text("Findings").wait_for()
    charts = page.locator("#charts img")
    charts.first.wait_for()
    page.wait_for_function("[...document.querySelectorAll('#charts img')].every((i) => i.naturalWidth > 0)")
    assert {"map.png", "prices.png"} <= set(page.locator("#charts figcaption").all_inner_texts())
    assert page.evaluate("sessionStorage.getItem('recsys.adminToken')") == TOKEN
    assert page.evaluate("localStorage.length") == 0
    assert TOKEN not in page.content() and page.get_by_label("Admin token").input_value() == ""
    page.get_by_role("button", name="Forget token").click()
    page.locator("#admin").wait_for(state="hidden")
    assert page.evaluate("sessionStorage.getItem('recsys.adminToken')") is None
    tab.close(allowed=("401",))  # the refused token's request


def get_json(page: Any, path: str) -> dict[str, Any]:
    response = page.request.get(path)
    assert response.ok
    body: dict[str, Any] = response.json()
    return body


def test_screenshots_at_desktop_and_phone_width(tab: Tab, tmp_path: Path) -> None:
    page = tab.open("/?q=wireless+headphones+under+%2450")
    tab.wait_for_results()
    page.evaluate(f"sessionStorage.setItem('recsys.adminToken', {json.dumps(TOKEN)})")
    page.reload()
    tab.wait_for_results()
    page.locator("#charts img").first.wait_for()
    card = tab.cards().first
    card.get_by_role("button", name="Explain").click()
    card.get_by_role("button", name="Similar items").click()
    card.locator(".similar li").first.wait_for()
    shots = {
        "desktop-1280x800.png": page.screenshot(path=tmp_path / "desktop-1280x800.png"),
        "desktop-full.png": page.screenshot(path=tmp_path / "desktop-full.png", full_page=True),
    }
    phone = Tab(page.context)
    phone.page.set_viewport_size({"width": 390, "height": 844})
    phone.open("/?q=wireless+headphones+under+%2450")
    phone.wait_for_results()
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    assert not phone.page.locator("#filters").evaluate("el => el.open")  # results first on a phone
    shots["phone-390x844.png"] = phone.page.screenshot(path=tmp_path / "phone-390x844.png")
    shots["phone-full.png"] = phone.page.screenshot(path=tmp_path / "phone-full.png", full_page=True)
    phone.close()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, data in shots.items():
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        shutil.copyfile(tmp_path / name, SHOTS / name)
