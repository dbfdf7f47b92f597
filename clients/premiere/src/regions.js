// From what the editor picked in Premiere (track items, a sequence range, coloured markers)
// to the bridge's job body and the plan for placing the results back. Plain data in, plain
// data out: no Premiere objects, so it is tested with node.
"use strict";

const tm = require("./timemap.js");

class RegionError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "RegionError";
  }
}

/**
 * @typedef {object} TimelineClip  a video track item, read from Premiere
 * @property {string} id             stable within one read (e.g. "v0:3": track 0, item 3)
 * @property {string} name
 * @property {string} mediaPath      absolute path of the source file
 * @property {number} trackIndex     0 = V1
 * @property {boolean} [ours]        a LiveEdit result (never used as a source)
 * @property {boolean} [disabled]
 * @property {import("./timemap.js").ClipTiming} timing
 */

/**
 * @typedef {object} RegionRequest  one range of one clip to edit
 * @property {TimelineClip} clip
 * @property {bigint} [rangeStart]   sequence ticks; default: the whole clip
 * @property {bigint} [rangeEnd]
 * @property {string} instruction
 */

/**
 * @typedef {object} SequenceMarker
 * @property {string} name
 * @property {number} colorIndex
 * @property {bigint} start      ticks
 * @property {bigint} duration   ticks
 * @property {string} [comments]
 */

/**
 * The pieces of [rangeStart, rangeEnd) and the clip seen there: the topmost enabled clip
 * that is not a LiveEdit result. Gaps are skipped.
 * @param {TimelineClip[]} clips
 * @param {bigint} rangeStart
 * @param {bigint} rangeEnd
 * @returns {{clip: TimelineClip, start: bigint, end: bigint}[]}
 */
function visiblePieces(clips, rangeStart, rangeEnd) {
  const usable = clips.filter((c) => !c.ours && !c.disabled && c.timing.end > rangeStart && c.timing.start < rangeEnd);
  /** @type {Set<bigint>} */
  const cuts = new Set([rangeStart, rangeEnd]);
  for (const c of usable) {
    if (c.timing.start > rangeStart) cuts.add(c.timing.start);
    if (c.timing.end < rangeEnd) cuts.add(c.timing.end);
  }
  const points = [...cuts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  /** @type {{clip: TimelineClip, start: bigint, end: bigint}[]} */
  const pieces = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const [start, end] = [points[i], points[i + 1]];
    let top = null;
    for (const c of usable) {
      if (c.timing.start <= start && c.timing.end >= end && (!top || c.trackIndex > top.trackIndex)) top = c;
    }
    if (!top) continue;
    const last = pieces[pieces.length - 1];
    if (last && last.clip === top && last.end === start) last.end = end;
    else pieces.push({ clip: top, start, end });
  }
  return pieces;
}

/**
 * Regions for "the selected clips": each selected video item, whole, with one instruction.
 * @param {TimelineClip[]} selected
 * @param {string} instruction
 * @returns {RegionRequest[]}
 */
function regionsFromSelection(selected, instruction) {
  const usable = selected.filter((c) => !c.ours);
  if (usable.length === 0) {
    throw new RegionError(selected.length
      ? "the selected clips are LiveEdit results; select the original clips instead"
      : "no video clip is selected in the sequence; select one or more clips, or choose another range");
  }
  return usable.map((clip) => ({ clip, instruction }));
}

/**
 * Regions for "sequence in to out": what is visible there.
 * @param {TimelineClip[]} clips
 * @param {bigint} inPoint
 * @param {bigint} outPoint
 * @param {string} instruction
 * @returns {RegionRequest[]}
 */
function regionsFromInOut(clips, inPoint, outPoint, instruction) {
  if (!(outPoint > inPoint)) {
    throw new RegionError("the sequence has no in and out points; mark in (I) and out (O) on the timeline first");
  }
  const pieces = visiblePieces(clips, inPoint, outPoint);
  if (pieces.length === 0) throw new RegionError("there is no video clip between the sequence in and out points");
  return pieces.map((p) => ({ clip: p.clip, rangeStart: p.start, rangeEnd: p.end, instruction }));
}

/**
 * Regions for "markers of one colour": each marker with a duration, the instruction taken
 * from the marker's name.
 * @param {TimelineClip[]} clips
 * @param {SequenceMarker[]} markers
 * @param {number} colorIndex
 * @returns {RegionRequest[]}
 */
function regionsFromMarkers(clips, markers, colorIndex) {
  const chosen = markers.filter((m) => m.colorIndex === colorIndex);
  if (chosen.length === 0) {
    throw new RegionError("no sequence marker has the chosen colour; add markers of that colour with the " +
      "instruction as the marker name, and drag them to span the range to edit");
  }
  /** @type {RegionRequest[]} */
  const regions = [];
  for (const m of chosen) {
    const at = `marker "${m.name}"`;
    if (m.duration <= 0n) {
      throw new RegionError(`${at} is a point marker; give it a duration (drag its end) so it spans the range to edit`);
    }
    if (!m.name.trim()) throw new RegionError(`a marker of the chosen colour has no name; type the instruction as its name`);
    const pieces = visiblePieces(clips, m.start, m.start + m.duration);
    if (pieces.length === 0) throw new RegionError(`${at} covers no video clip`);
    for (const p of pieces) regions.push({ clip: p.clip, rangeStart: p.start, rangeEnd: p.end, instruction: m.name.trim() });
  }
  return regions;
}

