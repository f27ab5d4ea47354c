/* Neuron Atlas live probe, the view: each reply drawn as the tile grid of
   the layer's activation maps (most active and selected units outlined),
   the list of most active units and the model's top classes. Adds draw to
   window.AtlasProbe; the unit section is probe-unit.js. */
(function (probe) {
  "use strict";

  var HIGHLIGHTED = 5; // most active units outlined per frame

  var $ = probe.$, state = probe.state, guard = probe.guard;
  var probeFrames = window.AtlasProbeFrames;
  var tile = document.createElement("canvas");

  /* ---- drawing ---- */

  function draw(frame) {
    probeFrames.paintTile(frame, tile);
    var grid = $("grid");
    var g = probeFrames.drawGrid(frame, tile, grid);
    state.cell = g;
    var top = probeFrames.mostActive(frame, HIGHLIGHTED);
    probeFrames.outline(grid, g, top, cssColour("--mark", "#b3261e"), 2);
    if (state.selected !== null) {
      probeFrames.outline(grid, g, [state.selected], cssColour("--link", "#0550ae"), 4);
    }
    listTop(frame, top);
    showPredictions(frame);
    if (state.wantUnit !== null && state.wantUnit < frame.units) {
      var unit = state.wantUnit;
      state.wantUnit = null;
      probe.select(unit);
    } else if (state.selected !== null) {
      probeFrames.drawUnit(frame, tile, state.selected, $("unit-activation-canvas"), 192);
      if (state.source !== "camera") { probe.attribute(false); }
    }
  }

  function cssColour(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function listTop(frame, top) {
    var box = $("top-units");
    box.textContent = "Most active: ";
    top.forEach(function (unit, i) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "probe-unit-button";
      button.textContent = "unit " + unit + " (" + format(frame.unitMax[unit]) + ")";
      button.addEventListener("click", guard(function () { probe.select(unit); }));
      if (i) { box.appendChild(document.createTextNode(" ")); }
      box.appendChild(button);
    });
  }

  function showPredictions(frame) {
    var head = state.info.head;
    $("predictions-section").hidden = !head || !frame.k;
    if (!head || !frame.k) { return; }
    var list = $("predictions");
    list.textContent = "";
    frame.classes.forEach(function (index, i) {
      var item = document.createElement("li");
      var name = head.names ? head.names[index] : "class " + index;
      item.textContent = name + " · " + (frame.probabilities[i] * 100).toFixed(1) + "%";
      list.appendChild(item);
    });
    $("predictions-note").textContent = head.kind === "softmax of logits" ?
      "Probabilities: softmax of the model's outputs." : "";
  }

  function format(value) {
    return Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3);
  }

  probe.draw = draw;
})(window.AtlasProbe);
