/* Neuron Atlas live probe, the page: an input (webcam, upload or dataset
   image) goes to the server as RGBA pixels over a WebSocket; every reply is
   one packed uint8 tile of the layer's activation maps, drawn by
   probe-frames.js. A classic script: no modules, no inline code, nothing
   from the network. */
(function () {
  "use strict";

  var HIGHLIGHTED = 5; // most active units outlined per frame
  var ATTRIBUTION_EVERY_MS = 400; // webcam: refresh the unit's map this often
  var METHOD_NAMES = { deconvnet: "Deconvnet", guided: "Guided backprop", gradient: "Gradient" };
  var RECONNECT_MS = 1000; // waits 1 s, 2 s, ... between tries
  var MAX_RETRIES = 5;

  var $ = function (id) { return document.getElementById(id); };
  var root = $("probe");
  var api = root.getAttribute("data-api");
  var probeFrames = window.AtlasProbeFrames;
  var tile = document.createElement("canvas");
  var state = {
    info: null, layer: 0, units: {}, selected: null, wantUnit: null,
    socket: null, open: false, retries: 0, seq: 0, frames: 0, inflight: false, sentAt: {},
    source: null, base: null, dirty: false, pixels: null, last: null,
    times: [], latencies: [], shownAt: 0, stream: null,
    attributing: false, attributedAt: 0, mapUrl: null, cell: null
  };

  function guard(work) {
    return function (event) {
      try { work(event); } catch (error) { fail(error); }
    };
  }

  function fail(error) {
    var box = $("probe-error");
    box.textContent = String(error && error.message ? error.message : error);
    box.hidden = false;
  }

  function say(id, text, isError) {
    var box = $(id);
    box.textContent = text;
    box.classList.toggle("error", Boolean(isError));
  }

  function getJSON(path) {
    return fetch(api + path, { credentials: "same-origin" }).then(expectOk)
      .then(function (response) { return response.json(); });
  }

  function expectOk(response) {
    if (response.ok) { return response; }
    return response.json().catch(function () { return {}; }).then(function (body) {
      throw new Error(body.error || "the server answered " + response.status);
    });
  }

  /* ---- start-up ---- */

  function start(info) {
    state.info = info;
    $("model-name").textContent = info.model;
    var canvas = $("input-canvas");
    canvas.width = info.input.shape[1];
    canvas.height = info.input.shape[0];
    root.classList.toggle("probe-smooth", info.input.shape[0] >= 64);
    fillLayers(info);
    fillMethods(info);
    setUpInputs(info);
    var query = new URLSearchParams(location.search);
    var unit = parseInt(query.get("unit"), 10);
    state.wantUnit = isNaN(unit) ? null : unit;
    chooseLayer(pickLayer(info, query.get("layer")));
    connect();
    if (info.dataset) { showDataset(0); }
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
    select.addEventListener("change", guard(function () { attribute(true); }));
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
      if (state.selected !== null) { showUnitFiles(state.selected); }
    }).catch(fail);
    pump();
  }

  /* ---- inputs ---- */

  function setUpInputs(info) {
    $("source-upload").addEventListener("change", guard(upload));
    $("dataset-show").addEventListener("click", guard(function () {
      showDataset(parseInt($("dataset-index").value, 10) || 0);
    }));
    $("dataset-random").addEventListener("click", guard(function () {
      showDataset(Math.floor(Math.random() * info.dataset.count));
    }));
    $("invert").addEventListener("change", guard(function () { state.dirty = true; pump(); }));
    var noData = !info.dataset;
    ["dataset-index", "dataset-show", "dataset-random"].forEach(function (id) {
      $(id).disabled = noData;
    });
    if (info.dataset) { $("dataset-index").max = String(info.dataset.count - 1); }
    var problem = cameraProblem();
    var button = $("source-camera");
    if (problem) {
      button.disabled = true;
      say("camera-message", problem, true);
      $("camera-message").hidden = false;
    } else {
      button.addEventListener("click", guard(toggleCamera));
    }
  }

  /* C24: the camera exists only in a secure context; say so, with the fix. */
  function cameraProblem() {
    var here = "http://127.0.0.1:" + (location.port || "80") + location.pathname;
    if (!window.isSecureContext) {
      return "The webcam is off: browsers give the camera only to secure pages, " +
        "and " + location.origin + " is not one. Open " + here + " on the " +
        "machine that runs `atlas serve --live` (or serve it over HTTPS). " +
        "Uploads and dataset images work here.";
    }
    if (!navigator.mediaDevices || typeof navigator.mediaDevices.getUserMedia !== "function") {
      return "The webcam is off: this browser offers no camera API " +
        "(navigator.mediaDevices). Use a current Chrome, Firefox or Safari; " +
        "uploads and dataset images work here.";
    }
    return null;
  }

  function upload() {
    var file = $("source-upload").files[0];
    if (!file) { return; }
    say("input-status", "Reading " + file.name + "…");
    fetch(api + "upload", { method: "POST", body: file }).then(expectOk)
      .then(function (response) { return response.blob(); })
      .then(function (blob) { return showStill(blob, "upload: " + file.name); })
      .catch(function (error) { say("input-status", error.message, true); });
  }

  function showDataset(index) {
    say("input-status", "Loading dataset image " + index + "…");
    var label = "";
    fetch(api + "dataset/" + index).then(expectOk).then(function (response) {
      label = response.headers.get("X-Atlas-Label") || "";
      return response.blob();
    }).then(function (blob) {
      $("dataset-index").value = String(index);
      var text = "dataset image " + index + (label ? " (label " + label + ")" : "");
      return showStill(blob, text);
    }).catch(function (error) { say("input-status", error.message, true); });
  }

  function showStill(blob, text) {
    return blobImage(blob).then(function (image) {
      stopCamera();
      var canvas = $("input-canvas");
      var context = canvas.getContext("2d", { willReadFrequently: true });
      context.clearRect(0, 0, canvas.width, canvas.height);
      context.drawImage(image, 0, 0, canvas.width, canvas.height);
      state.base = context.getImageData(0, 0, canvas.width, canvas.height);
      state.source = "still";
      state.dirty = true;
      say("input-status", "Input: " + text + ".");
      pump();
    });
  }

  function blobImage(blob) {
    return new Promise(function (resolve, reject) {
      var url = URL.createObjectURL(blob);
      var image = new Image();
      image.addEventListener("load", function () { URL.revokeObjectURL(url); resolve(image); });
      image.addEventListener("error", function () {
        URL.revokeObjectURL(url);
        reject(new Error("the browser cannot show the image the server sent"));
      });
      image.src = url;
    });
  }

  function toggleCamera() {
    if (state.stream) {
      stopCamera();
      say("input-status", "Webcam stopped; the last frame stays as the input.");
      return;
    }
    say("input-status", "Asking for the webcam…");
    navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: false })
      .then(function (stream) {
        var video = $("camera");
        state.stream = stream;
        video.srcObject = stream;
        return video.play();
      }).then(function () {
        state.source = "camera";
        $("source-camera").setAttribute("aria-pressed", "true");
        say("input-status", "Input: the webcam (click Webcam again to stop).");
        requestAnimationFrame(cameraTick);
      }).catch(function (error) {
        stopCamera();
        say("input-status", cameraFix(error), true);
      });
  }

  function cameraFix(error) {
    var name = error && error.name;
    if (name === "NotAllowedError") {
      return "The camera was refused: allow it for this page (the icon in the " +
        "address bar) and click Webcam again.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return "No camera was found: connect one and click Webcam again, or use an upload.";
    }
    return "The camera did not start (" + (error && error.message) + "); use an upload.";
  }

  function stopCamera() {
    if (state.stream) {
      state.stream.getTracks().forEach(function (track) { track.stop(); });
    }
    state.stream = null;
    $("camera").srcObject = null;
    $("source-camera").setAttribute("aria-pressed", "false");
    if (state.source === "camera") {
      var canvas = $("input-canvas");
      state.base = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
      state.source = "still";
    }
  }

  function cameraTick() {
    if (state.source !== "camera") { return; }
    try {
      if (state.open && !state.inflight) { send(cameraPixels()); }
      maybeRefreshAttribution();
    } catch (error) { fail(error); }
    requestAnimationFrame(cameraTick);
  }

  function cameraPixels() {
    var video = $("camera");
    var canvas = $("input-canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    var w = video.videoWidth, h = video.videoHeight;
    var aspect = canvas.width / canvas.height;
    var cw = Math.min(w, h * aspect), ch = cw / aspect;
    context.save();
    if ($("mirror").checked) {
      context.translate(canvas.width, 0);
      context.scale(-1, 1);
    }
    context.drawImage(video, (w - cw) / 2, (h - ch) / 2, cw, ch, 0, 0, canvas.width, canvas.height);
    context.restore();
    var frame = context.getImageData(0, 0, canvas.width, canvas.height);
    return shown(frame, context);
  }

  /* The frame as the model sees it: inverted if asked, drawn back. */
  function shown(frame, context) {
    if ($("invert").checked) {
      var data = frame.data;
      for (var i = 0; i < data.length; i += 4) {
        data[i] = 255 - data[i];
        data[i + 1] = 255 - data[i + 1];
        data[i + 2] = 255 - data[i + 2];
      }
    }
    context.putImageData(frame, 0, 0);
    return frame.data;
  }

  function stillPixels() {
    var canvas = $("input-canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    var copy = new ImageData(new Uint8ClampedArray(state.base.data), state.base.width, state.base.height);
    return shown(copy, context);
  }

  /* ---- the stream ---- */

  function connect() {
    var url = new URL(root.getAttribute("data-socket"), location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    var socket = new WebSocket(url.href);
    socket.binaryType = "arraybuffer";
    state.socket = socket;
    socket.addEventListener("open", guard(function () {
      state.open = true;
      state.retries = 0;
      state.inflight = false;
      $("probe-error").hidden = true;
      state.dirty = true;
      pump();
    }));
    socket.addEventListener("message", guard(receive));
    socket.addEventListener("close", function () {
      state.open = false;
      state.retries += 1;
      if (state.retries > MAX_RETRIES) {
        fail("The connection to the probe closed. Is `atlas serve --live` still running? Reload the page to try again.");
        return;
      }
      fail("The connection to the probe closed; reconnecting…");
      setTimeout(guard(connect), RECONNECT_MS * state.retries);
    });
  }

  function pump() {
    if (!state.open || state.inflight || state.source !== "still" || !state.dirty) { return; }
    state.dirty = false;
    send(stillPixels());
  }

  function send(pixels) {
    var canvas = $("input-canvas");
    state.seq = (state.seq + 1) >>> 0;
    var message = probeFrames.request(state.seq, state.layer, canvas.width, canvas.height, pixels);
    state.socket.send(message.buffer);
    state.pixels = message;
    state.sentAt[state.seq] = performance.now();
    state.inflight = true;
  }

  function receive(event) {
    if (typeof event.data === "string") {
      var note = JSON.parse(event.data);
      if (note.error) { fail(note.error); }
      state.inflight = false;
      pump();
      return;
    }
    var frame = probeFrames.reply(event.data);
    state.inflight = false;
    $("probe-error").hidden = true;
    state.frames += 1;
    root.setAttribute("data-frames", String(state.frames));
    var sent = state.sentAt[frame.seq];
    delete state.sentAt[frame.seq];
    if (frame.layer === state.layer) {
      frame.request = state.pixels;
      state.last = frame;
      measure(sent);
      draw(frame);
    }
    pump();
  }

  function measure(sent) {
    var now = performance.now();
    state.times.push(now);
    while (state.times.length && now - state.times[0] > 2000) { state.times.shift(); }
    if (sent !== undefined) {
      state.latencies.push(now - sent);
      if (state.latencies.length > 30) { state.latencies.shift(); }
    }
    if (state.source === "camera" && now - state.shownAt < 500) { return; }
    state.shownAt = now;
    var rate = state.times.length > 1 ?
      (state.times.length - 1) * 1000 / (now - state.times[0]) : 0;
    var sorted = state.latencies.slice().sort(function (a, b) { return a - b; });
    var median = sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
    var layer = state.info.layers[state.layer];
    $("stats").textContent = layer.name + " · " + layer.units + " units · " +
      (state.source === "camera" ? rate.toFixed(1) + " updates/s · " : "") +
      "latency " + median.toFixed(0) + " ms";
  }

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
      select(unit);
    } else if (state.selected !== null) {
      probeFrames.drawUnit(frame, tile, state.selected, $("unit-activation-canvas"), 192);
      if (state.source !== "camera") { attribute(false); }
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
      button.addEventListener("click", guard(function () { select(unit); }));
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
      draw(state.last);
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
    say("unit-status", "");
    if (!files) {
      say("unit-status", state.info.site ?
        "This layer is not in the atlas: no synthesized images or top-k crops." :
        "No built atlas beside the probe: run `atlas build` for images and crops.");
    }
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
    say("unit-status", "");
  }

  function main() {
    var grid = $("grid");
    grid.addEventListener("click", guard(onGridClick));
    grid.addEventListener("keydown", guard(onGridKey));
    getJSON("info").then(guard(start)).catch(fail);
  }

  main();
})();
