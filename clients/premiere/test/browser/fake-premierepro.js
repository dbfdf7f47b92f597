// FAKE HOST: a recording stand-in for Premiere's `premierepro` UXP module, for loading the
// panel page in a plain browser (tests/test_premiere_panel.py). It is NOT Premiere: it
// implements only the calls the panel makes, with the names and shapes of the
// @adobe/premierepro 26.3 typings, and it is strict where the real API is known to be:
// unknown properties throw, and actions can be created only inside project.lockedAccess
// (26.3). Every import and transaction is recorded in window.__fakeRecord.
//
// The scene comes from window.__fakeScene (set before the page loads):
//   {sequence: {name, timebase, inPoint, outPoint, playhead, audioTracks},
//    projectPath, bins: [name],
//    media: {<path>: {fps, start, duration, subclipOf?: {path, start}}},
//    tracks: [[{name, media, start, end, inPoint, selected?, disabled?, speed?}]],
//    markers: [{name, colorIndex, start, duration, comments}]}
// with every time in ticks as decimal text.
"use strict";

(function () {
  const scene = window.__fakeScene;
  const record = { imports: [], transactions: [], errors: [] };
  window.__fakeRecord = record;
  let locked = 0;
  let transaction = null;

  /** Unknown properties throw, so a misspelt or invented API call fails the test. */
  function strict(kind, target) {
    return new Proxy(target, {
      get(obj, prop) {
        if (typeof prop === "symbol" || prop === "then" || prop === "toJSON" || prop in obj) return obj[prop];
        const message = `fake premierepro: ${kind}.${String(prop)} is not part of the API the fake knows`;
        record.errors.push(message);
        throw new TypeError(message);
      },
    });
  }

  const tick = (text) => strict("TickTime", { ticks: String(text), seconds: Number(BigInt(text)) / 254016000000 });

  function action(description) {
    if (!locked) {
      const message = `fake premierepro: ${description.type} action created outside project.lockedAccess`;
      record.errors.push(message);
      throw new Error(message);
    }
    return strict("Action", { __description: description });
  }

  const projectItems = new Map(); // id -> clip project item
  let nextId = 1;

  function clipProjectItem(path, binName) {
    for (const item of projectItems.values()) if (item.__path === path && item.__bin === binName) return item;
    const info = scene.media[path] || { fps: 25, start: "0", duration: "0" };
    const id = `pi-${nextId++}`;
    const item = strict("ClipProjectItem", {
      __path: path, __bin: binName, __inOut: null, name: path.split("/").pop(), type: 1,
      getId: () => id,
      isSequence: async () => false,
      getMediaFilePath: async () => (info.subclipOf ? info.subclipOf.path : path),
      getFootageInterpretation: async () => strict("FootageInterpretation", { getFrameRate: () => info.fps }),
      getMedia: async () => strict("Media", { start: tick(info.start), duration: tick(info.duration) }),
      findItemsMatchingMediaPath: async (p, ignoreSubclips) => [...projectItems.values()].filter(
        (other) => other.__masterPath() === p && !(ignoreSubclips && other.__isSubclip())),
      getInPoint: async () => tick(info.subclipOf ? info.subclipOf.start : "0"),
      createSetInOutPointsAction: (inPoint, outPoint) =>
        action({ type: "setInOut", media: path, in: inPoint.ticks, out: outPoint.ticks }),
      __masterPath: () => (info.subclipOf ? info.subclipOf.path : path),
      __isSubclip: () => Boolean(info.subclipOf),
    });
    projectItems.set(id, item);
    return item;
  }

  function bin(name) {
    return strict("FolderItem", {
      name, type: 2, __bin: name,
      getItems: async () => [...projectItems.values()].filter((i) => i.__bin === name),
    });
  }
  const bins = new Map((scene.bins || []).map((name) => [name, bin(name)]));

  function trackItem(track, spec) {
    const item = strict("VideoClipTrackItem", {
      __spec: spec,
      getProjectItem: async () => clipProjectItem(spec.media, "root"),
      getName: async () => spec.name,
      isDisabled: async () => Boolean(spec.disabled),
      getStartTime: async () => tick(spec.start),
      getEndTime: async () => tick(spec.end),
      getInPoint: async () => tick(spec.inPoint),
      getSpeed: async () => spec.speed ?? 1,
      getIsSelected: async () => Boolean(spec.selected),
      createSetDisabledAction: (disabled) => action({ type: "setDisabled", name: spec.name, disabled }),
    });
    return item;
  }
  // Clips on the timeline are in the project already.
  for (const track of scene.tracks) for (const spec of track) clipProjectItem(spec.media, "root");

  function videoTrack(index) {
    return strict("VideoTrack", {
      name: `V${index + 1}`,
      getTrackItems: (type, includeEmpty) => {
        if (type !== 1 || includeEmpty !== false) throw new Error("fake premierepro: the panel should ask for clips only");
        return (scene.tracks[index] || []).map((spec) => trackItem(index, spec));
      },
    });
  }

  const seq = scene.sequence;
  const sequence = strict("Sequence", {
    name: seq.name,
    guid: strict("Guid", { toString: () => "sequence-guid-1" }),
    getTimebase: async () => seq.timebase,
    getVideoTrackCount: async () => scene.tracks.length,
    getVideoTrack: async (i) => videoTrack(i),
    getAudioTrackCount: async () => seq.audioTracks ?? 2,
    getInPoint: async () => tick(seq.inPoint ?? "0"),
    getOutPoint: async () => tick(seq.outPoint ?? "0"),
    getPlayerPosition: async () => tick(seq.playhead ?? "0"),
  });

  const markers = strict("Markers", {
    getMarkers: () => (scene.markers || []).map((m) => strict("Marker", {
      getName: () => m.name, getColorIndex: () => m.colorIndex, getStart: () => tick(m.start),
      getDuration: () => tick(m.duration), getComments: () => m.comments || "",
    })),
    createAddMarkerAction: (name, type, start, duration, comments) =>
      action({ type: "addMarker", name, markerType: type, start: start.ticks, duration: duration.ticks, comments }),
  });

  const editor = strict("SequenceEditor", {
    createOverwriteItemAction: (projectItem, time, videoTrackIndex, audioTrackIndex) =>
      action({ type: "overwrite", media: projectItem.__path, bin: projectItem.__bin, time: time.ticks,
               videoTrackIndex, audioTrackIndex }),
    createInsertProjectItemAction: (projectItem, time, videoTrackIndex, audioTrackIndex, limitShift) =>
      action({ type: "insert", media: projectItem.__path, bin: projectItem.__bin, time: time.ticks,
               videoTrackIndex, audioTrackIndex, limitShift }),
  });

  const root = strict("FolderItem", {
    name: "root", type: 2,
    getItems: async () => [...bins.values()],
    createBinAction: (name, makeUnique) => action({ type: "createBin", name, makeUnique }),
  });

  function apply(description) {
    if (description.type === "createBin") bins.set(description.name, bin(description.name));
    if (description.type === "overwrite" || description.type === "insert") {
      while (scene.tracks.length <= description.videoTrackIndex) {
        if (description.type === "overwrite") throw new Error("fake premierepro: overwrite onto a track that does not exist");
        scene.tracks.push([]);
      }
    }
  }

  const project = strict("Project", {
    name: "Fake project", path: scene.projectPath, guid: strict("Guid", { toString: () => "project-guid-1" }),
    getActiveSequence: async () => sequence,
    getRootItem: async () => root,
    importFiles: async (paths, suppressUI, targetBin, asNumberedStills) => {
      if (locked) throw new Error("fake premierepro: importFiles is async and cannot run inside lockedAccess");
      const name = targetBin && targetBin.__bin;
      record.imports.push({ paths, suppressUI, bin: name, asNumberedStills });
      for (const p of paths) {
        // The real import fails on a missing file: read it back to be sure it exists.
        const xhr = new XMLHttpRequest();
        xhr.open("GET", "file://" + p, false);
        xhr.send();
        if (!xhr.responseText && xhr.status !== 200) return false;
        clipProjectItem(p, name);
      }
      return true;
    },
    lockedAccess: (callback) => {
      locked++;
      try {
        callback();
      } finally {
        locked--;
      }
    },
    executeTransaction: (callback, undoString) => {
      if (!locked) throw new Error("fake premierepro: executeTransaction outside lockedAccess");
      if (transaction) throw new Error("fake premierepro: nested transaction");
      transaction = { label: undoString, actions: [] };
      const compound = strict("CompoundAction", {
        addAction: (a) => {
          transaction.actions.push(a.__description);
          return true;
        },
      });
      try {
        callback(compound);
        transaction.actions.forEach(apply);
        record.transactions.push(transaction);
        return true;
      } finally {
        transaction = null;
      }
    },
  });

  window.__fakePremierepro = strict("premierepro", {
    Project: strict("ProjectStatic", { getActiveProject: async () => project }),
    FolderItem: strict("FolderItemStatic", { cast: (item) => (item && item.type === 2 ? item : null) }),
    ProjectItem: strict("ProjectItemStatic", { cast: (item) => item }),
    ClipProjectItem: strict("ClipProjectItemStatic", { cast: (item) => (item && item.type === 1 ? item : null) }),
    Markers: strict("MarkersStatic", { getMarkers: async (owner) => {
      if (owner !== sequence) throw new Error("fake premierepro: markers asked of something other than the sequence");
      return markers;
    } }),
    SequenceEditor: strict("SequenceEditorStatic", { getEditor: (s) => {
      if (s !== sequence) throw new Error("fake premierepro: editor for an unknown sequence");
      return editor;
    } }),
    TickTime: strict("TickTimeStatic", { createWithTicks: (text) => {
      if (typeof text !== "string") throw new TypeError("TickTime.createWithTicks takes ticks as a string");
      return tick(text);
    } }),
    Marker: strict("MarkerStatic", { MARKER_TYPE_COMMENT: "Comment" }),
    Constants: strict("Constants", {
      TrackItemType: strict("TrackItemType", { EMPTY: 0, CLIP: 1, TRANSITION: 2, PREVIEW: 3, FEEDBACK: 4 }),
      MediaType: strict("MediaType", { ANY: 0, DATA: 1, VIDEO: 2, AUDIO: 3 }),
    }),
  });
})();
