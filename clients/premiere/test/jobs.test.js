"use strict";
// The job list: progress in plain words, errors, cancel, placement bookkeeping.
const test = require("node:test");
const assert = require("node:assert/strict");
const { JobBook, plainError, duration } = require("../src/jobs.js");

const region = (over = {}) => ({ index: 0, state: "running", frames_done: 6, frame_count: 24, fps: 3.25,
                                 eta_seconds: 65, output: null, otio: null, error: null, ...over });
const job = (over = {}) => ({ id: "job-1", state: "running", regions: [region()], created: "2026-11-20T10:00:00Z",
                              label: "Premiere", ...over });

test("a running job shows frames, speed and time left", () => {
  const book = new JobBook();
  book.update(job());
  const [v] = book.views();
  assert.equal(v.progress, 0.25);
  assert.equal(v.detail, "rendering: 6 of 24 frames, 3.3 frames/s, about 1 min 05 s left");
  assert.equal(v.canCancel, true);
  assert.equal(duration(12.4), "12 s");
});

test("failures list each region's error; cancelled and done cannot be cancelled", () => {
  const book = new JobBook();
  book.update(job({ state: "failed", regions: [region({ state: "failed", error: "media is truncated" }),
                                               region({ index: 1, state: "done", frames_done: 24 })] }));
  const [v] = book.views();
  assert.equal(v.detail, "failed: 1 of 2 regions did not render");
  assert.equal(v.error, "region 1: media is truncated");
  assert.equal(v.canCancel, false);
  book.update(job({ id: "job-2", state: "cancelled", created: "2026-11-20T11:00:00Z" }));
  assert.deepEqual(book.views().map((x) => x.id), ["job-2", "job-1"]); // newest first
});

test("a late 'running' snapshot never undoes a finished job", () => {
  const book = new JobBook();
  book.update(job({ state: "done" }));
  book.update(job({ state: "running" }));
  assert.equal(book.jobs.get("job-1").state, "done");
});

test("plans survive a reload; only done, unplaced jobs of this panel are ready to place", () => {
  let stored = null;
  const storage = { load: () => stored, save: (t) => { stored = t; } };
  const book = new JobBook(storage);
  const placement = { index: 0, recordStart: "0", recordEnd: "10", sourceTrack: 0, sourceClipId: "v0:0",
                      sourceClipName: "a", head: 0, frameCount: 24, mediaRate: [25, 1], instruction: "snow" };
  book.addPlan("job-1", [placement], "seq", "above");
  book.update(job());
  assert.deepEqual(book.readyToPlace(), []);
  book.update(job({ state: "done" }));
  book.update(job({ id: "elsewhere", state: "done" }));
  assert.deepEqual(book.readyToPlace().map((j) => j.id), ["job-1"]);
  const again = new JobBook(storage);
  again.update(job({ state: "done" }));
  assert.deepEqual(again.readyToPlace().map((j) => j.id), ["job-1"]);
  again.markPlaced("job-1", "the track is locked");
  assert.equal(again.views()[0].error, "the track is locked");
  assert.deepEqual(again.readyToPlace(), []);
  again.markPlaced("job-1");
  assert.equal(again.views()[0].detail, "rendered and placed in the sequence");
  assert.equal(new JobBook({ load: () => "{not json" }).readyToPlace().length, 0);
});

test("bridge error codes become instructions", () => {
  assert.match(plainError({ code: "unauthorized", message: "x" }), /refused the token.*Settings/);
  assert.match(plainError({ code: "invalid_job", message: "regions[0].media does not exist" }), /^Regions\[0\]\.media does not exist/);
  assert.match(plainError({ code: "unavailable", message: "closed" }), /liveedit serve/);
  assert.equal(plainError(null), "Unknown error from the sidecar.");
});
