// Form posts carry the session token in the action URL (the id_token of the launch query); when
// App Bridge is loaded, swap in a fresh one first (session tokens live one minute).
(function () {
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
    if (!window.shopify || typeof window.shopify.idToken !== "function" || form.dataset.fresh === "1") return;
    event.preventDefault();
    window.shopify.idToken().then(function (token) {
      var url = new URL(form.action, window.location.href);
      url.searchParams.set("id_token", token);
      form.action = url.toString();
      form.dataset.fresh = "1";
      form.submit();
    }, function () { form.dataset.fresh = "1"; form.submit(); });
  });
})();
