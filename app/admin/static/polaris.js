// Tables, buttons and form fields as Polaris web components, once Polaris has defined them.
//
// The pages are written in plain HTML (a <table> with scoped headers, <button>, <input>, <select>),
// which works and reads the same without any of Shopify's scripts (docs/design.md, "Tables,
// buttons and fields"). In the admin, Polaris' script defines its elements; when a family of them
// is defined (`customElements.whenDefined`), each plain element is replaced by the Polaris one
// carrying the same content and attributes:
// - table.data -> s-table (s-table-header-row / s-table-header, s-table-body / s-table-row /
//   s-table-cell), the first column the list variant's primary content, the others labelled
//   (https://shopify.dev/docs/api/app-home/polaris-web-components/structure/table);
// - button.button and a.button -> s-button with its type, or href and download
//   (https://shopify.dev/docs/api/app-home/web-components/actions/button ; a submit button stays
//   inside its native form: https://shopify.dev/docs/apps/build/app-home/migrate-from-polaris-react/button);
// - text and search inputs, selects and checkboxes -> s-text-field, s-select (with s-option),
//   s-checkbox, with the same name and value: Polaris' fields are form-associated, so a native form
//   submits them as it did the plain controls
//   (https://shopify.dev/docs/apps/build/app-home/migrate-from-polaris-react/form).
// Left plain: a required checkbox (Polaris' `required` is semantic only and would not hold the
// form back: https://shopify.dev/docs/api/app-home/v2.0-rc/web-components/forms/text-field),
// number inputs and text areas, and anything marked data-plain.
(function () {
  if (!window.customElements || !document.querySelectorAll) return;

  var TABLE = ["s-table", "s-table-header-row", "s-table-header", "s-table-body", "s-table-row", "s-table-cell"];
  var BUTTON = ["s-button"];
  var FIELDS = ["s-text-field", "s-select", "s-option", "s-checkbox"];
  var KEPT = /^(id|class|hidden|title|lang|dir|aria-[a-z]+|data-[a-z0-9-]+)$/;

  function whenDefined(names) {
    return Promise.all(names.map(function (n) { return window.customElements.whenDefined(n); }));
  }

  function make(tag, attrs) {
    var el = document.createElement(tag);
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === true) el.setAttribute(k, "");
      else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, String(v));
    });
    return el;
  }

  // the global attributes (id, class, data-*, aria-*) carry over: tests, scripts and links use them
  function keepAttributes(from, to) {
    for (var i = 0; i < from.attributes.length; i++) {
      var a = from.attributes[i];
      if (KEPT.test(a.name) && !to.hasAttribute(a.name)) to.setAttribute(a.name, a.value);
    }
    return to;
  }

  function moveChildren(from, to) {
    while (from.firstChild) to.appendChild(from.firstChild);
    return to;
  }

  function words(el) {
    return (el ? el.textContent : "").replace(/\s+/g, " ").trim();
  }

  function plain(el) {
    return !!el.closest("[data-plain]");
  }

  // -- tables -----------------------------------------------------------------------------------

  function headerOf(th, index) {
    var header = make("s-table-header", {
      listSlot: index === 0 ? "primary" : "labeled",
      format: th.classList.contains("num") ? "numeric" : null,
    });
    return moveChildren(th, keepAttributes(th, header));
  }

  function rowOf(tr) {
    var row = keepAttributes(tr, make("s-table-row", {}));
    Array.prototype.slice.call(tr.cells).forEach(function (td) {
      row.appendChild(moveChildren(td, keepAttributes(td, make("s-table-cell", {}))));
      for (var span = td.colSpan; span > 1; span--) row.appendChild(make("s-table-cell", {}));
    });
    return row;
  }

  function upgradeTable(table) {
    if (plain(table) || !table.tHead || table.querySelector("[rowspan]")) return;
    var polaris = keepAttributes(table, make("s-table", {variant: "auto"}));
    var headRow = make("s-table-header-row", {});
    Array.prototype.slice.call(table.tHead.rows[0].cells).forEach(function (th, i) {
      headRow.appendChild(headerOf(th, i));
    });
    var body = make("s-table-body", {});
    var rows = [];
    Array.prototype.slice.call(table.tBodies).forEach(function (b) { rows = rows.concat(Array.prototype.slice.call(b.rows)); });
    if (table.tFoot) rows = rows.concat(Array.prototype.slice.call(table.tFoot.rows));
    rows.forEach(function (tr) { body.appendChild(rowOf(tr)); });
    polaris.appendChild(headRow);
    polaris.appendChild(body);
    var box = table.parentElement;
    table.replaceWith(polaris);
    // the box that scrolled the wide table sideways: s-table lays itself out (a list on a phone)
    if (box && box.classList.contains("table-wrap")) {
      ["tabindex", "role", "aria-label"].forEach(function (a) { box.removeAttribute(a); });
      box.classList.add("polaris");
    }
  }

  // -- buttons ----------------------------------------------------------------------------------

  function upgradeButton(b) {
    if (plain(b) || b.hasAttribute("form")) return;  // a submit button stays inside its own form
    var link = b.tagName === "A";
    var polaris = make("s-button", {
      variant: b.classList.contains("secondary") ? "secondary" : "primary",
      type: link ? null : b.type,
      disabled: !link && b.disabled,
      href: link ? b.getAttribute("href") : null,
      target: link ? b.getAttribute("target") : null,
      download: link && b.hasAttribute("download") ? b.getAttribute("download") || true : null,
    });
    keepAttributes(b, polaris).removeAttribute("class");
    b.replaceWith(moveChildren(b, polaris));
  }

  // -- form fields ------------------------------------------------------------------------------

  // The words of the control's <label>, without the control and the hints inside it.
  function labelOf(control) {
    var label = control.closest("label") || (control.id && document.querySelector("label[for='" + control.id + "']"));
    if (!label) return {element: null, text: control.getAttribute("aria-label") || ""};
    var copy = label.cloneNode(true);
    copy.querySelectorAll("input, select, textarea, .hint").forEach(function (el) { el.remove(); });
    return {element: label, text: words(copy)};
  }

  // The paragraphs the control's aria-describedby names: hints become `details`, a field error
  // `error`; the Polaris field shows them, so the paragraphs are hidden.
  function described(control) {
    var found = {details: [], error: []};
    (control.getAttribute("aria-describedby") || "").split(/\s+/).forEach(function (id) {
      var el = id && document.getElementById(id);
      if (!el) return;
      (el.classList.contains("field-error") ? found.error : found.details).push(words(el));
      el.hidden = true;
    });
    return {details: found.details.join(" ") || null, error: found.error.join(" ") || null};
  }

  // Replaces the control's <label> (or the control alone when the label is not around it).
  function replaceField(control, label, polaris) {
    keepAttributes(control, polaris);
    polaris.removeAttribute("aria-describedby");
    polaris.removeAttribute("aria-invalid");
    polaris.removeAttribute("aria-label");
    var host = label.element && label.element.contains(control) && label.element.querySelectorAll("input, select, textarea").length === 1 ? label.element : control;
    host.replaceWith(polaris);
    if (host === control && label.element) label.element.remove();
  }

  function common(control, label) {
    var about = described(control);
    return {
      label: label.text,
      labelAccessibilityVisibility: label.element ? null : "exclusive",
      name: control.name,
      details: about.details,
      error: about.error,
      disabled: control.disabled,
    };
  }

  function upgradeInput(input) {
    if (plain(input) || input.required) return;
    var label = labelOf(input);
    var attrs = common(input, label);
    if (input.type === "checkbox") {
      attrs.value = input.getAttribute("value");
      attrs.checked = input.checked;
      replaceField(input, label, make("s-checkbox", attrs));
      return;
    }
    attrs.value = input.value;
    attrs.placeholder = input.getAttribute("placeholder");
    attrs.maxLength = input.getAttribute("maxlength");
    replaceField(input, label, make("s-text-field", attrs));
  }

  function upgradeSelect(select) {
    if (plain(select) || select.multiple || select.required) return;
    var label = labelOf(select);
    var attrs = common(select, label);
    attrs.value = select.value;
    var polaris = make("s-select", attrs);
    Array.prototype.slice.call(select.options).forEach(function (o) {
      var option = make("s-option", {value: o.value, selected: o.selected, disabled: o.disabled});
      option.textContent = o.textContent;
      polaris.appendChild(option);
    });
    replaceField(select, label, polaris);
  }

  function each(selector, upgrade) {
    Array.prototype.slice.call(document.querySelectorAll(selector)).forEach(upgrade);
  }

  // Fields first: a select inside a table cell moves with the cell's content.
  whenDefined(FIELDS).then(function () {
    each("form input[type='text'], form input[type='search'], form input:not([type]), form input[type='checkbox']", upgradeInput);
    each("form select", upgradeSelect);
    document.documentElement.dataset.polarisFields = "1";
  });
  whenDefined(BUTTON).then(function () {
    each("button.button, a.button", upgradeButton);
    document.documentElement.dataset.polarisButtons = "1";
  });
  whenDefined(TABLE).then(function () {
    each("table.data", upgradeTable);
    document.documentElement.dataset.polarisTables = "1";
  });
})();
