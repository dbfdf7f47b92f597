// TEST ONLY: the CommonJS `require` that UXP gives a panel, for a plain browser page loaded
// from file:// (Chromium with --allow-file-access-from-files). Relative names resolve
// against the requiring file, as in UXP; "premierepro" and "uxp" are the recording fakes.
"use strict";

(function () {
  const cache = new Map();

  function read(url) {
    const xhr = new XMLHttpRequest();
    xhr.open("GET", url, false);
    xhr.send();
    if (!xhr.responseText) throw new Error(`cannot load ${url}`);
    return xhr.responseText;
  }

  function requireFrom(base) {
    return function require(name) {
      if (name === "premierepro") return window.__fakePremierepro;
      if (name === "uxp") return window.__fakeUxp;
      if (!name.startsWith(".")) throw new Error(`the panel may require only its own files, premierepro and uxp, not ${name}`);
      const url = new URL(name, base).href;
      if (!cache.has(url)) {
        const module = { exports: {} };
        cache.set(url, module);
        const body = new Function("module", "exports", "require", `${read(url)}\n//# sourceURL=${url}`);
        body(module, module.exports, requireFrom(url));
      }
      return cache.get(url).exports;
    };
  }

  window.require = requireFrom(location.href);
})();
