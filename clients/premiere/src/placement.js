// Which video track each result goes on. Pure: tested with node; premiere.js applies it.
//
// "above" (the default): the first existing track above the original clip that is empty
// over the whole region, else a new track on top. "replace": a new track on top for the
// whole job, and the original clips are disabled (never removed). Results never overwrite
// anything: a track is used only where it is empty.
"use strict";

const PLACEMENTS = ["above", "replace"];

/**
 * @param {{sourceTrack: number, recordStart: string, recordEnd: string}[]} placements
 * @param {Array<Array<[bigint, bigint]>>} occupied  per existing video track: [start, end) of its items
 * @param {string} mode  "above" | "replace"
 * @returns {{trackIndex: number, newTrack: boolean}[]}
 */
function assignTracks(placements, occupied, mode) {
  if (!PLACEMENTS.includes(mode)) throw new Error(`placement must be one of ${PLACEMENTS.join(", ")}; got ${mode}`);
  const tracks = occupied.map((items) => items.slice());
  const existing = tracks.length;
  const free = (/** @type {number} */ t, /** @type {bigint} */ s, /** @type {bigint} */ e) =>
    (tracks[t] || []).every(([a, b]) => b <= s || a >= e);
  // In time order, so that several results on one new track never overlap one another.
  const order = placements.map((p, i) => i).sort((i, j) => {
    const a = BigInt(placements[i].recordStart);
    const b = BigInt(placements[j].recordStart);
    return a < b ? -1 : a > b ? 1 : 0;
  });
  /** @type {{trackIndex: number, newTrack: boolean}[]} */
  const result = new Array(placements.length);
  for (const i of order) {
    const p = placements[i];
    const [s, e] = [BigInt(p.recordStart), BigInt(p.recordEnd)];
    let t = mode === "replace" ? existing : p.sourceTrack + 1;
    while (!free(t, s, e)) t++;
    if (!tracks[t]) tracks[t] = [];
    tracks[t].push([s, e]);
    result[i] = { trackIndex: t, newTrack: t >= existing };
  }
  return result;
}

module.exports = { assignTracks, PLACEMENTS };
