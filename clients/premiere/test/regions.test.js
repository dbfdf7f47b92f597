"use strict";
// Building jobs from what was picked in Premiere, and where results go back.
const test = require("node:test");
const assert = require("node:assert/strict");
const tm = require("../src/timemap.js");
const regions = require("../src/regions.js");
const { assignTracks } = require("../src/placement.js");

const SEQ = tm.rate(24000, 1001);
const TPF = tm.ticksPerFrame(SEQ);
const f = (/** @type {number} */ n) => BigInt(n) * TPF;

/** @returns {import("../src/regions.js").TimelineClip} */
function clip(id, track, start, end, inFrame, extra = {}) {
  return { id, name: id, mediaPath: `/media/${id}.mov`, trackIndex: track,
           timing: { start: f(start), end: f(end), inPoint: f(inFrame), mediaRate: SEQ }, ...extra };
}

test("visible pieces: the topmost enabled clip wins, LiveEdit results and gaps are skipped", () => {
  const a = clip("a", 0, 0, 100, 0);
  const b = clip("b", 1, 40, 60, 10);
  const ours = clip("ours", 2, 0, 100, 0, { ours: true });
  const off = clip("off", 3, 0, 100, 0, { disabled: true });
  const c = clip("c", 0, 120, 150, 0);
  const pieces = regions.visiblePieces([a, b, ours, off, c], f(20), f(130));
  assert.deepEqual(pieces.map((p) => [p.clip.id, Number(p.start / TPF), Number(p.end / TPF)]),
    [["a", 20, 40], ["b", 40, 60], ["a", 60, 100], ["c", 120, 130]]);
});

test("selection regions refuse an empty selection and LiveEdit results", () => {
  assert.throws(() => regions.regionsFromSelection([], "x"), /no video clip is selected/);
  assert.throws(() => regions.regionsFromSelection([clip("r", 1, 0, 5, 0, { ours: true })], "x"), /LiveEdit results/);
  assert.equal(regions.regionsFromSelection([clip("a", 0, 0, 5, 0)], "x").length, 1);
});

test("in/out regions need marks and a clip", () => {
  const a = clip("a", 0, 0, 100, 0);
  assert.throws(() => regions.regionsFromInOut([a], 0n, 0n, "x"), /mark in \(I\) and out \(O\)/);
  assert.throws(() => regions.regionsFromInOut([a], f(200), f(300), "x"), /no video clip between/);
  const [r] = regions.regionsFromInOut([a], f(10), f(20), "snow");
  assert.deepEqual([r.rangeStart, r.rangeEnd, r.instruction], [f(10), f(20), "snow"]);
});

test("marker regions take the instruction from the marker name and only the chosen colour", () => {
  const a = clip("a", 0, 0, 100, 0);
  const markers = [
    { name: "make it snow", colorIndex: 1, start: f(10), duration: f(5) },
    { name: "ignored", colorIndex: 0, start: f(30), duration: f(5) },
  ];
  const picked = regions.regionsFromMarkers([a], markers, 1);
  assert.deepEqual(picked.map((r) => [r.instruction, r.rangeStart, r.rangeEnd]), [["make it snow", f(10), f(15)]]);
  assert.throws(() => regions.regionsFromMarkers([a], markers, 4), /no sequence marker has the chosen colour/);
  assert.throws(() => regions.regionsFromMarkers([a], [{ name: "p", colorIndex: 1, start: f(1), duration: 0n }], 1),
    /point marker; give it a duration/);
  assert.throws(() => regions.regionsFromMarkers([a], [{ name: " ", colorIndex: 1, start: f(1), duration: f(2) }], 1),
    /has no name/);
});