/**
 * @typedef {object} Placement  where region i's result goes back
 * @property {number} index
 * @property {string} recordStart    sequence ticks (decimal text: survives JSON and storage)
 * @property {string} recordEnd
 * @property {number} sourceTrack    the original clip's track
 * @property {string} sourceClipId
 * @property {string} sourceClipName
 * @property {number} head           handle frames before the region in the rendered file
 * @property {number} frameCount     the region's own frames
 * @property {[number, number]} mediaRate
 * @property {string} instruction
 */

/**
 * @typedef {object} JobPlan
 * @property {object} body           POST /v1/jobs body
 * @property {Placement[]} placements
 */

/**
 * The bridge job (see docs/architecture.md, POST /v1/jobs) and the placement plan.
 * @param {RegionRequest[]} regions
 * @param {{seed: number, handles: number, outputDir: string, format?: string, label?: string,
 *          sequenceRate: import("./timemap.js").Rate}} options
 * @returns {JobPlan}
 */
function buildJob(regions, options) {
  const { seed, handles, outputDir, sequenceRate } = options;
  if (!Number.isInteger(seed) || seed < 0) throw new RegionError(`seed must be a whole number, 0 or more; got ${seed}`);
  if (!Number.isInteger(handles) || handles < 0 || handles > 1000) {
    throw new RegionError(`handles must be a whole number of frames from 0 to 1000; got ${handles}`);
  }
  if (!outputDir || !isAbsolutePath(outputDir)) {
    throw new RegionError("choose an output folder (an absolute path) for the rendered clips");
  }
  if (regions.length === 0) throw new RegionError("nothing to render: the range holds no clip");
  const body = { regions: /** @type {object[]} */ ([]), output_dir: outputDir, format: options.format || "prores",
                 label: options.label || "Premiere" };
  /** @type {Placement[]} */
  const placements = [];
  regions.forEach((r, index) => {
    const instruction = r.instruction.trim();
    if (!instruction) throw new RegionError("type an instruction (what to change) first");
    const range = tm.sourceRangeOf(r.clip.timing, r.rangeStart, r.rangeEnd);
    if (!range) throw new RegionError(`the range does not overlap clip "${r.clip.name}"`);
    if (!isAbsolutePath(r.clip.mediaPath)) {
      throw new RegionError(`clip "${r.clip.name}" has no media file on disk (offline, a title or a nested ` +
        "sequence); LiveEdit edits clips of video files");
    }
    body.regions.push({
      media: r.clip.mediaPath,
      first_frame: range.firstFrame,
      frame_count: range.frameCount,
      instruction,
      seed,
      handles,
      record_start: { frame: Number(tm.ticksToFrame(range.recordStart, sequenceRate, "floor")),
                      rate: tm.rateToPair(sequenceRate) },
    });
    placements.push({
      index,
      recordStart: String(range.recordStart),
      recordEnd: String(range.recordEnd),
      sourceTrack: r.clip.trackIndex,
      sourceClipId: r.clip.id,
      sourceClipName: r.clip.name,
      head: Math.min(handles, range.firstFrame), // the sidecar's head handle stops at frame 0
      frameCount: range.frameCount,
      mediaRate: tm.rateToPair(r.clip.timing.mediaRate),
      instruction,
    });
  });
  return { body, placements };
}

/** @param {string} path */
function isAbsolutePath(path) {
  return typeof path === "string" && (path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\"));
}

/**
 * The URL of a preview image (an <img src>: the token travels as a query parameter).
 * @param {string} baseUrl   e.g. "http://127.0.0.1:47311"
 * @param {{token: string, media: string, frame: number, instruction: string, seed: number,
 *          side?: string, maxHeight?: number, client?: string}} q
 */
function previewUrl(baseUrl, q) {
  const params = new URLSearchParams({
    token: q.token, media: q.media, frame: String(q.frame), instruction: q.instruction, seed: String(q.seed),
    side: q.side || "edit", max_height: String(q.maxHeight ?? 360), format: "jpeg", client: q.client || "premiere-panel",
  });
  return `${baseUrl}/v1/preview/frame?${params}`;
}

/**
 * The source frame under the playhead, or null when no usable clip is there.
 * @param {TimelineClip[]} clips
 * @param {bigint} playhead  sequence ticks
 * @returns {{clip: TimelineClip, frame: number} | null}
 */
function frameAtPlayhead(clips, playhead) {
  const pieces = visiblePieces(clips, playhead, playhead + 1n);
  if (pieces.length === 0) return null;
  const clip = pieces[0].clip;
  const range = tm.sourceRangeOf(clip.timing, playhead, playhead + 1n);
  return range ? { clip, frame: range.firstFrame } : null;
}

module.exports = {
  RegionError,
  visiblePieces,
  regionsFromSelection,
  regionsFromInOut,
  regionsFromMarkers,
  buildJob,
  previewUrl,
  frameAtPlayhead,
  isAbsolutePath,
};
