// Everything that talks to Premiere (the UXP `premierepro` module, names from the
// @adobe/premierepro 26.3 typings). Reads turn Premiere objects into the plain data of
// regions.js; the one write puts finished renders back: import into a "LiveEdit" bin, then
// ONE locked transaction (one undo step) that places each result at its sequence time on a
// free track, disables the originals when asked, and adds a marker with the job id.
// Source media and the original clips' media are never touched.
"use strict";

const tm = require("./timemap.js");
const { assignTracks } = require("./placement.js");

/** @typedef {import("@adobe/premierepro").premierepro} Ppro */
/** @typedef {import("@adobe/premierepro").Project} Project */
/** @typedef {import("@adobe/premierepro").Sequence} Sequence */
/** @typedef {import("@adobe/premierepro").VideoClipTrackItem} VideoClipTrackItem */
/** @typedef {import("@adobe/premierepro").ProjectItem} ProjectItem */
/** @typedef {import("@adobe/premierepro").ClipProjectItem} ClipProjectItem */
/** @typedef {import("@adobe/premierepro").FolderItem} FolderItem */

const BIN_NAME = "LiveEdit";
// Outputs named by the sidecar look like <media>_f<first>-<last>_liveedit-<job8>-r<i>.
const RESULT_NAME = /_liveedit-[0-9a-f]{8}-r\d+(\.[A-Za-z0-9]+)?$/;

class HostError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "HostError";
  }
}

/** @param {string} path */
function normalizePath(path) {
  return String(path || "").replace(/\\/g, "/").replace(/^file:\/\/(localhost)?/, "").toLowerCase();
}

class PremiereHost {
  /** @param {Ppro} ppro */
  constructor(ppro) {
    this.ppro = ppro;
  }

  /** @returns {Promise<{project: Project, sequence: Sequence}>} */
  async active() {
    const project = await this.ppro.Project.getActiveProject();
    if (!project) throw new HostError("no project is open in Premiere; open a project and a sequence");
    const sequence = await project.getActiveSequence();
    if (!sequence) throw new HostError("no sequence is active; open the sequence to edit in the timeline");
    return { project, sequence };
  }

  /** @param {Sequence} sequence */
  async sequenceRate(sequence) {
    return tm.rateFromTimebase(await sequence.getTimebase());
  }

  /**
   * Every clip on every video track, as plain data (regions.js TimelineClip), plus which
   * are selected.
   * @param {Sequence} sequence
   * @param {string} [outputDir]  results live here (never used as sources)
   * @returns {Promise<{clips: import("./regions.js").TimelineClip[], selected: import("./regions.js").TimelineClip[],
   *                    items: Map<string, VideoClipTrackItem>}>}
   */
  async readClips(sequence, outputDir) {
    const ppro = this.ppro;
    const count = await sequence.getVideoTrackCount();
    /** @type {import("./regions.js").TimelineClip[]} */
    const clips = [];
    /** @type {import("./regions.js").TimelineClip[]} */
    const selected = [];
    /** @type {Map<string, VideoClipTrackItem>} */
    const items = new Map();
    /** @type {Map<string, Promise<any>>} */
    const sources = new Map(); // per project item: path, rate, subclip start
    for (let t = 0; t < count; t++) {
      const track = await sequence.getVideoTrack(t);
      const trackItems = track.getTrackItems(ppro.Constants.TrackItemType.CLIP, false);
      for (let i = 0; i < trackItems.length; i++) {
        const item = trackItems[i];
        const id = `v${t}:${i}`;
        const projectItem = await item.getProjectItem();
        const key = projectItem.getId();
        if (!sources.has(key)) sources.set(key, this.describeSource(projectItem));
        const source = await sources.get(key);
        const clip = {
          id,
          name: await item.getName(),
          mediaPath: source.mediaPath,
          trackIndex: t,
          disabled: await item.isDisabled(),
          ours: source.ours || Boolean(outputDir && source.mediaPath &&
            normalizePath(source.mediaPath).startsWith(normalizePath(outputDir).replace(/\/?$/, "/"))),
          timing: {
            start: tm.toTicks(await item.getStartTime()),
            end: tm.toTicks(await item.getEndTime()),
            inPoint: 0n,
            subclipStart: source.subclipStart,
            mediaRate: source.mediaRate,
            speed: await item.getSpeed(),
          },
        };
        const inPoint = tm.toTicks(await item.getInPoint());
        clip.timing.inPoint = inPoint - tm.inPointOffset(inPoint, source.mediaStart, source.mediaDuration);
        clips.push(clip);
        items.set(id, item);
        if (await item.getIsSelected()) selected.push(clip);
      }
    }
    return { clips, selected, items };
  }

