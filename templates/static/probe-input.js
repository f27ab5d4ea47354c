/* Neuron Atlas live probe, the input side: the webcam, uploads, dataset
   images and still frames, drawn on the input canvas as the model sees
   them (mirrored, inverted). Adds setUpInputs, showDataset and stillPixels
   to window.AtlasProbe; sends camera frames through the stream. */
(function (probe) {
  "use strict";

  var $ = probe.$, state = probe.state, api = probe.api;
  var guard = probe.guard, fail = probe.fail, say = probe.say, expectOk = probe.expectOk;

  /* ---- inputs ---- */

  function setUpInputs(info) {
    $("source-upload").addEventListener("change", guard(upload));
    $("dataset-show").addEventListener("click", guard(function () {
      showDataset(parseInt($("dataset-index").value, 10) || 0);
    }));
    $("dataset-random").addEventListener("click", guard(function () {
      showDataset(Math.floor(Math.random() * info.dataset.count));
    }));
    $("invert").addEventListener("change", guard(function () { state.dirty = true; probe.pump(); }));
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
      probe.pump();
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
      if (state.open && !state.inflight) { probe.send(cameraPixels()); }
      probe.maybeRefreshAttribution();
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

  probe.setUpInputs = setUpInputs;
  probe.showDataset = showDataset;
  probe.stillPixels = stillPixels;
})(window.AtlasProbe);
