/* AUMAn's small DOM helpers, shared by the page scripts (map, application form, quick entry, incident list).
 *
 * Plain script, no build step: templates load it before the page's own script, which takes what it needs with
 * `const { el, format } = window.AUMAN.dom;`. Text goes into the page through textContent only.
 */
(function () {
  "use strict";

  // An element with an optional class and text; the text is set with textContent, never parsed as HTML.
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  // "{count} Baustellen" with {count: 3}: placeholders the values do not name stay as they are.
  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, (match, key) => (key in values ? String(values[key]) : match));
  }

  window.AUMAN = window.AUMAN || {};
  window.AUMAN.dom = Object.freeze({ el, format });
})();
