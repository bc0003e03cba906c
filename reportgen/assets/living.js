/* Keyboard access to regions that scroll (WCAG 2.1.1): a wide table (Material wraps each table in
   a .md-typeset__scrollwrap), a notebook's output or code that is wider than the page. Each one
   that overflows gets tabindex=0, role=region and a label, so Tab reaches it and the arrow keys
   scroll it. LIVING_TEXTS (the page's language) is written above this file by reportgen. */
(function () {
  "use strict";
  var SELECTOR = [
    ".md-typeset__scrollwrap",
    ".jp-OutputArea-output",
    ".jp-RenderedText pre",
    ".jp-InputArea-editor pre",
    ".highlight pre > code",
  ].join(", ");

  function overflows(element) {
    return element.scrollWidth > element.clientWidth + 1 || element.scrollHeight > element.clientHeight + 1;
  }

  function label(element) {
    if (element.querySelector("table")) return LIVING_TEXTS.table;
    if (element.closest(".jp-OutputArea")) return LIVING_TEXTS.output;
    return LIVING_TEXTS.code;
  }

  function mark() {
    document.querySelectorAll(SELECTOR).forEach(function (element) {
      if (element.hasAttribute("data-living-scroll") || !overflows(element)) return;
      if (element.hasAttribute("tabindex")) return; // Material already made it focusable (code blocks)
      element.setAttribute("data-living-scroll", "");
      element.setAttribute("tabindex", "0");
      element.setAttribute("role", "region");
      element.setAttribute("aria-label", label(element));
    });
  }

  if (typeof window.document$ !== "undefined" && window.document$.subscribe) {
    window.document$.subscribe(mark); // after Material has wrapped the tables, on every page view
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mark);
  } else {
    mark();
  }
  window.addEventListener("resize", mark);
})();
