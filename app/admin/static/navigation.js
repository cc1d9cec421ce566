// Moving between the app's pages with a fresh session token, so that no click goes through the
// bounce page.
//
// A session token lives one minute and is to be fetched from App Bridge for each request
// (https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens). The pages are
// rendered on the server, so their links and the customer filter carry the launch query's
// `id_token`, stale a minute after the page loaded; a document request with a stale token is sent
// to the bounce page, which loads App Bridge only to reload with a fresh one (docs/security.md,
// "Session tokens"). So when App Bridge is loaded, a click on an in-app link, a GET form's submit
// and a click in the admin's app nav (App Bridge's `shopify:navigate` event, which Shopify's app
// template handles the same way) first ask App Bridge for a fresh token with `shopify.idToken()`
// (https://shopify.dev/docs/api/app-home/apis/authentication-and-data/id-token-api) and then
// navigate with it. Without JavaScript or App Bridge the links work as written, and the bounce
// page stays the way in for the first load and for those. Form posts get theirs in admin.js.
(function () {
  var TOKEN = "id_token";

  function appBridge() {
    return !!(window.shopify && typeof window.shopify.idToken === "function");
  }

  function inApp(url) {
    return url.origin === window.location.origin &&
      (url.searchParams.has(TOKEN) || url.pathname === "/" || /^\/app(\/|$|\.)/.test(url.pathname));
  }

  function withFreshToken(url) {
    return window.shopify.idToken().then(function (token) {
      if (token) url.searchParams.set(TOKEN, token);
      return url;
    }, function () { return url; });  // no token: as written (the bounce page gets one)
  }

  function go(url) {
    withFreshToken(url).then(function (u) { window.location.assign(u.toString()); });
  }

  function linkOf(event) {
    var path = event.composedPath ? event.composedPath() : [event.target];
    for (var i = 0; i < path.length; i++) {
      var el = path[i];
      if (el && el.nodeType === 1 && el.hasAttribute("href")) return el;
    }
    return null;
  }

  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
        event.shiftKey || event.altKey) return;
    var link = linkOf(event);
    if (!link) return;
    if (link.dataset.freshToken === "1") { delete link.dataset.freshToken; return; }  // our own re-click
    var target = link.getAttribute("target");
    if (target && target !== "_self") return;
    var url = new URL(link.getAttribute("href"), window.location.href);
    if (!inApp(url) || !appBridge()) return;
    event.preventDefault();
    withFreshToken(url).then(function (u) {
      if (link.tagName === "A") {
        // the anchor itself, so that a download (the CSV export) stays a download
        link.setAttribute("href", u.toString());
        link.dataset.freshToken = "1";
        link.click();
      } else {
        window.location.assign(u.toString());
      }
    });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "get") return;
    var url = new URL(form.action, window.location.href);
    if (!inApp(url) || !appBridge()) return;
    event.preventDefault();
    // a GET form's query is its fields, as the browser would send them
    var data;
    try { data = new FormData(form, event.submitter || null); } catch (e) { data = new FormData(form); }
    url.search = new URLSearchParams(data).toString();
    go(url);
  });

  document.addEventListener("shopify:navigate", function (event) {
    var el = event.target;
    var href = el && el.getAttribute ? el.getAttribute("href") : null;
    if (!href || !appBridge()) return;
    var url = new URL(href, window.location.href);
    if (!inApp(url)) return;
    event.preventDefault();
    go(url);
  });
})();
