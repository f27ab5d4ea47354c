/* Neuron Atlas live probe, the page: start-up and the layer choice. An
   input (webcam, upload or dataset image, probe-input.js) goes to the
   server as RGBA pixels over a WebSocket (probe-stream.js); every reply is
   one packed uint8 tile of the layer's activation maps, drawn by
   probe-view.js and probe-unit.js through probe-frames.js. The scripts
   share one namespace, window.AtlasProbe (probe-core.js); this one loads
   last and starts the page. Classic scripts: no modules, no inline code,
   nothing from the network. */
(function (probe) {
  "use strict";

  var $ = probe.$, root = probe.root, state = probe.state;
  var guard = probe.guard, fail = probe.fail, getJSON = probe.getJSON;
  var METHOD_NAMES = probe.METHOD_NAMES;

  /* ---- start-up ---- */

  function start(info) {
    state.info = info;
    $("model-name").textContent = info.model;
    var canvas = $("input-canvas");
    canvas.width = info.input.shape[1];
    canvas.height = info.input.shape[0];
    root.classList.toggle("probe-smooth", info.input.shape[0] >= 64);
    // A one-channel model sees gray: the input canvas shows it so.
    root.classList.toggle("probe-gray", info.input.shape[2] === 1);
    fillLayers(info);
    fillMethods(info);
    probe.setUpInputs(info);
    var query = new URLSearchParams(location.search);
    var unit = parseInt(query.get("unit"), 10);
    state.wantUnit = isNaN(unit) ? null : unit;
    chooseLayer(pickLayer(info, query.get("layer")));
    probe.connect();
    if (info.dataset) { probe.showDataset(0); }
  }

  function fillLayers(info) {
    var select = $("layer-select");
    info.layers.forEach(function (layer) {
      var option = document.createElement("option");
      option.value = String(layer.index);
      option.textContent = layer.name + " · " + layer.units + " units" +
        (layer.in_atlas ? " · in the atlas" : "");
      select.appendChild(option);
    });
    select.addEventListener("change", guard(function () {
      state.wantUnit = null;
      chooseLayer(parseInt(select.value, 10));
    }));
  }

  function pickLayer(info, name) {
    var named = info.layers.filter(function (l) { return l.name === name; })[0];
    var atlas = info.layers.filter(function (l) { return l.in_atlas; })[0];
    return (named || atlas || info.layers[0]).index;
  }

  function fillMethods(info) {
    var select = $("method-select");
    info.methods.forEach(function (method) {
      var option = document.createElement("option");
      option.value = method;
      option.textContent = METHOD_NAMES[method] || method;
      select.appendChild(option);
    });
    select.addEventListener("change", guard(function () { probe.attribute(true); }));
  }

  function chooseLayer(index) {
    var layer = state.info.layers[index];
    state.layer = index;
    state.selected = null;
    state.last = null;
    $("layer-select").value = String(index);
    $("unit-section").hidden = true;
    var link = $("layer-page");
    link.hidden = !layer.page;
    if (layer.page) { link.href = "../" + layer.page; }
    state.dirty = true;
    getJSON("units?layer=" + encodeURIComponent(layer.name)).then(function (body) {
      state.units = {};
      body.units.forEach(function (unit) { state.units[unit.index] = unit; });
      if (state.selected !== null) { probe.showUnitFiles(state.selected); }
    }).catch(fail);
    probe.pump();
  }

  function main() {
    var grid = $("grid");
    grid.addEventListener("click", guard(probe.onGridClick));
    grid.addEventListener("keydown", guard(probe.onGridKey));
    getJSON("info").then(guard(start)).catch(fail);
  }

  main();
})(window.AtlasProbe);
