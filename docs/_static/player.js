/* The site's slider players: a slider view's settings, computed when its notebook was executed.
 *
 * tools/player.py writes each player (div.vaelib-static-view): a range input per slider, the
 * readout (a polite live region: a screen reader says the new numbers), the image, and the frames
 * as JSON (script.vaelib-static-data): per frame the PNG, the readout, the setting in words and the
 * figure's words at that setting. Moving a slider shows the frame of the setting chosen (the first
 * slider varies slowest), its readout, and its words as the image's alt text; each slider says its
 * value as "name = value".
 *
 * No library, nothing loaded.
 */
(function () {
  "use strict";

  function setUp(view) {
    var script = view.querySelector("script.vaelib-static-data");
    if (!script || view.hasAttribute("data-vaelib-ready")) return;
    var data = JSON.parse(script.textContent);
    var inputs = view.querySelectorAll("input.vaelib-static-input");
    var values = view.querySelectorAll("output.vaelib-static-value");
    var image = view.querySelector("img.vaelib-static-figure");
    var readout = view.querySelector("pre.vaelib-static-readout");

    function show() {
      var k = 0;
      for (var i = 0; i < inputs.length; i++) {
        var slider = data.sliders[i], j = parseInt(inputs[i].value, 10);
        k = k * slider.values.length + j;
        values[i].textContent = slider.values[j];
        inputs[i].setAttribute("aria-valuetext", slider.label + " = " + slider.values[j]);
      }
      var frame = data.frames[k], src = "data:image/png;base64," + frame.png;
      if (image.getAttribute("src") !== src) image.setAttribute("src", src);
      if (frame.alt) image.alt = frame.alt;
      if (readout.textContent !== frame.readout) readout.textContent = frame.readout;  // announced once
      view.setAttribute("data-vaelib-index", String(k));
    }

    for (var i = 0; i < inputs.length; i++) inputs[i].addEventListener("input", show);
    view.setAttribute("data-vaelib-ready", "");
    show();
  }

  function start() {
    document.querySelectorAll(".vaelib-static-view").forEach(setUp);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
