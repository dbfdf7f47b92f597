// Panel entry point (manifest "main": index.html loads this). UXP provides `require` for
// host modules ("premierepro") and for the plugin's own files (CommonJS).
"use strict";

const { Panel } = require("./src/panel.js");

/** @type {import("@adobe/premierepro").premierepro} */
const ppro = /** @type {any} */ (require("premierepro"));
const panel = new Panel({ document, ppro, storage: localStorage });
panel.start();
