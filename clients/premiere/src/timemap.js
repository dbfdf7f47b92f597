// Premiere time <-> frames, exactly.
//
// Premiere counts time in ticks: 254,016,000,000 per second, chosen so that every common
// frame rate (23.976, 24, 25, 29.97, 30, 50, 59.94, 60, ...) has a whole number of ticks per
// frame. Tick counts pass 2^53 after about ten hours, so everything here is BigInt; rates are
// exact fractions {num, den} (24000/1001, never 23.976).
//
// Conventions (from the @adobe/premierepro 26.3 typings; see docs/premiere.md for what is
// unverified on a real build):
// - track item start/end are sequence time, relative to the sequence start;
// - track item in/out are source time relative to the start of the project item the item
//   references; for a subclip that is the subclip's own start inside the master media;
// - the sidecar wants source frames counted from the first frame of the file (0-based) and
//   the record start in sequence frames from the sequence start.
"use strict";

const TICKS_PER_SECOND = 254016000000n;

class TimeMapError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "TimeMapError";
  }
}

/** @typedef {{num: bigint, den: bigint}} Rate  frames per second as an exact fraction */

/** @param {bigint} a @param {bigint} b @returns {bigint} */
function gcd(a, b) {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * @param {bigint | number} num
 * @param {bigint | number} [den]
 * @returns {Rate}
 */
function rate(num, den = 1n) {
  const n = BigInt(num);
  const d = BigInt(den);
  if (n <= 0n || d <= 0n) throw new TimeMapError(`a frame rate must be positive; got ${n}/${d}`);
  const g = gcd(n, d);
  return { num: n / g, den: d / g };
}

/**
 * Ticks as BigInt from what the API hands out: TickTime.ticks is a string.
 * @param {string | number | bigint | {ticks: string}} value
 * @returns {bigint}
 */
function toTicks(value) {
  if (typeof value === "bigint") return value;
  if (typeof value === "object" && value !== null && "ticks" in value) return toTicks(value.ticks);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new TimeMapError(`tick count ${value} is not an exact integer; pass TickTime.ticks (a string)`);
    }
    return BigInt(value);
  }
  if (typeof value === "string" && /^-?\d+$/.test(value.trim())) return BigInt(value.trim());
  throw new TimeMapError(`not a tick count: ${JSON.stringify(value)}`);
}

/**
 * The rate of a sequence from Sequence.getTimebase(), which is ticks per frame as text.
 * @param {string | bigint | number} ticksPerFrame
 * @returns {Rate}
 */
function rateFromTimebase(ticksPerFrame) {
  const tpf = toTicks(ticksPerFrame);
  if (tpf <= 0n) throw new TimeMapError(`sequence timebase ${tpf} ticks per frame is not a frame rate`);
  return rate(TICKS_PER_SECOND, tpf);
}

/**
 * An exact rate from a floating point fps (FootageInterpretation.getFrameRate()): NTSC rates
 * (n*1000/1001) and whole rates are recognised; anything else is rounded to whole ticks per
 * frame, which is what Premiere itself can represent.
 * @param {number} fps
 * @returns {Rate}
 */
function rateFromFps(fps) {
  if (!(typeof fps === "number" && isFinite(fps) && fps > 0 && fps <= 1000)) {
    throw new TimeMapError(`frame rate ${fps} is not a usable frames-per-second value`);
  }
  const whole = Math.round(fps);
  if (Math.abs(fps - whole) < 1e-6) return rate(whole);
  const ntsc = Math.round((fps * 1001) / 1000);
  if (Math.abs(fps - (ntsc * 1000) / 1001) < 1e-4) return rate(ntsc * 1000, 1001);
  return rate(TICKS_PER_SECOND, BigInt(Math.round(Number(TICKS_PER_SECOND) / fps)));
}

/** @param {Rate} r @returns {number} */
function fpsNumber(r) {
  return Number(r.num) / Number(r.den);
}

/** @param {Rate} r @returns {[number, number]}  the wire form the sidecar expects */
function rateToPair(r) {
  return [Number(r.num), Number(r.den)];
}

/**
 * Ticks per frame; exact for every rate Premiere uses, else an error.
 * @param {Rate} r
 * @returns {bigint}
 */
function ticksPerFrame(r) {
  const t = TICKS_PER_SECOND * r.den;
  if (t % r.num !== 0n) throw new TimeMapError(`${r.num}/${r.den} fps has no whole number of ticks per frame`);
  return t / r.num;
}

