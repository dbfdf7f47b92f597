// Panel entry point (manifest "main": index.html loads this). UXP provides `require` for
// host modules ("premierepro") and for the plugin's own files (CommonJS).
"use strict";

const { Panel } = require("./src/panel.js");

/** @type {import("@adobe/premierepro").premierepro} */
const ppro = /** @type {any} */ (require("premierepro"));
// The install token lives in UXP's secure storage (encrypted per user); localStorage keeps
// only the ordinary settings.
const secureStorage = require("uxp").storage.secureStorage;
const panel = new Panel({ document, ppro, storage: localStorage, secureStorage });
panel.start();
