// The panel: wires the page (index.html) to the bridge client, the job book and Premiere.
"use strict";

const { BridgeClient, DEFAULT_PORT, pairWithCode } = require("./bridge.js");
const { JobBook } = require("./jobs.js");
const regions = require("./regions.js");
const { PremiereHost } = require("./premiere.js");

const SETTINGS_KEY = "liveedit.settings";
const TOKEN_KEY = "liveedit.token"; // in UXP's secure storage, never in localStorage
const PLANS_KEY = "liveedit.plans";
const PREVIEW_POLL_MS = 250; // there is no playhead event in UXP: poll
const CLIPS_REFRESH_MS = 2000;

/** Premiere's marker colour indices (0..7, as in ExtendScript; unverified on 26.x). */
const MARKER_COLORS = ["Green", "Red", "Purple", "Orange", "Yellow", "White", "Blue", "Cyan"];

/**
 * UXP's `require("uxp").storage.secureStorage`: values encrypted with the user's credentials.
 * @typedef {object} SecureStorage
 * @property {(key: string) => Promise<Uint8Array | ArrayBuffer | string | null | undefined>} getItem
 * @property {(key: string, value: string) => Promise<void>} setItem
 * @property {(key: string) => Promise<void>} removeItem
 */

/**
 * @typedef {object} Settings
 * @property {number} port
 * @property {string} outputDir
 * @property {number} handles
 * @property {string} placement
 * @property {string} format
 * @property {number} markerColor
 * @property {string} range
 */

class Panel {
  /**
   * @param {{document: Document, ppro: import("@adobe/premierepro").premierepro, storage: Storage,
   *          secureStorage: SecureStorage, WebSocket?: typeof WebSocket, fetch?: typeof fetch}} env
   */
  constructor(env) {
    this.doc = env.document;
    this.storage = env.storage;
    this.env = env;
    this.host = new PremiereHost(env.ppro);
    this.book = new JobBook({ load: () => this.storage.getItem(PLANS_KEY), save: (t) => this.storage.setItem(PLANS_KEY, t) });
    /** @type {Settings} */
    this.settings = { port: DEFAULT_PORT, outputDir: "", handles: 0, placement: "above", format: "prores",
                      markerColor: 0, range: "selection" };
    this.secure = env.secureStorage;
    this.token = "";
    try {
      Object.assign(this.settings, JSON.parse(this.storage.getItem(SETTINGS_KEY) || "{}"));
    } catch {
      /* keep the defaults */
    }
    /** @type {BridgeClient | null} */
    this.bridge = null;
    /** @type {Set<string>} */
    this.placing = new Set();
    this.previewKey = "";
    /** @type {{clips: import("./regions.js").TimelineClip[], at: number} | null} */
    this.clipCache = null;
    /** @type {any} */
    this.previewTimer = null;
  }

  /** @param {string} id @returns {any} */
  el(id) {
    const node = this.doc.getElementById(id);
    if (!node) throw new Error(`panel page lacks #${id}`);
    return node;
  }

  async start() {
    const s = this.settings;
    this.el("port").value = String(s.port);
    this.el("output-dir").value = s.outputDir;
    this.el("handles").value = String(s.handles);
    this.el("placement").value = s.placement;
    this.el("format").value = s.format;
    this.el("range").value = s.range;
    const colors = this.el("marker-color");
    MARKER_COLORS.forEach((name, i) => {
      const option = this.doc.createElement("option");
      option.value = String(i);
      option.textContent = name;
      colors.appendChild(option);
    });
    colors.value = String(s.markerColor);
    this.showRangeOptions();
    this.el("range").addEventListener("change", () => this.showRangeOptions());
    this.el("save-settings").addEventListener("click", () => this.saveSettingsAndConnect());
    this.el("pair").addEventListener("click", () => this.pair());
    this.el("retry").addEventListener("click", () => this.connect());
    this.el("submit").addEventListener("click", () => this.submit());
    this.el("jobs").addEventListener("click", (/** @type {any} */ event) => {
      const button = event.target && event.target.closest ? event.target.closest("button[data-cancel]") : null;
      if (button) this.cancel(button.getAttribute("data-cancel"));
    });
    this.el("preview-on").addEventListener("change", () => this.schedulePreview(0));
    this.token = await this.loadToken();
    this.connect();
    this.schedulePreview(PREVIEW_POLL_MS);
  }

