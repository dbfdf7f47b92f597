// The panel's connection to the sidecar bridge (docs/architecture.md, "Bridge HTTP API"):
// GET /v1/info with the token in a header tells "down" from "wrong token" (a refused
// WebSocket handshake cannot say why), then one WebSocket carries job events and commands.
// UXP on macOS reaches 127.0.0.1 literals, not "localhost", so the host is fixed.
"use strict";

const { plainError } = require("./jobs.js");

const HOST = "127.0.0.1";
const DEFAULT_PORT = 47311; // liveedit serve --bridge-port default
const COMMAND_TIMEOUT_MS = 15000;

/** @typedef {"connecting" | "connected" | "down" | "unpaired" | "unauthorized" | "refused" | "error"} ConnectionState */

/**
 * @typedef {object} BridgeOptions
 * @property {number} port
 * @property {string} token
 * @property {typeof fetch} [fetch]
 * @property {typeof WebSocket} [WebSocket]
 * @property {(state: ConnectionState, message: string, info?: any) => void} [onState]
 * @property {(job: import("./jobs.js").Job) => void} [onJob]
 * @property {number} [retryMs]   0: do not reconnect by itself
 */

class BridgeClient {
  /** @param {BridgeOptions} options */
  constructor(options) {
    this.port = options.port || DEFAULT_PORT;
    this.token = options.token || "";
    this.fetch = options.fetch || globalThis.fetch.bind(globalThis);
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    this.onState = options.onState || (() => {});
    this.onJob = options.onJob || (() => {});
    this.retryMs = options.retryMs ?? 3000;
    /** @type {ConnectionState} */
    this.state = "connecting";
    /** @type {WebSocket | null} */
    this.socket = null;
    /** @type {Map<string, {resolve: (v: any) => void, reject: (e: Error) => void, timer: any}>} */
    this.pending = new Map();
    this.nextId = 1;
    this.closed = false;
    /** @type {any} */
    this.retryTimer = null;
    this.info = null;
  }

  get baseUrl() {
    return `http://${HOST}:${this.port}`;
  }

  get wsUrl() {
    return `ws://${HOST}:${this.port}/v1/events?token=${encodeURIComponent(this.token)}`;
  }

  /** @param {ConnectionState} state @param {string} message @param {any} [info] */
  setState(state, message, info) {
    this.state = state;
    this.onState(state, message, info);
  }

  downMessage() {
    return `No LiveEdit sidecar answers on ${HOST}:${this.port}. Start it in a terminal with ` +
      `"liveedit serve" (its bridge listens on port ${this.port}; change the port in Settings if you ` +
      "started it with --bridge-port), then press Retry.";
  }

  /** Check the sidecar and open the event socket. Resolves once the state is known. */
  async connect() {
    this.closed = false;
    clearTimeout(this.retryTimer);
    this.setState("connecting", `Connecting to the sidecar on ${HOST}:${this.port}...`);
    if (!this.token) {
      this.setState("unpaired", "Pair this panel with the sidecar: run \"liveedit premiere pair\" in a terminal " +
        "and enter the code it shows under Settings > Pairing code.");
      return;
    }
    let response;
    try {
      response = await this.fetch(`${this.baseUrl}/v1/info`, { headers: { Authorization: `Bearer ${this.token}` } });
    } catch {
      this.setState("down", this.downMessage());
      this.scheduleRetry();
      return;
    }
    if (!response.ok) {
      let error = null;
      try {
        error = (await response.json()).error;
      } catch {
        error = { code: "error", message: `HTTP ${response.status}` };
      }
      const state = response.status === 401 ? "unauthorized" : response.status === 403 ? "refused" : "error";
      this.setState(state, plainError(error));
      return;
    }
    this.info = await response.json();
    await this.openSocket();
  }

  /** @returns {Promise<void>} */
  openSocket() {
    return new Promise((resolve) => {
      let opened = false;
      const socket = new this.WebSocket(this.wsUrl);
      this.socket = socket;
      socket.onopen = () => {
        opened = true;
        const random = this.info && this.info.random_weights ? " (RANDOM weights: results are not real edits)" : "";
        const model = this.info && this.info.model_preset ? `, model ${this.info.model_preset}${random}` : "";
        this.setState("connected", `Connected to LiveEdit ${this.info ? this.info.version : ""} on ${HOST}:${this.port}${model}`,
          this.info);
        resolve();
      };
      socket.onmessage = (event) => this.receive(String(event.data));
      socket.onclose = () => {
        if (this.socket === socket) this.socket = null;
        this.failPending("the connection to the sidecar closed");
        if (!this.closed) {
          this.setState("down", opened ? `The sidecar on ${HOST}:${this.port} stopped. ${this.downMessage()}`
            : this.downMessage());
          this.scheduleRetry();
        }
        resolve();
      };
    });
  }

  scheduleRetry() {
    if (this.retryMs > 0 && !this.closed) {
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
    }
  }

  /** @param {string} text */
  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === "job" && message.job) {
      this.onJob(message.job);
      return;
    }
    const waiter = message.request_id != null ? this.pending.get(String(message.request_id)) : undefined;
    if (!waiter) return;
    this.pending.delete(String(message.request_id));
    clearTimeout(waiter.timer);
    if (message.type === "error") {
      const err = new Error(plainError(message.error));
      err.name = "BridgeError";
      waiter.reject(err);
    } else {
      if (message.job) this.onJob(message.job);
      waiter.resolve(message.job || message.jobs);
    }
  }

  /** @param {string} reason */
  failPending(reason) {
    for (const [id, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(reason));
      this.pending.delete(id);
    }
  }

  /**
   * Send a command over the event socket and wait for its answer.
   * @param {object} command
   * @returns {Promise<any>}
   */
  command(command) {
    const socket = this.socket;
    if (!socket || this.state !== "connected") {
      return Promise.reject(new Error("not connected to the sidecar; " + this.downMessage()));
    }
    const requestId = `panel-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new Error("the sidecar did not answer in time; check that it is still running"));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(requestId, { resolve, reject, timer });
      socket.send(JSON.stringify({ ...command, request_id: requestId }));
    });
  }

  /** @param {object} body  POST /v1/jobs body @returns {Promise<import("./jobs.js").Job>} */
  submit(body) {
    return this.command({ type: "submit", job: body });
  }

  /** @param {string} jobId @returns {Promise<import("./jobs.js").Job>} */
  cancel(jobId) {
    return this.command({ type: "cancel", job_id: jobId });
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close();
    this.socket = null;
  }
}

/**
 * Exchange the one-time code `liveedit premiere pair` shows for the sidecar's install token
 * (POST /v1/pairing/exchange, the one bridge request that needs no token).
 * @param {number} port
 * @param {string} code
 * @param {typeof fetch} [fetchFn]
 * @returns {Promise<string>} the token
 */
async function pairWithCode(port, code, fetchFn) {
  const doFetch = fetchFn || globalThis.fetch.bind(globalThis);
  if (!String(code).trim()) throw new Error("Enter the code that \"liveedit premiere pair\" shows.");
  let response;
  try {
    response = await doFetch(`http://${HOST}:${port}/v1/pairing/exchange`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code: String(code) }) });
  } catch {
    throw new Error(`No LiveEdit sidecar answers on ${HOST}:${port}. Start it with "liveedit serve", then pair.`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON */
  }
  if (!response.ok || !body || typeof body.token !== "string" || !body.token) {
    throw new Error(plainError(body && body.error ? body.error : { code: "error", message: `HTTP ${response.status}` }));
  }
  return body.token;
}

module.exports = { BridgeClient, HOST, DEFAULT_PORT, pairWithCode };
