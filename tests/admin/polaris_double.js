// A TEST DOUBLE of Polaris' registration of its web components, for the browser tests only (Shopify's
// CDN script cannot load there). It defines the elements app/admin/static/polaris.js upgrades to,
// with the behaviour the Polaris documentation gives them and nothing more:
// - s-table and its parts lay out as a table on a wide screen and as a list on a narrow one
//   (variant "auto": https://shopify.dev/docs/api/app-home/polaris-web-components/structure/table),
//   with table, row, column-header and cell roles;
// - s-button is a button (or a link with href, download and target); type="submit" submits its
//   native form (https://shopify.dev/docs/apps/build/app-home/migrate-from-polaris-react/button);
// - s-text-field, s-select (its s-option children) and s-checkbox are form-associated: named, they
//   take part in their form's submission
//   (https://shopify.dev/docs/apps/build/app-home/migrate-from-polaris-react/form), with a label,
//   details and error.
(function () {
  var NARROW = "@media (max-width: 640px)";

  function shadow(el, html) {
    var root = el.attachShadow({mode: "open", delegatesFocus: true});
    root.innerHTML = html;
    return root;
  }

  function text(value) {
    var span = document.createElement("span");
    span.textContent = value || "";
    return span.innerHTML;
  }

  function part(role, wide, narrow) {
    return class extends HTMLElement {
      constructor() {
        super();
        this.attachInternals().role = role;
        shadow(this, "<style>:host { display: " + wide + "; } " + NARROW + " { :host { display: " + narrow + "; } }</style><slot></slot>");
      }
    };
  }

  customElements.define("s-table", part("table", "table", "block"));
  customElements.define("s-table-header-row", part("row", "table-row", "none"));
  customElements.define("s-table-body", part("rowgroup", "table-row-group", "block"));
  customElements.define("s-table-row", part("row", "table-row", "block"));
  customElements.define("s-table-header", class extends HTMLElement {
    constructor() {
      super();
      this.attachInternals().role = "columnheader";
      shadow(this, "<style>:host { display: table-cell; padding: 8px; font-weight: 600; }</style><slot></slot>");
    }
  });
  customElements.define("s-table-cell", class extends HTMLElement {
    constructor() {
      super();
      this.attachInternals().role = "cell";
      shadow(this, "<style>:host { display: table-cell; padding: 8px; } " + NARROW + " { :host { display: block; padding: 2px 0; } }</style><slot></slot>");
    }
  });

  customElements.define("s-button", class extends HTMLElement {
    static formAssociated = true;
    constructor() { super(); this.internals = this.attachInternals(); }
    connectedCallback() {
      if (this.shadowRoot) return;
      var href = this.getAttribute("href");
      var root = shadow(this, href === null
        ? "<button type='button'><slot></slot></button>"
        : "<a><slot></slot></a>");
      var inner = root.firstChild;
      if (href !== null) {
        inner.setAttribute("href", href);
        ["download", "target"].forEach(function (a) { if (this.hasAttribute(a)) inner.setAttribute(a, this.getAttribute(a)); }, this);
        return;
      }
      inner.disabled = this.hasAttribute("disabled");
      var self = this;
      inner.addEventListener("click", function () {
        var form = self.internals.form;
        if (self.getAttribute("type") === "submit" && form) form.requestSubmit();
      });
    }
  });

  class Field extends HTMLElement {
    static formAssociated = true;
    constructor() { super(); this.internals = this.attachInternals(); }
    connectedCallback() {
      if (this.shadowRoot) return;
      var hidden = this.getAttribute("labelaccessibilityvisibility") === "exclusive";
      var label = "<span" + (hidden ? " style='position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)'" : "") + ">" + text(this.getAttribute("label")) + "</span>";
      var about = [["details", "d"], ["error", "e"]].filter(function (p) { return this.hasAttribute(p[0]); }, this);
      var notes = about.map(function (p) { return "<p id='" + p[1] + "'>" + text(this.getAttribute(p[0])) + "</p>"; }, this).join("");
      var root = shadow(this, "<label style='display:flex;flex-direction:column'>" + label + this.control() + "</label>" + notes);
      this.input = root.querySelector("input, select");
      if (about.length) this.input.setAttribute("aria-describedby", about.map(function (p) { return p[1]; }).join(" "));
      if (this.hasAttribute("error")) this.input.setAttribute("aria-invalid", "true");
      this.input.disabled = this.hasAttribute("disabled");
      this.fill();
      var self = this;
      this.input.addEventListener("input", function () { self.sync(); });
      this.input.addEventListener("change", function () { self.sync(); self.dispatchEvent(new Event("change", {bubbles: true})); });
      this.sync();
    }
    get name() { return this.getAttribute("name"); }
    get form() { return this.internals.form; }
  }

  customElements.define("s-text-field", class extends Field {
    control() { return "<input type='text'>"; }
    fill() {
      this.input.value = this.getAttribute("value") || "";
      if (this.hasAttribute("placeholder")) this.input.placeholder = this.getAttribute("placeholder");
      if (this.hasAttribute("maxlength")) this.input.maxLength = Number(this.getAttribute("maxlength"));
    }
    sync() { this.internals.setFormValue(this.input.value); }
    get value() { return this.input ? this.input.value : this.getAttribute("value") || ""; }
    set value(v) { if (this.input) { this.input.value = v; this.sync(); } else this.setAttribute("value", v); }
  });

  customElements.define("s-option", class extends HTMLElement {});
  customElements.define("s-select", class extends Field {
    control() { return "<select></select>"; }
    fill() {
      var select = this.input;
      Array.prototype.forEach.call(this.querySelectorAll("s-option"), function (o) {
        var option = new Option(o.textContent, o.getAttribute("value"), false, o.hasAttribute("selected"));
        select.add(option);
      });
    }
    sync() { this.internals.setFormValue(this.input.value); }
    get value() { return this.input ? this.input.value : this.getAttribute("value") || ""; }
    set value(v) { if (this.input) { this.input.value = v; this.sync(); } else this.setAttribute("value", v); }
  });

  customElements.define("s-checkbox", class extends Field {
    control() { return "<input type='checkbox'>"; }
    fill() { this.input.checked = this.hasAttribute("checked"); }
    sync() { this.internals.setFormValue(this.input.checked ? (this.getAttribute("value") || "on") : null); }
    get checked() { return this.input ? this.input.checked : this.hasAttribute("checked"); }
  });
})();