  /** The token from secure storage; one an older panel left in localStorage settings moves there. */
  async loadToken() {
    /** @type {any} */
    const old = this.settings;
    if (typeof old.token === "string") {
      const legacy = old.token.trim();
      delete old.token;
      this.storage.setItem(SETTINGS_KEY, JSON.stringify(this.settings));
      if (legacy) {
        try {
          await this.secure.setItem(TOKEN_KEY, legacy);
        } catch {
          /* kept for this session only; the panel asks to pair when it starts next */
        }
        return legacy;
      }
    }
    try {
      return decodeStored(await this.secure.getItem(TOKEN_KEY));
    } catch {
      return ""; // nothing stored (or the store was lost): pair again
    }
  }

  /** Exchange the code `liveedit premiere pair` shows for the token, keep it, connect. */
  async pair() {
    const s = this.readSettings();
    const note = this.el("pair-status");
    note.textContent = "Pairing...";
    try {
      const token = await pairWithCode(s.port, String(this.el("pairing-code").value), this.env.fetch);
      await this.secure.setItem(TOKEN_KEY, token);
      this.token = token;
      this.el("pairing-code").value = "";
      note.textContent = "Paired with the sidecar.";
      await this.connect();
    } catch (error) {
      note.textContent = errorText(error);
    }
  }

  showRangeOptions() {
    const range = this.el("range").value;
    this.el("marker-options").hidden = range !== "markers";
    this.el("instruction-row").hidden = range === "markers";
  }

  readSettings() {
    const s = this.settings;
    s.port = Number(this.el("port").value) || DEFAULT_PORT;
    s.outputDir = String(this.el("output-dir").value).trim();
    s.handles = Number(this.el("handles").value);
    s.placement = this.el("placement").value;
    s.format = this.el("format").value;
    s.markerColor = Number(this.el("marker-color").value);
    s.range = this.el("range").value;
    this.storage.setItem(SETTINGS_KEY, JSON.stringify(s));
    return s;
  }

  saveSettingsAndConnect() {
    this.readSettings();
    this.connect();
  }

  connect() {
    if (this.bridge) this.bridge.close();
    this.bridge = new BridgeClient({
      port: this.settings.port,
      token: this.token,
      fetch: this.env.fetch,
      WebSocket: this.env.WebSocket,
      onState: (state, message) => this.showConnection(state, message),
      onJob: (job) => {
        this.book.update(job);
        this.renderJobs();
        this.placeFinished();
      },
    });
    return this.bridge.connect();
  }

  /** @param {string} state @param {string} message */
  showConnection(state, message) {
    const status = this.el("status");
    status.setAttribute("data-state", state);
    this.el("status-message").textContent = message;
    this.el("retry").hidden = state === "connected" || state === "connecting";
    this.el("submit").disabled = state !== "connected";
  }

  /** @param {string} message */
  formError(message) {
    this.el("form-error").textContent = message;
  }

  async submit() {
    this.formError("");
    const s = this.readSettings();
    const bridge = this.bridge;
    if (!bridge || bridge.state !== "connected") {
      this.formError("Not connected to the sidecar; see the status line above.");
      return;
    }
    try {
      const { project, sequence } = await this.host.active();
      if (!s.outputDir && project.path) {
        s.outputDir = project.path.replace(/[\\/][^\\/]*$/, "") + "/LiveEdit Renders";
        this.el("output-dir").value = s.outputDir;
      }
      const instruction = String(this.el("instruction").value);
      const seed = Number(this.el("seed").value || 0);
      const rate = await this.host.sequenceRate(sequence);
      const { clips, selected } = await this.host.readClips(sequence, s.outputDir);
      let picked;
      if (s.range === "selection") picked = regions.regionsFromSelection(selected, instruction);
      else if (s.range === "inout") {
        const { inPoint, outPoint } = await this.host.readInOut(sequence);
        picked = regions.regionsFromInOut(clips, inPoint, outPoint, instruction);
      } else picked = regions.regionsFromMarkers(clips, await this.host.readMarkers(sequence), s.markerColor);
      const plan = regions.buildJob(picked, { seed, handles: s.handles, outputDir: s.outputDir, format: s.format,
                                             sequenceRate: rate, label: `Premiere: ${sequence.name || "sequence"}` });
      this.el("submit").disabled = true;
      const job = await bridge.submit(plan.body);
      this.book.addPlan(job.id, plan.placements, sequence.guid ? sequence.guid.toString() : "", s.placement);
      this.book.update(job);
      this.renderJobs();
      this.placeFinished();
    } catch (error) {
      this.formError(errorText(error));
    } finally {
      this.el("submit").disabled = !this.bridge || this.bridge.state !== "connected";
    }
  }

