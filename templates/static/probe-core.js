/* Neuron Atlas live probe, the shared core: the one namespace the probe's
   scripts share (window.AtlasProbe), the page's state, and the helpers
   every part uses: error and status messages, the API's JSON. A classic
   script, loaded first; the others add their functions to the namespace. */
(function () {
  "use strict";

  var METHOD_NAMES = { deconvnet: "Deconvnet", guided: "Guided backprop", gradient: "Gradient" };

  var $ = function (id) { return document.getElementById(id); };
  var root = $("probe");
  var api = root.getAttribute("data-api");
  var state = {
    info: null, layer: 0, units: {}, selected: null, wantUnit: null,
    socket: null, open: false, retries: 0, seq: 0, frames: 0, inflight: false, sentAt: {},
    source: null, base: null, dirty: false, pixels: null, last: null,
    times: [], latencies: [], shownAt: 0, stream: null,
    attributing: false, attributedAt: 0, mapUrl: null, cell: null, unitNote: ""
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

  window.AtlasProbe = {
    METHOD_NAMES: METHOD_NAMES, $: $, root: root, api: api, state: state,
    guard: guard, fail: fail, say: say, getJSON: getJSON, expectOk: expectOk
  };
})();
