/* Neuron Atlas live probe, frames: the binary messages of
   atlas/live/protocol.py, and the grid of activation maps drawn from a
   packed reply. A classic script that sets one global, AtlasProbeFrames;
   the probe's other scripts use it. */
(function () {
  "use strict";

  var REQUEST_MAGIC = [0x41, 0x4c, 0x51, 0x31]; // "ALQ1"
  var REQUEST_HEADER = 14; // magic, u32 seq, u16 layer, u16 width, u16 height
  var REPLY_HEADER = 30; // magic, u32 seq, 7 x u16, 2 x f32
  var GRID_WIDTH = 600; // pixels the grid aims to fill
  var GAP = 2; // pixels between units on the grid
  // Colour ramp from dark to bright (stops of a perceptual map).
  var RAMP = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
  var lut = colourTable();

  /* The message for RGBA `pixels` of a width x height input. */
  function request(seq, layer, width, height, pixels) {
    var message = new Uint8Array(REQUEST_HEADER + pixels.length);
    var view = new DataView(message.buffer);
    REQUEST_MAGIC.forEach(function (byte, i) { view.setUint8(i, byte); });
    view.setUint32(4, seq, true);
    view.setUint16(8, layer, true);
    view.setUint16(10, width, true);
    view.setUint16(12, height, true);
    message.set(pixels, REQUEST_HEADER);
    return message;
  }

  function reply(buffer) {
    var view = new DataView(buffer);
    var f = {
      seq: view.getUint32(4, true), layer: view.getUint16(8, true),
      units: view.getUint16(10, true), mapH: view.getUint16(12, true),
      mapW: view.getUint16(14, true), rows: view.getUint16(16, true),
      cols: view.getUint16(18, true), k: view.getUint16(20, true),
      low: view.getFloat32(22, true), high: view.getFloat32(26, true)
    };
    var at = REPLY_HEADER;
    f.unitMax = [];
    for (var u = 0; u < f.units; u++, at += 4) { f.unitMax.push(view.getFloat32(at, true)); }
    f.classes = [];
    for (var c = 0; c < f.k; c++, at += 2) { f.classes.push(view.getUint16(at, true)); }
    f.probabilities = [];
    for (var p = 0; p < f.k; p++, at += 4) { f.probabilities.push(view.getFloat32(at, true)); }
    f.tile = new Uint8Array(buffer, at, f.rows * f.mapH * f.cols * f.mapW);
    return f;
  }

  function colourTable() {
    var table = new Uint8ClampedArray(256 * 3);
    for (var v = 0; v < 256; v++) {
      var x = v / 255 * (RAMP.length - 1);
      var i = Math.min(Math.floor(x), RAMP.length - 2), t = x - i;
      for (var c = 0; c < 3; c++) {
        table[v * 3 + c] = RAMP[i][c] + (RAMP[i + 1][c] - RAMP[i][c]) * t;
      }
    }
    return table;
  }

  /* The frame's tile in colour, on `canvas` at one pixel per value. */
  function paintTile(frame, canvas) {
    var width = frame.cols * frame.mapW, height = frame.rows * frame.mapH;
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    var image = new ImageData(width, height);
    var out = image.data, tile = frame.tile;
    for (var i = 0, j = 0; i < tile.length; i++, j += 4) {
      var v = tile[i] * 3;
      out[j] = lut[v]; out[j + 1] = lut[v + 1]; out[j + 2] = lut[v + 2]; out[j + 3] = 255;
    }
    canvas.getContext("2d").putImageData(image, 0, 0);
  }

  /* Cell size on the grid: each map scaled by a whole number. */
  function geometry(frame) {
    var room = (GRID_WIDTH - GAP * (frame.cols - 1)) / (frame.cols * frame.mapW);
    var scale = Math.max(1, Math.floor(room));
    return {
      w: frame.mapW * scale, h: frame.mapH * scale,
      cols: frame.cols, rows: frame.rows, units: frame.units
    };
  }

  function cellAt(g, unit) {
    return { x: (unit % g.cols) * (g.w + GAP), y: Math.floor(unit / g.cols) * (g.h + GAP) };
  }

  /* The unit under grid-canvas pixel (x, y), or null. */
  function unitAt(g, x, y) {
    var col = Math.floor(x / (g.w + GAP)), row = Math.floor(y / (g.h + GAP));
    var unit = row * g.cols + col;
    return col < g.cols && unit >= 0 && unit < g.units ? unit : null;
  }

  /* Every unit's map from the painted tile, scaled, with gaps between. */
  function drawGrid(frame, tile, canvas) {
    var g = geometry(frame);
    var width = g.cols * g.w + GAP * (g.cols - 1), height = g.rows * g.h + GAP * (g.rows - 1);
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    var context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, width, height);
    for (var u = 0; u < frame.units; u++) {
      var at = cellAt(g, u);
      context.drawImage(tile, (u % frame.cols) * frame.mapW, Math.floor(u / frame.cols) * frame.mapH,
        frame.mapW, frame.mapH, at.x, at.y, g.w, g.h);
    }
    return g;
  }

  function outline(canvas, g, units, colour, width) {
    var context = canvas.getContext("2d");
    context.strokeStyle = colour;
    context.lineWidth = width;
    units.forEach(function (unit) {
      var at = cellAt(g, unit);
      context.strokeRect(at.x + width / 2, at.y + width / 2, g.w - width, g.h - width);
    });
  }

  /* One unit's map from the painted tile, enlarged to about `size` pixels. */
  function drawUnit(frame, tile, unit, canvas, size) {
    var scale = Math.max(1, Math.floor(size / Math.max(frame.mapW, frame.mapH)));
    canvas.width = frame.mapW * scale;
    canvas.height = frame.mapH * scale;
    var context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.drawImage(tile, (unit % frame.cols) * frame.mapW, Math.floor(unit / frame.cols) * frame.mapH,
      frame.mapW, frame.mapH, 0, 0, canvas.width, canvas.height);
  }

  /* The `count` units with the largest values, ties to the lower index. */
  function mostActive(frame, count) {
    var order = frame.unitMax.map(function (v, i) { return i; });
    order.sort(function (a, b) { return frame.unitMax[b] - frame.unitMax[a] || a - b; });
    return order.slice(0, Math.min(count, frame.units));
  }

  window.AtlasProbeFrames = {
    request: request, reply: reply, paintTile: paintTile, drawGrid: drawGrid,
    drawUnit: drawUnit, outline: outline, unitAt: unitAt, mostActive: mostActive
  };
})();