  /**
   * Media path, rate, start timecode and (for a subclip) its start inside the master file.
   * @param {ProjectItem} projectItem
   */
  async describeSource(projectItem) {
    const ppro = this.ppro;
    const clip = ppro.ClipProjectItem.cast(projectItem);
    const none = { mediaPath: "", mediaRate: tm.rate(25), mediaStart: 0n, mediaDuration: 0n, subclipStart: 0n, ours: false };
    if (!clip || (await clip.isSequence())) return none; // nested sequences, titles: not a file
    const mediaPath = await clip.getMediaFilePath();
    if (!mediaPath) return none;
    const interpretation = await clip.getFootageInterpretation();
    const mediaRate = tm.rateFromFps(interpretation.getFrameRate());
    const media = await clip.getMedia();
    const mediaStart = media && media.start ? tm.toTicks(media.start.ticks) : 0n;
    const mediaDuration = media && media.duration ? tm.toTicks(media.duration.ticks) : 0n;
    // A subclip's track items count from the subclip's start (gyroflow-plugins #59/#60 saw
    // the same in the C++ SDK). It is a subclip when the master items for its file, subclips
    // ignored, do not include it; its in point is then where it starts in the master.
    let subclipStart = 0n;
    const masters = await clip.findItemsMatchingMediaPath(mediaPath, true);
    if (masters && !masters.some((m) => m.getId() === projectItem.getId())) {
      subclipStart = tm.toTicks(await clip.getInPoint(ppro.Constants.MediaType.VIDEO));
    }
    return { mediaPath, mediaRate, mediaStart, mediaDuration, subclipStart,
             ours: RESULT_NAME.test(mediaPath.replace(/\\/g, "/").split("/").pop() || "") };
  }

  /**
   * Sequence markers as plain data.
   * @param {Sequence} sequence
   * @returns {Promise<import("./regions.js").SequenceMarker[]>}
   */
  async readMarkers(sequence) {
    const markers = await this.ppro.Markers.getMarkers(sequence);
    return markers.getMarkers().map((m) => ({
      name: m.getName(),
      colorIndex: m.getColorIndex(),
      start: tm.toTicks(m.getStart().ticks),
      duration: tm.toTicks(m.getDuration().ticks),
      comments: m.getComments(),
    }));
  }

  /** @param {Sequence} sequence @returns {Promise<{inPoint: bigint, outPoint: bigint}>} */
  async readInOut(sequence) {
    return { inPoint: tm.toTicks(await sequence.getInPoint()), outPoint: tm.toTicks(await sequence.getOutPoint()) };
  }

  /** @param {Sequence} sequence @returns {Promise<bigint>} */
  async playhead(sequence) {
    return tm.toTicks(await sequence.getPlayerPosition());
  }

  /** @param {Project} project @returns {Promise<FolderItem>} the "LiveEdit" bin, created on first use */
  async resultsBin(project) {
    const ppro = this.ppro;
    const find = async () => {
      const root = await project.getRootItem();
      for (const item of await root.getItems()) {
        if (item.name === BIN_NAME) {
          const folder = ppro.FolderItem.cast(item);
          if (folder) return folder;
        }
      }
      return null;
    };
    const existing = await find();
    if (existing) return existing;
    const root = await project.getRootItem();
    let ok = false;
    project.lockedAccess(() => {
      ok = project.executeTransaction((compound) => {
        compound.addAction(root.createBinAction(BIN_NAME, false));
      }, "LiveEdit: create bin");
    });
    const created = ok ? await find() : null;
    if (!created) throw new HostError(`could not create the "${BIN_NAME}" bin in the project; create it by hand and try again`);
    return created;
  }

