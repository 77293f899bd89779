// The playground's script: search as you type, facets, similar items, explain, recommendations and the
// index panel, all through the public API (the admin API only with a token typed into the page).
// Every value from the catalogue is put in the page as text (textContent, text nodes), never as HTML.
"use strict";

(() => {
  const DEBOUNCE_MS = 250;
  const TOKEN_KEY = "recsys.adminToken"; // sessionStorage: this tab only, gone when it closes
  const FILTERS = ["category", "brand", "price_min", "price_max", "in_stock"];
  const $ = (id) => document.getElementById(id);
  const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
  const dollars = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 0 });

  // -- small helpers ------------------------------------------------------------------------------

  /** An element with attributes and children; strings become text nodes, never markup. */
  function h(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const clear = (node) => node.replaceChildren();
  const price = (value) => (typeof value === "number" ? money.format(value) : "no price");
  const round = (value, digits = 4) => (typeof value === "number" ? value.toFixed(digits) : "n/a");
  const textOf = (value) => (Array.isArray(value) ? value.join(", ") : String(value));

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, { method = "GET", body, admin = false, signal } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (admin) headers.Authorization = `Bearer ${token()}`;
    const init = { method, headers, signal, credentials: "same-origin" };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(path, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = (data.error && data.error.message) || response.statusText || "request failed";
      throw new ApiError(response.status, message);
    }
    return data;
  }

  function showError(error) {
    const box = $("error");
    if (!error || error.name === "AbortError") {
      box.hidden = true;
      clear(box);
      return;
    }
    box.textContent = error.message;
    box.hidden = false;
  }

  // -- state, kept in the URL ----------------------------------------------------------------------

  let state = fromURL();

  function fromURL() {
    const params = new URLSearchParams(window.location.search);
    const filters = {};
    const attr = {};
    for (const [key, value] of params) {
      if (FILTERS.includes(key) && value !== "") filters[key] = value;
      else if (key.startsWith("attr.") && key.length > 5 && value !== "") attr[key.slice(5)] = value;
    }
    const k = Number.parseInt(params.get("k") || "10", 10);
    const offset = Number.parseInt(params.get("offset") || "0", 10);
    return {
      q: params.get("q") || "",
      intent: params.get("intent") === "off" ? "off" : "on",
      k: [10, 20, 50].includes(k) ? k : 10,
      offset: Number.isFinite(offset) && offset > 0 ? offset : 0,
      filters,
      attr,
    };
  }

  /** The query string of ``state``: what the URL shows and what the API is asked. */
  function params({ paging = true } = {}) {
    const out = new URLSearchParams();
    if (state.q.trim()) out.set("q", state.q.trim());
    for (const key of FILTERS) if (state.filters[key] !== undefined) out.set(key, state.filters[key]);
    for (const [name, value] of Object.entries(state.attr)) out.set(`attr.${name}`, value);
    if (state.intent === "off") out.set("intent", "off");
    if (paging) {
      if (state.k !== 10) out.set("k", String(state.k));
      if (state.offset) out.set("offset", String(state.offset));
    }
    return out;
  }

  function saveURL(push) {
    const query = params().toString();
    const url = `${window.location.pathname}${query ? `?${query}` : ""}`;
    if (url === `${window.location.pathname}${window.location.search}`) return;
    if (push) window.history.pushState(null, "", url);
    else window.history.replaceState(null, "", url);
  }

  function syncControls() {
    $("q").value = state.q;
    $("intent").checked = state.intent === "on";
    $("k").value = String(state.k);
    $("f-price-min").value = state.filters.price_min || "";
    $("f-price-max").value = state.filters.price_max || "";
  }

  // -- search ---------------------------------------------------------------------------------------

  let running = null;
  let typing = null;

  async function run() {
    if (running) running.abort();
    const controller = new AbortController();
    running = controller;
    const signal = controller.signal;
    const results = $("results");
    results.setAttribute("aria-busy", "true");
    showError(null);
    try {
      await search(signal);
    } finally {
      if (running === controller) results.setAttribute("aria-busy", "false");
    }
  }

  /** The search and its facets; what a stale run finds is dropped. */
  async function search(signal) {
    const facetsQuery = params({ paging: false });
    const facets = api(`/v1/facets?${facetsQuery}`, { signal })
      .then((answer) => signal.aborted || renderFacets(answer))
      .catch((error) => error.name !== "AbortError" && showError(error));
    if (!state.q.trim()) {
      clear($("result-list"));
      $("intent-line").hidden = true;
      $("summary").textContent = "Type a query to search the catalogue.";
      $("page-info").textContent = "";
      $("prev").disabled = $("next").disabled = true;
      await facets;
      return;
    }
    $("summary").textContent = "Searching…";
    try {
      const query = params();
      query.set("k", String(state.k));
      query.set("explain", "true");
      const page = await api(`/v1/search?${query}`, { signal });
      if (signal.aborted) return;
      renderIntent(page.intent);
      renderResults(page);
    } catch (error) {
      if (error.name === "AbortError") return;
      clear($("result-list"));
      $("summary").textContent = "No results.";
      showError(error);
    }
    await facets;
  }

  function schedule() {
    window.clearTimeout(typing);
    typing = window.setTimeout(() => {
      state.q = $("q").value;
      state.offset = 0;
      saveURL(false);
      run();
    }, DEBOUNCE_MS);
  }

  function change(mutate) {
    window.clearTimeout(typing);
    state.q = $("q").value;
    mutate();
    state.offset = 0;
    saveURL(true);
    syncControls();
    run();
  }

  function intentSentence(intent) {
    const money0 = (v) => `$${Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 })}`;
    if (intent.price_min !== undefined && intent.price_max !== undefined) {
      return `Showing results between ${money0(intent.price_min)} and ${money0(intent.price_max)}`;
    }
    if (intent.price_max !== undefined) return `Showing results under ${money0(intent.price_max)}`;
    if (intent.price_min !== undefined) return `Showing results over ${money0(intent.price_min)}`;
    if (intent.price_band) {
      return `Showing ${intent.price_band === "low" ? "budget" : "premium"} ${intent.text || "products"}`;
    }
    return `Showing results for “${intent.text || state.q.trim()}”`;
  }

  function renderIntent(intent) {
    const line = $("intent-line");
    clear(line);
    line.hidden = false;
    if (state.intent === "off" || !intent) {
      line.append(
        h("p", { text: "Query understanding is off: the query is searched as typed." }),
        h("button", { type: "button", class: "quiet", onclick: () => change(() => (state.intent = "on")) },
          "Understand the query"),
      );
      return;
    }
    const chips = h("ul", { class: "chips", "aria-label": "What the query was understood to ask" });
    chips.append(h("li", { class: "chip" }, `searched: ${intent.text || "(nothing)"}`));
    if (intent.price_band) {
      const band = intent.price_band === "low" ? "budget: cheapest third of its category"
        : "premium: dearest third of its category";
      chips.append(h("li", { class: "chip" }, band));
    }
    for (const name of ["colour", "brand", "gender", "size", "material", "category"]) {
      if (intent[name]) chips.append(h("li", { class: "chip" }, `${name}: ${intent[name]}`));
    }
    const typed = Object.keys(intent.corrections || {});
    if (typed.length) {
      line.append(h("p", { id: "spelling" }, "Showing results for ", h("strong", { text: intent.text }),
        ` (you typed ${typed.join(", ")})`));
    }
    line.append(h("p", { id: "intent-sentence" }, h("strong", { text: intentSentence(intent) })), chips);
    if (intent.note) line.append(h("p", { class: "muted" }, `Note: ${intent.note}`));
    line.append(
      h("button", { type: "button", class: "quiet", onclick: () => change(() => (state.intent = "off")) },
        "Search without intent"),
    );
  }

  function renderResults(page) {
    const list = $("result-list");
    clear(list);
    const first = page.offset + 1;
    const last = page.offset + page.count;
    $("summary").textContent = page.count
      ? `Results ${first}–${last} (${page.took_ms} ms${page.cached ? ", cached" : ""})`
      : "No products match.";
    $("page-info").textContent = page.count ? `Page ${Math.floor(page.offset / page.k) + 1}` : "";
    $("prev").disabled = page.offset === 0;
    $("next").disabled = page.count < page.k;
    page.results.forEach((product, i) => list.append(card(product, page.offset + i)));
  }

  function card(product, position) {
    const titleId = `title-${position}`;
    const similar = h("div", { class: "panel similar", hidden: true, id: `similar-${position}` });
    const explain = h("div", { class: "panel explain", hidden: true, id: `explain-${position}` });
    const attributes = Object.entries(product.attributes || {}).map(([name, value]) =>
      h("li", {}, `${name}: ${textOf(value)}`));
    const stock = product.in_stock === true ? ["in stock", "stock-in"]
      : product.in_stock === false ? ["out of stock", "stock-out"] : null;
    const pick = h("button", {
      type: "button", class: "quiet", "aria-pressed": String(picks.has(product.id)),
      "aria-label": `Pick ${product.title}`,
    }, "Pick");
    pick.addEventListener("click", () => togglePick(product, pick));
    const similarButton = h("button", {
      type: "button", class: "quiet", "aria-expanded": "false", "aria-controls": similar.id,
    }, "Similar items");
    similarButton.addEventListener("click", () => toggleSimilar(product, similarButton, similar));
    const explainButton = h("button", {
      type: "button", class: "quiet", "aria-expanded": "false", "aria-controls": explain.id,
    }, "Explain");
    explainButton.addEventListener("click", () => {
      const open = explain.hidden;
      if (open && !explain.childNodes.length) explain.append(explainTable(product.explain));
      explain.hidden = !open;
      explainButton.setAttribute("aria-expanded", String(open));
    });
    return h("li", { class: "card", "data-id": product.id },
      h("article", { "aria-labelledby": titleId },
        h("h3", { id: titleId, class: "title" }, product.title || product.id),
        h("p", { class: "brand" }, product.brand ? `Brand: ${product.brand}` : "No brand"),
        h("p", { class: "category" }, (product.category || []).join(" › ") || "Uncategorised"),
        h("p", {},
          h("span", { class: "price" }, price(product.price)),
          stock ? h("span", { class: stock[1] }, ` · ${stock[0]}`) : null),
        attributes.length ? h("ul", { class: "attrs", "aria-label": "Attributes" }, attributes) : null,
        h("p", { class: "score" }, `score ${round(product.score)} · id ${product.id}`),
        h("div", { class: "row" }, similarButton, explainButton, pick),
        similar,
        explain));
  }

  async function toggleSimilar(product, button, panel) {
    const open = panel.hidden;
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (!open || panel.childNodes.length) return;
    panel.append(h("p", { class: "muted" }, "Loading similar items…"));
    try {
      const page = await api(`/v1/products/${encodeURIComponent(product.id)}/similar?k=5`);
      clear(panel);
      panel.append(h("h4", {}, "Similar items"), miniList(page.results, "No similar items."));
    } catch (error) {
      clear(panel);
      panel.append(h("p", { class: "error" }, error.message));
    }
  }

  function miniList(results, empty) {
    if (!results.length) return h("p", { class: "muted" }, empty);
    return h("ol", { class: "mini" }, results.map((item) =>
      h("li", {}, h("span", { class: "mini-title" }, item.title || item.id),
        ` · ${price(item.price)} · ${round(item.score, 3)}`)));
  }

  function explainTable(explain) {
    if (!explain) return h("p", { class: "muted" }, "No explanation in this answer.");
    const rows = [
      ["Cosine, full text", round(explain.cosine_full)],
      ["Cosine, attributes and title", round(explain.cosine_short)],
      ["Dense score", round(explain.dense)],
      ["Lexical (BM25, normalised)", explain.lexical === null ? "no query word is in the index" : round(explain.lexical)],
      ["Intent (soft constraints met)", explain.intent === null ? "none asked" : round(explain.intent)],
      ["Fusion", `${round(explain.dense_part)} dense + ${round(explain.lexical_part)} lexical + ` +
        `${round(explain.intent_part)} intent = ${round(explain.score)}`],
    ];
    const applied = Object.entries(explain.filters || {});
    rows.push(["Filters applied", applied.length ? applied.map(([k, v]) => `${k}=${v}`).join(", ") : "none"]);
    return h("table", { class: "explain" },
      h("caption", { class: "visually-hidden" }, "Why this result scored what it did"),
      h("tbody", {}, rows.map(([name, value]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, value)))));
  }

  // -- facets: the filter menus ---------------------------------------------------------------------

  function options(select, label, entries, current) {
    clear(select);
    select.append(h("option", { value: "" }, label));
    let found = false;
    for (const [value, text] of entries) {
      const selected = current !== undefined && value.toLowerCase() === String(current).toLowerCase();
      found = found || selected;
      select.append(h("option", { value, selected }, text));
    }
    if (current !== undefined && !found) select.append(h("option", { value: current, selected: true }, current));
    select.value = current === undefined ? "" : (found ? select.value : current);
  }

  function renderFacets(answer) {
    const facets = answer.facets;
    const where = answer.matching === "pool" ? "in this search's candidate pool" : "in the catalogue";
    $("facet-total").textContent = `${facets.total} products ${where}`;
    options($("f-category"), "All categories",
      facets.category.map((c) => [c.path.join(" > "), `${"\u00a0\u00a0".repeat(c.depth)}${c.value} (${c.count})`]),
      state.filters.category);
    options($("f-brand"), "All brands",
      facets.brand.values.map((b) => [b.value, `${b.value} (${b.count})`]), state.filters.brand);
    const stock = facets.in_stock;
    options($("f-stock"), "In stock or not",
      [["true", `In stock (${stock.true})`], ["false", `Out of stock (${stock.false})`]], state.filters.in_stock);

    const chips = $("price-buckets");
    clear(chips);
    for (const bucket of facets.price.buckets) {
      const label = bucket.max === null ? `${dollars.format(bucket.min)} and over`
        : bucket.min === 0 ? `Under ${dollars.format(bucket.max)}`
          : `${dollars.format(bucket.min)}–${dollars.format(bucket.max)}`;
      const low = bucket.min > 0 ? String(bucket.min) : "";
      const high = bucket.max === null ? "" : String(bucket.max);
      const chosen = (state.filters.price_min ?? "") === low && (state.filters.price_max ?? "") === high;
      chips.append(h("button", {
        type: "button", "aria-pressed": String(chosen), onclick: () => change(() => {
          if (chosen) { delete state.filters.price_min; delete state.filters.price_max; return; }
          if (low) state.filters.price_min = low; else delete state.filters.price_min;
          if (high) state.filters.price_max = high; else delete state.filters.price_max;
        }),
      }, `${label} (${bucket.count})`));
    }

    const box = $("attr-filters");
    clear(box);
    const shown = new Map(facets.attributes.map((a) => [a.name, a]));
    for (const name of Object.keys(state.attr)) if (!shown.has(name)) shown.set(name, { name, values: [] });
    for (const facet of shown.values()) {
      const id = `f-attr-${facet.name.replace(/[^a-z0-9_-]/gi, "_")}`;
      const select = h("select", { id, "data-attr": facet.name });
      options(select, `Any ${facet.name}`, facet.values.map((v) => [v.value, `${v.value} (${v.count})`]),
        state.attr[facet.name]);
      select.addEventListener("change", () => change(() => {
        if (select.value) state.attr[facet.name] = select.value; else delete state.attr[facet.name];
      }));
      box.append(h("label", { for: id }, facet.name.replace(/_/g, " ")), select);
    }
  }

  function bindFilter(id, key) {
    $(id).addEventListener("change", (event) => change(() => {
      if (event.target.value) state.filters[key] = event.target.value; else delete state.filters[key];
    }));
  }

  // -- picks and recommendations --------------------------------------------------------------------

  const picks = new Map();

  function togglePick(product, button) {
    if (picks.has(product.id)) picks.delete(product.id);
    else picks.set(product.id, product.title || product.id);
    button.setAttribute("aria-pressed", String(picks.has(product.id)));
    renderPicks();
  }

  function renderPicks() {
    const list = $("pick-list");
    clear(list);
    for (const [id, title] of picks) {
      list.append(h("li", {}, h("span", {}, title), h("button", {
        type: "button", class: "quiet", "aria-label": `Remove ${title}`,
        onclick: () => { picks.delete(id); renderPicks(); syncPickButtons(); },
      }, "Remove")));
    }
    $("picks-empty").hidden = picks.size > 0;
    $("recommend").disabled = $("clear-picks").disabled = picks.size === 0;
  }

  function syncPickButtons() {
    for (const button of document.querySelectorAll("#result-list button[aria-pressed]")) {
      button.setAttribute("aria-pressed", String(picks.has(button.closest(".card").dataset.id)));
    }
  }

  async function recommend() {
    const list = $("recommend-list");
    clear(list);
    try {
      const page = await api("/v1/recommend", { method: "POST", body: { positive: [...picks.keys()], k: 5 } });
      list.append(h("h3", {}, "Recommended"), miniList(page.results, "No recommendations."));
    } catch (error) {
      list.append(h("p", { class: "error" }, error.message));
    }
  }

  // -- the index panel ------------------------------------------------------------------------------

  function facts(list, rows) {
    clear(list);
    for (const [name, value] of rows) list.append(h("dt", {}, name), h("dd", {}, value));
  }

  async function loadIndex() {
    try {
      const info = await api("/v1/index");
      const counts = Object.entries(info.counts || {}).map(([k, v]) => `${k} ${v}`).join(", ");
      $("version-badge").textContent = `index ${info.version}`;
      facts($("index-info"), [
        ["Version", info.version],
        ["Model", info.model.name || info.model.identity || "?"],
        ["Template", `${info.template.name || "?"} (${String(info.template.hash || "").slice(0, 12)})`],
        ["Counts", counts],
        ["Built", info.built_at],
        ["Delta", `${info.delta.size} products (sequence ${info.delta.sequence})`],
        ["Cache", info.cache],
        ["Queries on", info.query_runtime + (info.query_runtime_fallback ? ` (fallback: ${info.query_runtime_fallback})` : "")],
      ]);
    } catch (error) {
      facts($("index-info"), [["Index", error.message]]);
    }
  }

  const token = () => window.sessionStorage.getItem(TOKEN_KEY) || "";
  let polling = null;

  async function loadAdmin() {
    window.clearTimeout(polling);
    const panel = $("admin");
    $("forget-token").hidden = !token();
    if (!token()) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    try {
      const job = await api("/v1/reindex/latest", { admin: true });
      renderJob(job.task_id, job.task);
      if (!["succeeded", "failed", "cancelled"].includes(job.task.status)) {
        polling = window.setTimeout(loadAdmin, 2000);
      }
    } catch (error) {
      if (refused(error)) return;
      facts($("job"), [["Job", error.status === 404 ? "no job has been recorded yet" : error.message]]);
    }
    await loadAudit();
  }

  function refused(error) {
    if (error.status !== 401 && error.status !== 403) return false;
    const panel = $("admin");
    clear($("job"));
    clear($("audit"));
    clear($("charts"));
    if (error.status === 401) window.sessionStorage.removeItem(TOKEN_KEY);
    $("forget-token").hidden = !token();
    panel.hidden = true;
    showError(new Error(error.status === 401 ? "The admin token was refused." : error.message));
    return true;
  }

  function renderJob(id, task) {
    const box = $("job");
    clear(box);
    const total = Number(task.shards_total) || 0;
    const done = Number(task.shards_done) || 0;
    const list = h("dl", { class: "facts" });
    facts(list, [
      ["Job", `${task.kind || "reindex"} ${id.slice(0, 12)}`],
      ["Status", `${task.status} (${task.phase})`],
      ["Shards", `${done} of ${total}`],
      ["Embedded", `${task.embedded} texts for ${task.products} products`],
      ["Published", task.version || "not yet"],
      ["Updated", new Date(Number(task.updated_at) * 1000).toLocaleString()],
    ]);
    if (task.error) list.append(h("dt", {}, "Error"), h("dd", { class: "error" }, task.error));
    box.append(h("progress", { max: total || 1, value: total ? done : 0, "aria-label": "Shards embedded" }), list);
  }

  async function loadAudit() {
    const box = $("audit");
    const charts = $("charts");
    clear(box);
    clear(charts);
    try {
      const audit = await api("/v1/audit", { admin: true });
      const counts = Object.entries(audit.counts).map(([k, v]) => `${k} ${v}`).join(", ");
      const list = h("dl", { class: "facts" });
      facts(list, [
        ["Version", audit.version],
        ["Audited", audit.created_at],
        ["Products", String(audit.products)],
        ["Findings", counts || "none"],
        ["Clusters", String(audit.clusters)],
        ["Took", `${round(audit.seconds.total, 1)} s`],
      ]);
      box.append(list);
      const listed = await api(`/v1/audit/charts?version=${encodeURIComponent(audit.version)}`, { admin: true });
      for (const chart of listed.charts) charts.append(await chartFigure(audit.version, chart.name));
    } catch (error) {
      if (refused(error)) return;
      box.append(h("p", { class: "muted" }, error.status === 404 ? "No audit is stored for the served version."
        : error.message));
    }
  }

  async function chartFigure(version, name) {
    const path = `/v1/audit/charts/${encodeURIComponent(name)}?version=${encodeURIComponent(version)}`;
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
    if (!response.ok) return h("p", { class: "error" }, `${name}: ${response.status}`);
    const url = URL.createObjectURL(await response.blob());
    return h("figure", {}, h("img", { src: url, alt: `Audit chart ${name}` }), h("figcaption", {}, name));
  }

  // -- wiring ---------------------------------------------------------------------------------------

  function start() {
    if (window.matchMedia("(max-width: 899px)").matches) $("filters").open = false; // results first on a phone
    $("attr-details").open = Object.keys(state.attr).length > 0;
    syncControls();
    $("q").addEventListener("input", schedule);
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      window.clearTimeout(typing);
      state.q = $("q").value;
      state.offset = 0;
      saveURL(true);
      run();
    });
    $("intent").addEventListener("change", () => change(() => (state.intent = $("intent").checked ? "on" : "off")));
    $("k").addEventListener("change", () => change(() => (state.k = Number($("k").value))));
    bindFilter("f-category", "category");
    bindFilter("f-brand", "brand");
    bindFilter("f-stock", "in_stock");
    $("filter-form").addEventListener("submit", (event) => {
      event.preventDefault();
      change(() => {
        for (const [id, key] of [["f-price-min", "price_min"], ["f-price-max", "price_max"]]) {
          const value = $(id).value.trim();
          if (value) state.filters[key] = value; else delete state.filters[key];
        }
      });
    });
    $("clear-filters").addEventListener("click", () => change(() => { state.filters = {}; state.attr = {}; }));
    $("prev").addEventListener("click", () => {
      state.offset = Math.max(0, state.offset - state.k);
      saveURL(true);
      run();
    });
    $("next").addEventListener("click", () => {
      state.offset += state.k;
      saveURL(true);
      run();
    });
    $("recommend").addEventListener("click", recommend);
    $("clear-picks").addEventListener("click", () => { picks.clear(); renderPicks(); syncPickButtons(); });
    $("refresh-index").addEventListener("click", () => { loadIndex(); loadAdmin(); });
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const typed = $("token").value.trim();
      $("token").value = "";
      if (typed) window.sessionStorage.setItem(TOKEN_KEY, typed);
      showError(null);
      loadAdmin();
    });
    $("forget-token").addEventListener("click", () => {
      window.sessionStorage.removeItem(TOKEN_KEY);
      loadAdmin();
    });
    window.addEventListener("popstate", () => {
      state = fromURL();
      syncControls();
      run();
    });
    renderPicks();
    loadIndex();
    loadAdmin();
    run();
  }

  start();
})();
