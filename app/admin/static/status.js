// Import progress (and a removal of what the app wrote to Shopify) while you watch: poll the status JSON every few seconds with the session token
// (App Bridge's when loaded, else the launch query's), and update the panel in place.
(function () {
  var panel = document.getElementById("import-status");
  if (!panel || !window.fetch) return;
  var words = {none: "never imported", queued: "waiting to start", running: "Shopify is exporting the orders",
    downloading: "downloading", ingesting: "loading the orders", done: "done", failed: "failed"};
  function token() {
    if (window.shopify && typeof window.shopify.idToken === "function") return window.shopify.idToken();
    return Promise.resolve(new URLSearchParams(window.location.search).get("id_token") || "");
  }
  function show(data) {
    var p = data["import"];
    panel.dataset.state = p.state;
    document.getElementById("import-state").textContent = words[p.state] || p.state;
    document.getElementById("import-orders").textContent = Number(p.orders_done).toLocaleString("en-US");
    var error = document.getElementById("import-error");
    if (p.error) { error.hidden = false; error.textContent = "Why it failed: " + p.error; } else { error.hidden = true; }
    var bar = document.getElementById("import-progress");
    if (bar && p.percent !== null) { bar.value = p.percent; document.getElementById("import-percent").textContent = p.percent + "%"; }
    if (data.last_webhook_at) document.getElementById("last-webhook").dataset.iso = data.last_webhook_at;
    var c = data.cleanup, cleanupBar = document.getElementById("cleanup-progress");
    if (c && cleanupBar) {
      var states = {queued: "waiting to start", running: "removing", done: "done", failed: "stopped"};
      document.getElementById("cleanup-state").textContent = states[c.state] || c.state;
      cleanupBar.value = c.percent;
      document.getElementById("cleanup-percent").textContent = c.percent + "%";
      var removed = {customers: c.removed.customers_with_app_tags, metafields: c.removed.metafield_values, segments: c.removed.segments};
      Object.keys(removed).forEach(function (k) {
        document.getElementById("cleanup-removed-" + k).textContent = Number(removed[k]).toLocaleString("en-US");
      });
    }
  }
  function poll() {
    token().then(function (t) {
      return fetch(panel.dataset.poll, {headers: {"Authorization": "Bearer " + t, "Accept": "application/json"}});
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { show(data); panel.dataset.polled = String(Number(panel.dataset.polled || 0) + 1); } })
      .catch(function () {})
      .then(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 3000);
})();