  /**
   * Put a finished job's renders into the sequence it came from.
   * @param {import("./jobs.js").Job} job
   * @param {{placements: import("./regions.js").Placement[], sequenceId: string, placement: string}} plan
   * @returns {Promise<{tracks: number[]}>}
   */
  async placeResults(job, plan) {
    const ppro = this.ppro;
    const { project, sequence } = await this.active();
    if (plan.sequenceId && sequence.guid && sequence.guid.toString() !== plan.sequenceId) {
      throw new HostError("the sequence these clips came from is not the active one; open it, then press Place again");
    }
    const outputs = plan.placements.map((p) => {
      const region = job.regions[p.index];
      if (!region || !region.output) throw new HostError(`region ${p.index + 1} of job ${job.id} has no rendered file`);
      return region.output;
    });

    const bin = await this.resultsBin(project);
    const imported = await project.importFiles(outputs, true, ppro.ProjectItem.cast(bin), false);
    if (!imported) throw new HostError(`Premiere could not import ${outputs.join(", ")}; check that the files exist`);
    /** @type {Map<string, ClipProjectItem>} */
    const byPath = new Map();
    for (const item of await bin.getItems()) {
      const clip = ppro.ClipProjectItem.cast(item);
      if (clip) byPath.set(normalizePath(await clip.getMediaFilePath()), clip);
    }
    const clipsFor = outputs.map((path) => {
      const clip = byPath.get(normalizePath(path));
      if (!clip) throw new HostError(`the imported file ${path} is not in the "${BIN_NAME}" bin`);
      return clip;
    });

    // Where everything goes, read before the transaction (reads are async, the transaction is not).
    const trackCount = await sequence.getVideoTrackCount();
    /** @type {Array<Array<[bigint, bigint]>>} */
    const occupied = [];
    for (let t = 0; t < trackCount; t++) {
      const track = await sequence.getVideoTrack(t);
      const spans = [];
      for (const item of track.getTrackItems(ppro.Constants.TrackItemType.CLIP, false)) {
        spans.push(/** @type {[bigint, bigint]} */ ([tm.toTicks(await item.getStartTime()), tm.toTicks(await item.getEndTime())]));
      }
      occupied.push(spans);
    }
    const tracks = assignTracks(plan.placements, occupied, plan.placement);
    const audioTrackIndex = await sequence.getAudioTrackCount(); // the render's audio (a copy of the source's) goes below everything, on a new track
    /** @type {VideoClipTrackItem[]} */
    const originals = [];
    if (plan.placement === "replace") {
      const { items } = await this.readClips(sequence);
      for (const p of plan.placements) {
        const original = items.get(p.sourceClipId);
        if (original && !originals.includes(original)) originals.push(original);
      }
    }
    const markers = await ppro.Markers.getMarkers(sequence);
    const editor = ppro.SequenceEditor.getEditor(sequence);

    let ok = false;
    project.lockedAccess(() => {
      ok = project.executeTransaction((compound) => {
        plan.placements.forEach((p, i) => {
          const rate = tm.rate(p.mediaRate[0], p.mediaRate[1]);
          const clip = clipsFor[i];
          // The render holds `head` handle frames first: mark in/out on the imported clip so
          // the edit shows exactly the region and the handles stay available for trimming.
          compound.addAction(clip.createSetInOutPointsAction(
            ppro.TickTime.createWithTicks(String(tm.frameToTicks(p.head, rate))),
            ppro.TickTime.createWithTicks(String(tm.frameToTicks(p.head + p.frameCount, rate)))));
          const at = ppro.TickTime.createWithTicks(p.recordStart);
          const target = tracks[i];
          const projectItem = ppro.ProjectItem.cast(clip);
          // Overwrite only onto a track that is empty there; a new track is made by an insert
          // past the last track (the typings document that for insert only).
          compound.addAction(target.newTrack
            ? editor.createInsertProjectItemAction(projectItem, at, target.trackIndex, audioTrackIndex, true)
            : editor.createOverwriteItemAction(projectItem, at, target.trackIndex, audioTrackIndex));
          compound.addAction(markers.createAddMarkerAction(
            `LiveEdit ${job.id.slice(0, 8)}`,
            ppro.Marker.MARKER_TYPE_COMMENT,
            at,
            ppro.TickTime.createWithTicks(String(BigInt(p.recordEnd) - BigInt(p.recordStart))),
            `LiveEdit job ${job.id}, region ${p.index + 1}: "${p.instruction}" on ${p.sourceClipName}; file ${outputs[i]}`));
        });
        for (const original of originals) compound.addAction(original.createSetDisabledAction(true));
      }, `LiveEdit: place ${plan.placements.length} result${plan.placements.length === 1 ? "" : "s"}`);
    });
    if (!ok) throw new HostError("Premiere refused to place the results (the edit was undone); check that the tracks are not locked");
    return { tracks: tracks.map((t) => t.trackIndex) };
  }
}

module.exports = { PremiereHost, HostError, BIN_NAME, normalizePath };
