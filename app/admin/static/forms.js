// The settings page: after a save that was refused (or needs confirming), focus goes to the summary
// above the form, so that a screen reader reads the problems and the keyboard starts there
// (`autofocus` does the same without JavaScript, where the browser allows it in a frame).
(function () {
  var summary = document.getElementById("settings-errors") || document.getElementById("settings-confirm");
  if (summary) summary.focus();
})();
