/* Neuron Atlas live probe, the stream: the WebSocket to the server (with
   reconnects), pacing (one frame in flight; a still is sent once per
   change) and measuring (update rate, latency). Adds connect, pump and
   send to window.AtlasProbe; hands each reply to the view. */
(function (probe) {
  "use strict";

  var RECONNECT_MS = 1000; // waits 1 s, 2 s, ... between tries
  var MAX_RETRIES = 5;

  var $ = probe.$, root = probe.root, state = probe.state;
  var guard = probe.guard, fail = probe.fail;
  var probeFrames = window.AtlasProbeFrames;

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
    send(probe.stillPixels());
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
      probe.draw(frame);
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

  probe.connect = connect;
  probe.pump = pump;
  probe.send = send;
})(window.AtlasProbe);