/**
 * Frame index at a time: the frame whose interval holds the time ("floor"), the nearest
 * frame boundary ("nearest"), the first frame starting at or after it ("ceil"), or "exact",
 * which refuses a time between frames.
 * @param {bigint | string | number} ticks
 * @param {Rate} r
 * @param {"floor" | "nearest" | "ceil" | "exact"} [rounding]
 * @returns {bigint}
 */
function ticksToFrame(ticks, r, rounding = "floor") {
  const t = toTicks(ticks);
  const numer = t * r.num;
  const denom = TICKS_PER_SECOND * r.den;
  const floor = numer >= 0n ? numer / denom : -((-numer + denom - 1n) / denom);
  const rest = numer - floor * denom;
  switch (rounding) {
    case "floor":
      return floor;
    case "ceil":
      return rest === 0n ? floor : floor + 1n;
    case "nearest":
      return rest * 2n >= denom ? floor + 1n : floor;
    case "exact":
      if (rest !== 0n) {
        throw new TimeMapError(`time ${t} ticks is not on a frame boundary at ${r.num}/${r.den} fps`);
      }
      return floor;
    default:
      throw new TimeMapError(`unknown rounding ${rounding}`);
  }
}

/**
 * Start time of a frame in ticks (rounded to the nearest tick for exotic rates).
 * @param {bigint | number} frame
 * @param {Rate} r
 * @returns {bigint}
 */
function frameToTicks(frame, r) {
  const numer = BigInt(frame) * TICKS_PER_SECOND * r.den;
  return (numer * 2n + r.num) / (2n * r.num);
}

/** @param {bigint | string | number} ticks @param {Rate} r @returns {boolean} */
function isOnFrame(ticks, r) {
  return (toTicks(ticks) * r.num) % (TICKS_PER_SECOND * r.den) === 0n;
}

// ------------------------------------------------------------------------------ timecode

/**
 * Timecode base (frames per timecode second) and whether drop-frame numbering applies.
 * @param {Rate} r
 * @param {boolean} dropFrame
 */
function timecodeBase(r, dropFrame) {
  const base = Number((r.num + r.den - 1n) / r.den); // 30 for 29.97, 24 for 23.976
  if (dropFrame && (r.den !== 1001n || base % 30 !== 0)) {
    throw new TimeMapError(`drop-frame timecode exists only for 29.97 and 59.94 fps, not ${fpsNumber(r)}`);
  }
  return base;
}

/**
 * Frame count -> "HH:MM:SS:FF" (";" before the frames for drop-frame).
 * @param {bigint | number} frames
 * @param {Rate} r
 * @param {boolean} [dropFrame]
 * @returns {string}
 */
function framesToTimecode(frames, r, dropFrame = false) {
  let f = Number(frames);
  if (!Number.isSafeInteger(f) || f < 0) throw new TimeMapError(`cannot write timecode for frame ${frames}`);
  const base = timecodeBase(r, dropFrame);
  if (dropFrame) {
    // Drop 2 (or 4 at 59.94) frame numbers each minute except every tenth minute.
    const drop = (base / 30) * 2;
    const perTenMinutes = base * 600 - drop * 9;
    const perMinute = base * 60 - drop;
    const tens = Math.floor(f / perTenMinutes);
    const rest = f % perTenMinutes;
    f += drop * 9 * tens + (rest > drop ? drop * Math.floor((rest - drop) / perMinute) : 0);
  }
  const ff = f % base;
  const totalSeconds = Math.floor(f / base);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  const hh = Math.floor(totalSeconds / 3600);
  const mm = Math.floor(totalSeconds / 60) % 60;
  const ss = totalSeconds % 60;
  return `${pad(hh)}:${pad(mm)}:${pad(ss)}${dropFrame ? ";" : ":"}${pad(ff)}`;
}

/**
 * "HH:MM:SS:FF" or "HH:MM:SS;FF" -> frame count.
 * @param {string} timecode
 * @param {Rate} r
 * @param {boolean} [dropFrame]  defaults to what the separator says
 * @returns {bigint}
 */
function timecodeToFrames(timecode, r, dropFrame) {
  const m = /^(\d{1,2})[:;.](\d{2})[:;.](\d{2})([:;.])(\d{2,3})$/.exec(String(timecode).trim());
  if (!m) throw new TimeMapError(`timecode ${JSON.stringify(timecode)} is not HH:MM:SS:FF`);
  const df = dropFrame ?? (m[4] === ";" || m[4] === ".");
  const base = timecodeBase(r, df);
  const [hh, mm, ss, ff] = [m[1], m[2], m[3], m[5]].map(Number);
  if (mm > 59 || ss > 59 || ff >= base) throw new TimeMapError(`timecode ${timecode} is out of range at ${base} fps`);
  let frames = ((hh * 60 + mm) * 60 + ss) * base + ff;
  if (df) {
    const drop = (base / 30) * 2;
    if (ss === 0 && ff < drop && mm % 10 !== 0) {
      throw new TimeMapError(`timecode ${timecode} does not exist in drop-frame counting`);
    }
    const minutes = hh * 60 + mm;
    frames -= drop * (minutes - Math.floor(minutes / 10));
  }
  return BigInt(frames);
}

