/* Neuron Atlas live probe, one unit: choosing it (grid click, arrow keys,
   the most-active list), its atlas files (page, synthesized images, top-k
   crops) and its attribution map from the server. Adds select, attribute,
   showUnitFiles, maybeRefreshAttribution and the grid handlers to
   window.AtlasProbe. */
(function (probe) {
  "use strict";

  var ATTRIBUTION_EVERY_MS = 400; // webcam: refresh the unit's map this often

  var $ = probe.$, state = probe.state, api = probe.api;
  var say = probe.say, expectOk = probe.expectOk, METHOD_NAMES = probe.METHOD_NAMES;
  var probeFrames = window.AtlasProbeFrames;

  /* ---- one unit ---- */

  function onGridClick(event) {
    var g = state.cell;
    if (!g) { return; }
    var canvas = $("grid");
    var x = event.offsetX * canvas.width / canvas.clientWidth;
    var y = event.offsetY * canvas.height / canvas.clientHeight;
    var unit = probeFrames.unitAt(g, x, y);
    if (unit !== null) { select(unit); }
  }

  function onGridKey(event) {
    var g = state.cell;
    var steps = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -(g ? g.cols : 1), ArrowDown: g ? g.cols : 1 };
    if (!g || !(event.key in steps || event.key === "Enter")) { return; }
    event.preventDefault();
    var unit = state.selected === null ? 0 : state.selected + (steps[event.key] || 0);
    select(Math.max(0, Math.min(g.units - 1, unit)));
  }

  function select(unit) {
    state.selected = unit;
    var layer = state.info.layers[state.layer];
    $("unit-section").hidden = false;
    $("unit-title").textContent = "Unit " + unit + " of " + layer.name;
    showUnitFiles(unit);
    if (state.last) {
      probe.draw(state.last);
      attribute(true);
    }
  }

  function showUnitFiles(unit) {
    var files = state.units[unit];
    var link = $("unit-page");
    link.hidden = !(files && files.page);
    if (files && files.page) { link.href = "../" + files.page; }
    var images = $("unit-images");
    images.textContent = "";
    var views = files ? Object.keys(files.images) : [];
    views.forEach(function (view) {
      var image = document.createElement("img");
      image.src = "../" + files.images[view];
      image.alt = "Synthesized image of unit " + unit + " (" + view + ")";
      image.title = view;
      images.appendChild(image);
    });
    $("unit-images-figure").hidden = views.length === 0;
    var hasSheet = Boolean(files && files.sheet);
    $("unit-sheet-figure").hidden = !hasSheet;
    if (hasSheet) { $("unit-sheet").src = "../" + files.sheet; }
    // Kept in state: a map shown later restores it instead of clearing it.
    state.unitNote = files ? "" : state.info.site ?
      "This layer is not in the atlas: no synthesized images or top-k crops." :
      "No built atlas beside the probe: run `atlas build` for images and crops.";
    say("unit-status", state.unitNote);
  }

  function maybeRefreshAttribution() {
    if (performance.now() - state.attributedAt > ATTRIBUTION_EVERY_MS) { attribute(false); }
  }

  function attribute(force) {
    if (state.selected === null || !state.last) { return; }
    if (state.attributing || (!force && state.last.attributed === state.selected)) { return; }
    var unit = state.selected, frame = state.last;
    var method = $("method-select").value;
    state.attributing = true;
    state.attributedAt = performance.now();
    var query = "attribution?unit=" + unit + "&method=" + encodeURIComponent(method);
    fetch(api + query, { method: "POST", body: frame.request }).then(expectOk)
      .then(function (response) {
        var position = response.headers.get("X-Atlas-Position");
        return response.blob().then(function (blob) { return [blob, position]; });
      }).then(function (result) {
        frame.attributed = unit;
        showMap(result[0], unit, method, result[1]);
      }).catch(function (error) { say("unit-status", error.message, true); })
      .then(function () { state.attributing = false; });
  }

  function showMap(blob, unit, method, position) {
    if (state.mapUrl) { URL.revokeObjectURL(state.mapUrl); }
    state.mapUrl = URL.createObjectURL(blob);
    var image = $("unit-map");
    image.src = state.mapUrl;
    image.alt = method + " map of unit " + unit;
    image.hidden = false;
    var where = position ? " at its strongest position (row " + position.replace(",", ", column ") + ")" : "";
    $("unit-map-caption").textContent = (METHOD_NAMES[method] || method) +
      " map of unit " + unit + where + ": the pixels that drive it on this input";
    say("unit-status", state.unitNote || "");
  }

  probe.onGridClick = onGridClick;
  probe.onGridKey = onGridKey;
  probe.select = select;
  probe.showUnitFiles = showUnitFiles;
  probe.maybeRefreshAttribution = maybeRefreshAttribution;
  probe.attribute = attribute;
})(window.AtlasProbe);
