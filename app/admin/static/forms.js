// The settings and status pages. Settings: after a save that was refused (or needs confirming), focus goes to the
// summary above the form, so that a screen reader reads the problems and the keyboard starts
// there (`autofocus` does the same without JavaScript, where the browser allows it in a frame).
// Once Polaris has defined its form components, the plain controls beside them (shown until then,
// forms.css) stop submitting, so each field is sent once.
(function () {
  var summary = document.getElementById("settings-errors") || document.getElementById("settings-confirm");
  if (summary) summary.focus();
  if (!window.customElements) return;
  ["s-text-field", "s-select", "s-checkbox", "s-button"].forEach(function (tag) {
    window.customElements.whenDefined(tag).then(function () {
      var plain = document.querySelectorAll("[data-fallback-for='" + tag + "']");
      for (var i = 0; i < plain.length; i++) {
        var controls = plain[i].matches("input, select, button") ? [plain[i]] : plain[i].querySelectorAll("input, select, button");
        for (var j = 0; j < controls.length; j++) controls[j].disabled = true;
      }
    });
  });
})();
