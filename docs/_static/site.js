/* The site's own script: figures at full size on request, and keyboard access to what scrolls.
 *
 * Every image of a page's article is put inside a button: a click, a tap, Enter or Space opens it
 * in a modal dialog at its own pixel size (scroll it when it is larger than the screen), with its
 * description and a Close button; Escape, Close or a click outside the picture shuts it, and the
 * focus goes back to the figure. A precomputed slider view's image opens at its current setting.
 *
 * A precomputed slider view's image whose description is given (data-vaelib-alt, written by
 * tools/build_site.py: the figure's words at the starting setting) has its alt text follow the
 * sliders: the starting setting's names and values in it become those of the setting shown.
 *
 * A block that scrolls inside its own box (a wide formula, a printed table, a slider's readout on a
 * phone) is put in the tab order, so that the keyboard can scroll it too (WCAG 2.1.1; axe:
 * scrollable-region-focusable); it leaves the tab order when it no longer scrolls (a wider window).
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

  function followSliders(view) {
    var image = view.querySelector("img[data-vaelib-alt]");
    if (!image) return;
    function setting() {  // "β = 1, σ = 0.5": each slider's label and the value it shows
      var parts = [];
      view.querySelectorAll("label.vaelib-static-slider").forEach(function (label) {
        var name = label.querySelector("span"), value = label.querySelector("output");
        if (name && value) parts.push(name.textContent.trim() + " = " + value.textContent.trim());
      });
      return parts.join(", ");
    }
    var words = image.getAttribute("data-vaelib-alt"), first = setting();
    function describe() {  // the starting setting's words, last named in the description, become the new ones
      var now = setting(), at = first ? words.lastIndexOf(first) : -1;
      image.alt = at >= 0 ? words.slice(0, at) + now + words.slice(at + first.length)
        : words + (now ? " Setting shown: " + now + "." : "");
    }
    view.addEventListener("input", function () { window.setTimeout(describe, 0); });  // after the player
    describe();
  }

  var SCROLLERS = "main article mjx-container[display='true'], main article pre, main article .output";

  function scrollersInTabOrder() {
    document.querySelectorAll(SCROLLERS).forEach(function (block) {
      var scrolls = block.scrollWidth > block.clientWidth + 1 || block.scrollHeight > block.clientHeight + 1;
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

  function start() {
    document.querySelectorAll("main article img").forEach(wrap);
    document.querySelectorAll(".vaelib-static-view").forEach(followSliders);
    scrollersInTabOrder();
    // Typeset maths changes widths: look again once MathJax is done, and when the window changes.
    if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
      window.MathJax.startup.promise.then(scrollersInTabOrder);
    }
    var pending;
    window.addEventListener("resize", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(scrollersInTabOrder, 200);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
