/* The site's own script: figures at full size on request, and keyboard access to what scrolls.
 *
 * Every image of a page's article is put inside a button: a click, a tap, Enter or Space opens it
 * in a modal dialog at its own pixel size (scroll it when it is larger than the screen), with its
 * description and a Close button; Escape, Close or a click outside the picture shuts it, and the
 * focus goes back to the figure. A precomputed slider view's image (docs/_static/player.js) opens
 * at its current setting, with that setting's words.
 *
 * An inline formula drawn wider than its box scrolls in it (the theme's box would cut it off). A
 * block that scrolls inside its own box (a wide formula, displayed or inline, a printed table, a
 * slider's readout on a phone) is put in the tab order, so that the keyboard can scroll it too
 * (WCAG 2.1.1; axe: scrollable-region-focusable); it leaves the tab order when it no longer scrolls
 * (a wider window).
 *
 * No library, nothing loaded: the dialog is the browser's own <dialog>.
 */
(function () {
  "use strict";

  var dialog, picture, caption, opener;

  function buildDialog() {
    dialog = document.createElement("dialog");
    dialog.className = "vaelib-figure-dialog";
    dialog.setAttribute("aria-labelledby", "vaelib-figure-dialog-caption");
    var bar = document.createElement("div");
    bar.className = "vaelib-figure-dialog-bar";
    caption = document.createElement("p");
    caption.id = "vaelib-figure-dialog-caption";
    var close = document.createElement("button");
    close.type = "button";
    close.className = "vaelib-figure-dialog-close";
    close.textContent = "Close";
    close.addEventListener("click", function () { dialog.close(); });
    bar.appendChild(caption);
    bar.appendChild(close);
    var frame = document.createElement("div");
    frame.className = "vaelib-figure-dialog-frame";
    frame.tabIndex = 0;  // a picture larger than the screen scrolls with the arrow keys too
    picture = document.createElement("img");
    frame.appendChild(picture);
    dialog.appendChild(bar);
    dialog.appendChild(frame);
    // A click on the dark area around the picture (the frame itself, not the picture) closes it.
    frame.addEventListener("click", function (event) { if (event.target === frame) dialog.close(); });
    dialog.addEventListener("close", function () {
      picture.removeAttribute("src");
      if (opener) opener.focus();
    });
    document.body.appendChild(dialog);
  }

  function open(image, button) {
    if (!dialog) buildDialog();
    opener = button;
    picture.src = image.currentSrc || image.src;
    picture.alt = image.alt || "";
    picture.width = image.naturalWidth;  // its own size, whatever the page's column
    caption.textContent = image.alt || "Figure";
    dialog.showModal();
  }

  function wrap(image) {
    if (image.closest("button, a")) return;  // already a control
    var button = document.createElement("button");
    button.type = "button";
    button.className = "vaelib-figure-open";
    var hint = document.createElement("span");
    hint.className = "vaelib-visually-hidden";
    hint.textContent = "Show full size: ";
    image.parentNode.insertBefore(button, image);
    button.appendChild(hint);
    button.appendChild(image);
    button.addEventListener("click", function () { open(image, button); });
  }

  var SCROLLERS = "main article mjx-container[display='true'], main article span.math, main article pre, " +
    "main article .output";

  // An inline formula drawn wider than its box (the theme's box hides what does not fit) scrolls instead.
  function formulasThatScroll() {
    document.querySelectorAll("main article span.math").forEach(function (box) {
      var drawn = box.querySelector("mjx-math");
      if (!drawn) return;
      var wider = drawn.getBoundingClientRect().width > box.getBoundingClientRect().width + 0.5;
      box.classList.toggle("vaelib-scrolls", wider);
    });
  }

  function scrollersInTabOrder() {
    formulasThatScroll();
    document.querySelectorAll(SCROLLERS).forEach(function (block) {
      // Any scroll counts, a pixel's too, as axe-core counts it; an axis that is hidden does not scroll.
      var style = window.getComputedStyle(block), can = /^(auto|scroll)$/;
      var scrolls = (can.test(style.overflowX) && block.scrollWidth > block.clientWidth) ||
        (can.test(style.overflowY) && block.scrollHeight > block.clientHeight);
      var ours = block.hasAttribute("data-vaelib-scrolls");
      if (scrolls && !block.hasAttribute("tabindex")) {
        block.setAttribute("tabindex", "0");
        block.setAttribute("data-vaelib-scrolls", "");
      } else if (!scrolls && ours) {
        block.removeAttribute("tabindex");
        block.removeAttribute("data-vaelib-scrolls");
      }
    });
  }

  // Once MathJax has typeset the page (this script may run before MathJax's own, which loads async: then
  // its configuration is still a plain object, and the step that typesets the page is extended).
  function afterMaths(callback) {
    var mathjax = window.MathJax;
    if (!mathjax) return;
    if (mathjax.startup && mathjax.startup.promise) {
      mathjax.startup.promise.then(callback);
      return;
    }
    mathjax.startup = mathjax.startup || {};
    var pageReady = mathjax.startup.pageReady;
    mathjax.startup.pageReady = function () {
      var done = pageReady ? pageReady() : window.MathJax.startup.defaultPageReady();
      return done.then(function () { callback(); });
    };
  }

  function start() {
    document.querySelectorAll("main article img").forEach(wrap);
    scrollersInTabOrder();
    // Typeset maths changes widths, and so do its fonts when they arrive (a glyph drawn in a fallback font
    // first can stick out of its box): look again then, and when the window changes.
    afterMaths(function () {
      scrollersInTabOrder();
      if (document.fonts && document.fonts.ready) document.fonts.ready.then(scrollersInTabOrder);
    });
    var pending;
    window.addEventListener("resize", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(scrollersInTabOrder, 200);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
