// Import progress (and a removal of what the app wrote to Shopify) while you watch: poll the status
// JSON with the session token (App Bridge's when loaded, else the launch query's) and update the
// panel in place. Every 3 s while something runs (an import, a sync, a removal) and the answer
// moves; when nothing moves the wait doubles up to a minute, and no request goes while the page is
// hidden. A change (or the page shown again) polls at once and goes back to 3 s.
(function () {
  var panel = document.getElementById("import-status");
  if (!panel || !window.fetch) return;
  var FAST = 3000, SLOW = 60000;
  var words = {none: "never imported", queued: "waiting to start", running: "Shopify is exporting the orders",
    downloading: "downloading", ingesting: "loading the orders", done: "done", failed: "failed"};
  var delay = FAST, timer = null, last = null;
  function token() {
    if (window.shopify && typeof window.shopify.idToken === "function") return window.shopify.idToken();
    return Promise.resolve(new URLSearchParams(window.location.search).get("id_token") || "");
  }
  function text(id, value) { var el = document.getElementById(id); if (el) el.textContent = value; }
  function show(data) {
    var p = data["import"];
    panel.dataset.state = p.state;
    var retry = p.retry;
    text("import-state", retry && p.state === "queued" ? "not started: " + retry.words.charAt(0).toLowerCase() + retry.words.slice(1) : (words[p.state] || p.state));
    document.getElementById("import-retry").hidden = !retry;
    if (retry) {
      text("import-retry-words", retry.words);
      text("import-retry-attempts", String(retry.attempts));
      text("import-retry-next", retry.next_try_local);
    }
    text("import-orders", Number(p.orders_done).toLocaleString("en-US"));
    var error = document.getElementById("import-error");
    if (p.error) { error.hidden = false; error.textContent = (p.state === "failed" ? "Why it failed: " : "") + p.error; } else { error.hidden = true; }
    var bar = document.getElementById("import-progress");
    if (bar && p.percent !== null) { bar.value = p.percent; text("import-percent", p.percent + "%"); }
    panel.dataset.underWay = p.under_way ? "1" : "0";
    document.getElementById("reimport-busy").hidden = !p.under_way;
    document.getElementById("reimport-form").hidden = !!p.under_way;
    if (data.last_webhook_at) document.getElementById("last-webhook").dataset.iso = data.last_webhook_at;
    if (data.sync && data.sync.customers_pending !== null) text("sync-pending", Number(data.sync.customers_pending).toLocaleString("en-US"));
    var c = data.cleanup, cleanupBar = document.getElementById("cleanup-progress");
    if (c && cleanupBar) {
      var states = {queued: "waiting to start", running: "removing", done: "done", failed: "stopped"};
      text("cleanup-state", states[c.state] || c.state);
      cleanupBar.value = c.percent;
      text("cleanup-percent", c.percent + "%");
      var removed = {customers: c.removed.customers_with_app_tags, metafields: c.removed.metafield_values, segments: c.removed.segments};
      Object.keys(removed).forEach(function (k) { text("cleanup-removed-" + k, Number(removed[k]).toLocaleString("en-US")); });
    }
  }
  function running(data) {
    var c = data.cleanup;
    return data["import"].under_way || (data.sync && data.sync.running) || (c && (c.state === "queued" || c.state === "running"));
  }
  function schedule(ms) { window.clearTimeout(timer); timer = window.setTimeout(poll, ms); panel.dataset.nextPollMs = String(ms); }
  function poll() {
    if (document.hidden) return;  // visibilitychange polls again when the page is shown
    token().then(function (t) {
      return fetch(panel.dataset.poll, {headers: {"Authorization": "Bearer " + t, "Accept": "application/json"}});
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        var seen = JSON.stringify(data);
        delay = (seen !== last && last !== null) || (running(data) && seen !== last) ? FAST : Math.min(delay * 2, SLOW);
        if (running(data) && delay > 4 * FAST) delay = 4 * FAST;  // something runs: never more than 12 s
        last = seen;
        show(data);
        panel.dataset.polled = String(Number(panel.dataset.polled || 0) + 1);
      })
      .catch(function () {})
      .then(function () { schedule(delay); });
  }
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { delay = FAST; schedule(0); } });
  schedule(FAST);
})();