  /** @param {string | null} jobId */
  async cancel(jobId) {
    if (!jobId || !this.bridge) return;
    try {
      this.book.update(await this.bridge.cancel(jobId));
      this.renderJobs();
    } catch (error) {
      this.formError(errorText(error));
    }
  }

  async placeFinished() {
    for (const job of this.book.readyToPlace()) {
      if (this.placing.has(job.id)) continue;
      this.placing.add(job.id);
      try {
        await this.host.placeResults(job, this.book.plans[job.id]);
        this.book.markPlaced(job.id);
      } catch (error) {
        this.book.markPlaced(job.id, errorText(error));
      } finally {
        this.placing.delete(job.id);
        this.renderJobs();
      }
    }
  }

  renderJobs() {
    const list = this.el("jobs");
    list.textContent = "";
    for (const view of this.book.views()) {
      const row = this.doc.createElement("li");
      row.setAttribute("data-job-id", view.id);
      row.setAttribute("data-state", view.state);
      const title = this.doc.createElement("div");
      title.className = "job-title";
      title.textContent = view.title;
      const bar = this.doc.createElement("progress");
      bar.max = 1;
      bar.value = view.progress;
      const detail = this.doc.createElement("div");
      detail.className = "job-detail";
      detail.textContent = view.detail;
      row.append(title, bar, detail);
      if (view.error) {
        const error = this.doc.createElement("div");
        error.className = "job-error";
        error.textContent = view.error;
        row.append(error);
      }
      if (view.canCancel) {
        const button = this.doc.createElement("button");
        button.textContent = "Cancel";
        button.setAttribute("data-cancel", view.id);
        row.append(button);
      }
      list.append(row);
    }
  }

  /** @param {number} ms */
  schedulePreview(ms) {
    clearTimeout(this.previewTimer);
    this.previewTimer = setTimeout(() => this.pollPreview().finally(() => this.schedulePreview(PREVIEW_POLL_MS)), ms);
  }

  /** Follow the playhead: one image request per new (frame, instruction, seed); the bridge
   * cancels this client's older request, so the latest always wins. */
  async pollPreview() {
    const bridge = this.bridge;
    const image = this.el("preview");
    const note = this.el("preview-status");
    if (!this.el("preview-on").checked || !bridge || bridge.state !== "connected") return;
    try {
      const { sequence } = await this.host.active();
      const now = Date.now();
      if (!this.clipCache || now - this.clipCache.at > CLIPS_REFRESH_MS) {
        this.clipCache = { clips: (await this.host.readClips(sequence, this.settings.outputDir)).clips, at: now };
      }
      const hit = regions.frameAtPlayhead(this.clipCache.clips, await this.host.playhead(sequence));
      if (!hit) {
        note.textContent = "No video clip under the playhead.";
        return;
      }
      const instruction = String(this.el("instruction").value).trim();
      const side = instruction ? "edit" : "source";
      const seed = Number(this.el("seed").value || 0);
      const key = `${hit.clip.mediaPath}|${hit.frame}|${instruction}|${seed}`;
      if (key === this.previewKey) return;
      this.previewKey = key;
      image.src = regions.previewUrl(bridge.baseUrl, { token: bridge.token, media: hit.clip.mediaPath, frame: hit.frame,
                                                       instruction, seed, side });
      note.textContent = `${hit.clip.name}, source frame ${hit.frame}${side === "source" ? " (type an instruction to see the edit)" : ""}`;
    } catch (error) {
      note.textContent = errorText(error);
    }
  }
}

/**
 * Secure storage answers a Uint8Array (the UXP reference); accept text or an ArrayBuffer too.
 * @param {Uint8Array | ArrayBuffer | string | null | undefined} value
 */
function decodeStored(value) {
  if (value == null) return "";
  if (typeof value === "string") return value.trim();
  const bytes = value instanceof Uint8Array ? value : new Uint8Array(value);
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte); // the token is ASCII (URL-safe base64)
  return text.trim();
}

/** @param {unknown} error */
function errorText(error) {
  const text = error instanceof Error ? error.message : String(error);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

module.exports = { Panel, MARKER_COLORS, TOKEN_KEY, decodeStored };