test("the job body matches the bridge contract and the plan keeps ticks as text", () => {
  const a = clip("a", 0, 100, 148, 37);
  const plan = regions.buildJob([{ clip: a, instruction: "  snowy  ", rangeStart: f(110), rangeEnd: f(120) }],
    { seed: 7, handles: 12, outputDir: "/renders", sequenceRate: SEQ });
  assert.deepEqual(plan.body, {
    regions: [{ media: "/media/a.mov", first_frame: 47, frame_count: 10, instruction: "snowy", seed: 7, handles: 12,
                record_start: { frame: 110, rate: [24000, 1001] } }],
    output_dir: "/renders", format: "prores", label: "Premiere" });
  const [p] = plan.placements;
  assert.equal(p.recordStart, String(f(110)));
  assert.equal(p.head, 12);
  assert.deepEqual(JSON.parse(JSON.stringify(plan.placements)), plan.placements); // survives storage
  // The head handle stops at the first frame of the media, as the sidecar's does.
  const early = regions.buildJob([{ clip: clip("b", 0, 0, 10, 3), instruction: "x" }],
    { seed: 0, handles: 12, outputDir: "C:\\renders", sequenceRate: SEQ });
  assert.equal(early.placements[0].head, 3);
});

test("bad job options are refused in plain words", () => {
  const r = [{ clip: clip("a", 0, 0, 10, 0), instruction: "x" }];
  const o = { seed: 0, handles: 0, outputDir: "/out", sequenceRate: SEQ };
  assert.throws(() => regions.buildJob(r, { ...o, seed: -1 }), /seed must be a whole number/);
  assert.throws(() => regions.buildJob(r, { ...o, handles: 1.5 }), /handles must be a whole number/);
  assert.throws(() => regions.buildJob(r, { ...o, outputDir: "renders" }), /choose an output folder/);
  assert.throws(() => regions.buildJob([{ ...r[0], instruction: "  " }], o), /type an instruction/);
  assert.throws(() => regions.buildJob([{ clip: { ...r[0].clip, mediaPath: "" }, instruction: "x" }], o), /no media file/);
});

test("preview URL carries the token as a query parameter and follows the playhead's source frame", () => {
  const a = clip("a", 0, 100, 148, 37);
  const hit = regions.frameAtPlayhead([a], f(105) + 5n);
  assert.equal(hit && hit.frame, 42);
  assert.equal(regions.frameAtPlayhead([a], f(10)), null);
  const url = new URL(regions.previewUrl("http://127.0.0.1:47311",
    { token: "t&k", media: "/m a.mov", frame: 42, instruction: "snow", seed: 3 }));
  assert.equal(url.pathname, "/v1/preview/frame");
  assert.equal(url.searchParams.get("token"), "t&k");
  assert.equal(url.searchParams.get("media"), "/m a.mov");
  assert.equal(url.searchParams.get("frame"), "42");
  assert.equal(url.searchParams.get("client"), "premiere-panel");
});

test("results go on the first free track above, or a new one; replace always uses a new track", () => {
  const p = (track, s, e) => ({ sourceTrack: track, recordStart: String(f(s)), recordEnd: String(f(e)) });
  const occupied = [[[f(0), f(100)]], [[f(50), f(60)]], []];
  assert.deepEqual(assignTracks([p(0, 10, 20)], occupied, "above"), [{ trackIndex: 1, newTrack: false }]);
  assert.deepEqual(assignTracks([p(0, 55, 58)], occupied, "above"), [{ trackIndex: 2, newTrack: false }]);
  // Two overlapping results never share a track; a full stack grows a new track.
  assert.deepEqual(assignTracks([p(1, 0, 30), p(1, 10, 40)], occupied, "above"),
    [{ trackIndex: 2, newTrack: false }, { trackIndex: 3, newTrack: true }]);
  assert.deepEqual(assignTracks([p(0, 30, 40), p(0, 0, 10)], occupied, "replace"),
    [{ trackIndex: 3, newTrack: true }, { trackIndex: 3, newTrack: true }]);
  assert.throws(() => assignTracks([], occupied, "sideways"), /placement must be one of/);
});
