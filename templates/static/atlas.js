/* Neuron Atlas: search, sorting and filtering of a layer grid, and keyboard
   navigation. A classic script, loaded with `defer` from every page: it
   needs no fetch, modules or workers, so it works from file:// as well as
   from a web server, under the pages' strict Content-Security-Policy. */
(function () {
  "use strict";

  var root = document.documentElement.getAttribute("data-root") || ".";
  var INDEX_FILE = "search-index.js";
  var INDEX_SCHEMA = 1;
  var MAX_RESULTS = 20;

  function href(path) {
    return root === "." ? path : root + "/" + path;
  }

  function words(text) {
    return text.toLowerCase().split(/[\s\/:,]+/).filter(Boolean);
  }

  function isField(element) {
    var tag = element && element.tagName;
    return tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" ||
      (element && element.isContentEditable);
  }

  /* ---- Search across the atlas ---------------------------------------- */

  var search = {
    box: document.getElementById("search"),
    input: document.getElementById("search-input"),
    panel: document.getElementById("search-panel"),
    status: document.getElementById("search-status"),
    list: document.getElementById("search-results"),
    state: "idle",
    entries: null
  };

  function loadIndex() {
    if (search.state !== "idle") {
      return;
    }
    search.state = "loading";
    var script = document.createElement("script");
    script.src = href(INDEX_FILE);
    script.onload = function () {
      var index = window.ATLAS_SEARCH;
      if (!index || index.schema !== INDEX_SCHEMA || !index.layers ||
          !index.strings) {
        failIndex("it does not hold a search index of this version");
        return;
      }
      search.entries = indexEntries(index);
      search.state = "ready";
      runSearch();
    };
    script.onerror = function () {
      failIndex("the file could not be loaded");
    };
    document.head.appendChild(script);
  }

  function failIndex(why) {
    search.state = "failed";
    search.list.textContent = "";
    search.panel.hidden = false;
    search.status.className = "search-status error";
    search.status.setAttribute("role", "alert");
    search.status.textContent = "Search is unavailable: " + INDEX_FILE + " " +
      "at the site's root failed (" + why + "). Rebuild the atlas with " +
      "`atlas build` and publish every file it writes.";
  }

  function pad(number, width) {
    var text = String(number);
    while (text.length < width) {
      text = "0" + text;
    }
    return text;
  }

  function unitPage(layer, index) {
    var folder = layer.folder;
    if (layer.shard) {
      folder += "/" + pad(Math.floor(index / layer.shard), 3);
    }
    return folder + "/" + pad(index, 4) + ".html";
  }

  function indexEntries(index) {
    var entries = [];
    index.layers.forEach(function (layer) {
      var name = layer.name.toLowerCase();
      entries.push({
        title: "Layer " + layer.name,
        detail: layer.units.length + " units",
        path: layer.page,
        fields: [name],
        kind: "layer",
        number: null,
        rank: 0
      });
      layer.units.forEach(function (unit) {
        var label = unit.length > 1 && unit[1] >= 0 ? index.strings[unit[1]] : "";
        var promoted = (unit[2] || []).map(function (position) {
          return index.strings[position];
        });
        var detail = [];
        if (label) {
          detail.push("label " + label);
        }
        if (promoted.length) {
          detail.push("promotes " + promoted.join(", "));
        }
        entries.push({
          title: layer.name + " · unit " + unit[0],
          detail: detail.join(" · "),
          path: unitPage(layer, unit[0]),
          fields: [name, label.toLowerCase()]
            .concat(promoted.map(function (c) { return c.toLowerCase(); })),
          kind: "unit",
          number: String(unit[0]),
          rank: 1
        });
      });
    });
    return entries;
  }

  /* How well one query word matches an entry. The unit number exactly 4:
     on an atlas whose classes are digits, `conv2 7` means unit 7, not the
     units that promote class 7. Then a whole field 3, the start of a field
     2, inside a field 1; the word `unit` or `layer` as the results name
     the entry 1 (`conv2 unit 7`); nowhere 0. */
  function wordScore(word, entry) {
    if (word === entry.number) {
      return 4;
    }
    var best = word === entry.kind ? 1 : 0;
    var fields = entry.number === null
      ? entry.fields : entry.fields.concat([entry.number]);
    fields.forEach(function (field) {
      if (!field) {
        return;
      }
      if (field === word) {
        best = Math.max(best, 3);
      } else if (field.indexOf(word) === 0) {
        best = Math.max(best, 2);
      } else if (field.indexOf(word) > 0) {
        best = Math.max(best, 1);
      }
    });
    return best;
  }

  function matches(query) {
    var terms = words(query);
    if (!terms.length) {
      return [];
    }
    var found = [];
    search.entries.forEach(function (entry, order) {
      var total = 0;
      for (var i = 0; i < terms.length; i += 1) {
        var score = wordScore(terms[i], entry);
        if (!score) {
          return;
        }
        total += score;
      }
      found.push({ entry: entry, score: total, order: order });
    });
    found.sort(function (a, b) {
      return b.score - a.score || a.entry.rank - b.entry.rank ||
        a.order - b.order;
    });
    return found;
  }

  function runSearch() {
    if (search.state !== "ready") {
      return;
    }
    var query = search.input.value;
    var found = matches(query);
    search.list.textContent = "";
    found.slice(0, MAX_RESULTS).forEach(function (hit) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = href(hit.entry.path);
      link.textContent = hit.entry.title;
      item.appendChild(link);
      if (hit.entry.detail) {
        var detail = document.createElement("span");
        detail.textContent = hit.entry.detail;
        item.appendChild(detail);
      }
      search.list.appendChild(item);
    });
    var empty = !words(query).length;
    search.panel.hidden = empty;
    if (empty) {
      search.status.textContent = "";
    } else if (!found.length) {
      search.status.textContent = "Nothing matches " + query.trim() + ".";
    } else {
      var shown = Math.min(found.length, MAX_RESULTS);
      search.status.textContent = found.length === shown
        ? found.length + (found.length === 1 ? " result" : " results")
        : "The first " + shown + " of " + found.length + " results";
    }
  }

  function closePanel(event) {
    if (search.state !== "failed" && !search.box.contains(event.target)) {
      search.panel.hidden = true;
    }
  }

  function followFirst() {
    var first = search.list.querySelector("a");
    if (first) {
      window.location.href = first.href;
    }
  }

  function startSearch() {
    search.box.hidden = false;
    search.input.addEventListener("focus", function () {
      loadIndex();
      runSearch();
    });
    document.addEventListener("mousedown", closePanel);
    search.input.addEventListener("input", function () {
      loadIndex();
      runSearch();
    });
    search.input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        followFirst();
      } else if (event.key === "Escape") {
        search.input.value = "";
        runSearch();
        search.input.blur();
      }
    });
  }

  /* ---- Sorting and filtering a layer's grid --------------------------- */

  var grid = document.getElementById("grid");

  function sortValue(cell, key) {
    if (key === "unit") {
      return Number(cell.id.slice(1));
    }
    if (key === "l") {
      var label = cell.querySelector("b");
      return label ? label.textContent.toLowerCase() : null;
    }
    var raw = cell.getAttribute("data-" + key);
    return raw === null ? null : Number(raw);
  }

  /* Highest first for activation and quality, lowest first otherwise;
     cells without the value go last either way. */
  function compareBy(key, reversed) {
    var descending = key === "a" || key === "q";
    var sign = (descending ? -1 : 1) * (reversed ? -1 : 1);
    return function (a, b) {
      var x = sortValue(a, key);
      var y = sortValue(b, key);
      if (x === null || y === null) {
        return x === y ? 0 : (x === null ? 1 : -1);
      }
      if (x < y) {
        return -sign;
      }
      return x > y ? sign : 0;
    };
  }

  function sortGrid() {
    var key = document.getElementById("grid-sort").value;
    var reversed = document.getElementById("grid-reverse").checked;
    var cells = Array.prototype.slice.call(grid.children);
    var byUnit = compareBy("unit", false);
    var byKey = compareBy(key, reversed);
    cells.sort(function (a, b) {
      return byKey(a, b) || byUnit(a, b);
    });
    var sorted = document.createDocumentFragment();
    cells.forEach(function (cell) {
      sorted.appendChild(cell);
    });
    grid.appendChild(sorted);
  }

  function filterGrid() {
    var terms = words(document.getElementById("grid-filter").value);
    var cells = grid.children;
    var shown = 0;
    for (var i = 0; i < cells.length; i += 1) {
      var text = cells[i].textContent.toLowerCase();
      var hit = terms.every(function (term) {
        return text.indexOf(term) >= 0;
      });
      cells[i].hidden = !hit;
      shown += hit ? 1 : 0;
    }
    document.getElementById("grid-count").textContent = terms.length
      ? "Showing " + shown + " of " + cells.length + " units."
      : cells.length + " units.";
  }

  function startGrid() {
    document.getElementById("grid-controls").hidden = false;
    document.getElementById("grid-sort").addEventListener("change", sortGrid);
    document.getElementById("grid-reverse").addEventListener("change", sortGrid);
    document.getElementById("grid-filter").addEventListener("input", filterGrid);
    filterGrid();
  }

  /* ---- Keyboard ------------------------------------------------------- */

  function follow(kind) {
    var link = document.querySelector("a[data-nav='" + kind + "']");
    if (link) {
      window.location.href = link.href;
    }
    return Boolean(link);
  }

  function onKey(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey ||
        event.metaKey || isField(event.target)) {
      return;
    }
    var done = false;
    if (event.key === "/" && search.input) {
      search.input.focus();
      done = true;
    } else if (event.key === "ArrowLeft") {
      done = follow("prev");
    } else if (event.key === "ArrowRight") {
      done = follow("next");
    } else if (event.key === "u" || event.key === "U") {
      done = follow("up");
    } else if (event.key === "ArrowUp" && window.scrollY === 0) {
      /* At the top of the page the arrow has nothing left to scroll. */
      done = follow("up");
    }
    if (done) {
      event.preventDefault();
    }
  }

  if (search.box && search.input) {
    startSearch();
  }
  if (grid && document.getElementById("grid-controls")) {
    startGrid();
  }
  document.addEventListener("keydown", onKey);
  var keys = document.getElementById("keys");
  if (keys) {
    keys.hidden = false;
  }
}());
