"use strict";
// The bridge client's connection states with scripted fetch/WebSocket stand-ins (the real
// bridge is exercised by tests/test_premiere_panel.py in Chromium).
const test = require("node:test");
const assert = require("node:assert/strict");
const { BridgeClient } = require("../src/bridge.js");

class ScriptedSocket {
  static last = null;
  constructor(url) {
    this.url = url;
    this.sent = [];
    ScriptedSocket.last = this;
    setTimeout(() => this.onopen && this.onopen(), 0);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.onclose && this.onclose(); }
}

const ok = (body) => async () => ({ ok: true, status: 200, json: async () => body });

function client(fetch, states) {
  return new BridgeClient({ port: 5555, token: "tok en", fetch, WebSocket: /** @type {any} */ (ScriptedSocket),
                            retryMs: 0, onState: (s, m) => states.push([s, m]) });
}

test("a stopped sidecar says how to start it", async () => {
  const states = [];
  await client(async () => { throw new TypeError("Failed to fetch"); }, states).connect();
  const [state, message] = states.at(-1);
  assert.equal(state, "down");
  assert.match(message, /No LiveEdit sidecar answers on 127\.0\.0\.1:5555.*liveedit serve.*Retry/);
});

test("a wrong token is told apart from a stopped sidecar", async () => {
  const states = [];
  const refuse = async () => ({ ok: false, status: 401, json: async () => ({ error: { code: "unauthorized", message: "m" } }) });
  await client(refuse, states).connect();
  assert.equal(states.at(-1)[0], "unauthorized");
  assert.match(states.at(-1)[1], /refused the token/);
});

test("connected: commands carry request ids and resolve with the answer; a closed socket says so", async () => {
  const states = [];
  const jobs = [];
  const c = client(ok({ version: "1.2", model_preset: "tiny", random_weights: true }), states);
  c.onJob = (j) => jobs.push(j);
  await c.connect();
  const socket = ScriptedSocket.last;
  assert.equal(socket.url, "ws://127.0.0.1:5555/v1/events?token=tok%20en");
  assert.match(states.at(-1)[1], /tiny \(RANDOM weights/);
  const answer = c.cancel("j1");
  const sent = socket.sent[0];
  assert.deepEqual([sent.type, sent.job_id], ["cancel", "j1"]);
  socket.onmessage({ data: JSON.stringify({ type: "result", request_id: sent.request_id, job: { id: "j1", state: "cancelled" } }) });
  assert.equal((await answer).state, "cancelled");
  assert.equal(jobs.length, 1);
  const failing = c.submit({});
  socket.onmessage({ data: JSON.stringify({ type: "error", request_id: socket.sent[1].request_id,
                                            error: { code: "invalid_job", message: "the job has no regions" } }) });
  await assert.rejects(failing, /The job has no regions/);
  const pending = c.submit({});
  socket.onclose();
  await assert.rejects(pending, /connection to the sidecar closed/);
  assert.equal(states.at(-1)[0], "down");
  assert.match(states.at(-1)[1], /stopped/);
});

test("pairing exchanges the code for the token and words a refusal plainly", async () => {
  const { pairWithCode } = require("../src/bridge.js");
  /** @type {any[]} */
  const sent = [];
  const token = await pairWithCode(5555, "abcd-efgh", /** @type {any} */ (async (url, init) => {
    sent.push([url, init]);
    return { ok: true, status: 200, json: async () => ({ token: "the-token" }) };
  }));
  assert.equal(token, "the-token");
  assert.equal(sent[0][0], "http://127.0.0.1:5555/v1/pairing/exchange");
  assert.equal(sent[0][1].method, "POST");
  assert.deepEqual(JSON.parse(sent[0][1].body), { code: "abcd-efgh" });
  assert.equal(sent[0][1].headers.Authorization, undefined); // the code is the credential here

  const refused = /** @type {any} */ (async () => ({ ok: false, status: 403,
    json: async () => ({ error: { code: "wrong_code", message: "wrong pairing code; check it (4 tries left)" } }) }));
  await assert.rejects(pairWithCode(5555, "x", refused), /^Error: Wrong pairing code; check it \(4 tries left\)$/);
  const down = /** @type {any} */ (async () => { throw new TypeError("Failed to fetch"); });
  await assert.rejects(pairWithCode(5555, "x", down), /No LiveEdit sidecar answers on 127\.0\.0\.1:5555.*liveedit serve/);
  await assert.rejects(pairWithCode(5555, "  ", down), /Enter the code/);
});
