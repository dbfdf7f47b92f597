// FAKE HOST: a recording stand-in for UXP's `uxp` module, only `storage.secureStorage`, for
// loading the panel page in a plain browser (tests/test_premiere_panel.py). It follows Adobe's
// UXP reference: setItem takes a string, ArrayBuffer or TypedArray and rejects an empty value;
// getItem resolves with a Uint8Array. For a key never stored it rejects (the reference does not
// say; the panel must cope either way). Initial items come from window.__fakeSecureItems;
// every call is recorded in window.__fakeSecureLog, the contents are window.__fakeSecureItems.
"use strict";

(function () {
  const items = window.__fakeSecureItems || {};
  window.__fakeSecureItems = items;
  const log = [];
  window.__fakeSecureLog = log;
  const encode = (text) => Uint8Array.from(text, (ch) => ch.charCodeAt(0));
  const secureStorage = {
    get length() { return Object.keys(items).length; },
    async getItem(key) {
      log.push(["getItem", key]);
      if (!(key in items)) throw new Error(`secureStorage: no item ${key}`);
      return encode(items[key]);
    },
    async setItem(key, value) {
      log.push(["setItem", key]);
      if (typeof key !== "string") throw new TypeError("secureStorage: key must be a string");
      let text;
      if (typeof value === "string") text = value;
      else if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
        text = String.fromCharCode(...new Uint8Array(value instanceof ArrayBuffer ? value : value.buffer));
      } else throw new TypeError("secureStorage: value must be a string, ArrayBuffer or TypedArray");
      if (!text) throw new Error("secureStorage: empty value not stored");
      items[key] = text;
    },
    async removeItem(key) {
      log.push(["removeItem", key]);
      delete items[key];
    },
  };
  window.__fakeUxp = { storage: { secureStorage } };
})();