// ------------------------------------------------------------------------------ mapping

/**
 * @typedef {object} ClipTiming  one video track item, as read from Premiere (ticks)
 * @property {bigint} start        sequence time of the item's first frame
 * @property {bigint} end          sequence time just after its last frame
 * @property {bigint} inPoint      source time at `start`, relative to the project item start
 * @property {bigint} [subclipStart]  where the project item starts inside its media file
 *                                 (a subclip's start; 0 for a master clip)
 * @property {Rate} mediaRate      the media's frame rate as Premiere interprets it
 * @property {number} [speed]      1 for normal speed; anything else is refused
 */

/**
 * @typedef {object} SourceRange
 * @property {number} firstFrame   first source frame, counted from the start of the file
 * @property {number} frameCount   source frames the range shows
 * @property {bigint} recordStart  sequence ticks where the range starts
 * @property {bigint} recordEnd    sequence ticks where it ends
 */

/**
 * The source frames a sequence range shows through one track item. The range is clipped to
 * the item; an empty intersection gives null.
 * @param {ClipTiming} clip
 * @param {bigint} [rangeStart]  sequence ticks (default: the item's start)
 * @param {bigint} [rangeEnd]    sequence ticks (default: the item's end)
 * @returns {SourceRange | null}
 */
function sourceRangeOf(clip, rangeStart, rangeEnd) {
  if (clip.speed !== undefined && clip.speed !== 1) {
    throw new TimeMapError(`the clip plays at ${Math.round(clip.speed * 100)}% speed; LiveEdit renders only ` +
      "clips at 100% speed. Nest or render the retimed clip first");
  }
  const start = rangeStart === undefined || rangeStart < clip.start ? clip.start : rangeStart;
  const end = rangeEnd === undefined || rangeEnd > clip.end ? clip.end : rangeEnd;
  if (end <= start) return null;
  const sourceStart = (clip.subclipStart ?? 0n) + clip.inPoint + (start - clip.start);
  const sourceEnd = sourceStart + (end - start);
  const first = ticksToFrame(sourceStart, clip.mediaRate, "floor");
  // Every media frame whose interval overlaps [sourceStart, sourceEnd) is shown.
  const last = ticksToFrame(sourceEnd, clip.mediaRate, "ceil");
  if (first < 0n) throw new TimeMapError(`the clip's source in point lies before the start of its media`);
  return { firstFrame: Number(first), frameCount: Number(last - first), recordStart: start, recordEnd: end };
}

/**
 * Which time domain a track item's in point is in. The typings say "relative to the start
 * time of the project item" (so 0 is the first frame of the file); media with a start
 * timecode would be ambiguous if a build reported timecode-based in points instead. That
 * case is recognisable without guessing when the in point lies past the end of the media but
 * inside [mediaStart, mediaStart + duration): then the media start is subtracted.
 * @param {bigint} inPoint
 * @param {bigint} mediaStart     Media.start (the start timecode as ticks)
 * @param {bigint} mediaDuration  Media.duration
 * @returns {bigint} the ticks to subtract from the in point (0 or mediaStart)
 */
function inPointOffset(inPoint, mediaStart, mediaDuration) {
  if (mediaStart > 0n && inPoint >= mediaDuration && inPoint >= mediaStart && inPoint < mediaStart + mediaDuration) {
    return mediaStart;
  }
  return 0n;
}

/**
 * Source timecode of a frame of media that starts at `mediaStart` ticks (its start timecode).
 * @param {number | bigint} frame  0-based frame in the file
 * @param {bigint} mediaStart
 * @param {Rate} mediaRate
 * @param {boolean} [dropFrame]
 */
function sourceTimecode(frame, mediaStart, mediaRate, dropFrame = false) {
  return framesToTimecode(ticksToFrame(mediaStart, mediaRate, "nearest") + BigInt(frame), mediaRate, dropFrame);
}

module.exports = {
  inPointOffset,
  sourceTimecode,
  TICKS_PER_SECOND,
  TimeMapError,
  rate,
  toTicks,
  rateFromTimebase,
  rateFromFps,
  fpsNumber,
  rateToPair,
  ticksPerFrame,
  ticksToFrame,
  frameToTicks,
  isOnFrame,
  framesToTimecode,
  timecodeToFrames,
  sourceRangeOf,
};
