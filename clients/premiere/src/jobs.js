// The panel's job list: snapshots from the bridge (GET /v1/jobs, WebSocket "job" events),
// the placement plan the panel made for each job it submitted, and whether the results are
// already in the sequence. Plain data, so it is tested with node.
"use strict";

const FINISHED = new Set(["done", "failed", "cancelled"]);

/**
 * @typedef {object} RegionStatus
 * @property {number} index
 * @property {string} state
 * @property {number} frames_done
 * @property {number} frame_count
 * @property {number | null} [fps]
 * @property {number | null} [eta_seconds]
 * @property {string | null} [output]
 * @property {string | null} [otio]
 * @property {string | null} [error]
 */

/**
 * @typedef {object} Job
 * @property {string} id
 * @property {string} state
 * @property {RegionStatus[]} regions
 * @property {string} created
 * @property {string} label
 */

/**
 * @typedef {object} JobView  what one row of the list shows
 * @property {string} id
 * @property {string} title
 * @property {string} state
 * @property {number} progress      0..1
 * @property {string} detail        plain words
 * @property {boolean} canCancel
 * @property {string | null} error
 * @property {boolean} placed
 */

/**
 * Seconds as "1 min 05 s" / "12 s".
 * @param {number} seconds
 */
function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s` : `${s} s`;
}

class JobBook {
  /** @param {{load?: () => string | null, save?: (text: string) => void}} [storage] where plans survive a reload */
  constructor(storage = {}) {
    /** @type {Map<string, Job>} */
    this.jobs = new Map();
    /** @type {Record<string, {placements: import("./regions.js").Placement[], sequenceId: string,
     *          placement: string, placed: boolean, placeError?: string}>} */
    this.plans = {};
    this.storage = storage;
    try {
      const text = storage.load ? storage.load() : null;
      if (text) this.plans = JSON.parse(text);
    } catch {
      this.plans = {}; // a damaged store loses only the "already placed" marks
    }
  }

  /** @param {Job} job  a snapshot; older snapshots never replace newer finished ones */
  update(job) {
    const known = this.jobs.get(job.id);
    if (known && FINISHED.has(known.state) && !FINISHED.has(job.state)) return;
    this.jobs.set(job.id, job);
  }

  /**
   * @param {string} jobId
   * @param {import("./regions.js").Placement[]} placements
   * @param {string} sequenceId
   * @param {string} placement  "above" | "replace"
   */
  addPlan(jobId, placements, sequenceId, placement) {
    this.plans[jobId] = { placements, sequenceId, placement, placed: false };
    this.persist();
  }

  /** @param {string} jobId @param {string} [error] */
  markPlaced(jobId, error) {
    const plan = this.plans[jobId];
    if (!plan) return;
    if (error) plan.placeError = error;
    else {
      plan.placed = true;
      delete plan.placeError;
    }
    this.persist();
  }

  persist() {
    if (this.storage.save) this.storage.save(JSON.stringify(this.plans));
  }

  /** Jobs that finished rendering, were submitted from this panel and are not placed yet. */
  readyToPlace() {
    return [...this.jobs.values()].filter((j) => {
      const plan = this.plans[j.id];
      return j.state === "done" && plan && !plan.placed && !plan.placeError;
    });
  }

  /** @returns {JobView[]} newest first */
  views() {
    return [...this.jobs.values()]
      .sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0))
      .map((j) => this.view(j));
  }

  /** @param {Job} job @returns {JobView} */
  view(job) {
    const total = job.regions.reduce((n, r) => n + (r.frame_count || 0), 0);
    const done = job.regions.reduce((n, r) => n + Math.min(r.frames_done || 0, r.frame_count || 0), 0);
    const plan = this.plans[job.id];
    const failed = job.regions.filter((r) => r.state === "failed");
    let detail;
    let error = null;
    switch (job.state) {
      case "queued":
        detail = "waiting for the GPU";
        break;
      case "running": {
        const running = job.regions.find((r) => r.state === "running");
        const fps = running && running.fps ? `, ${running.fps.toFixed(1)} frames/s` : "";
        const eta = running && running.eta_seconds != null ? `, about ${duration(running.eta_seconds)} left` : "";
        detail = `rendering: ${done} of ${total} frames${fps}${eta}`;
        break;
      }
      case "done":
        if (plan && plan.placeError) {
          detail = "rendered, but not placed in the sequence";
          error = plan.placeError;
        } else if (plan && plan.placed) detail = "rendered and placed in the sequence";
        else if (plan) detail = "rendered; placing in the sequence";
        else detail = "rendered (submitted elsewhere; not placed by this panel)";
        break;
      case "failed":
        detail = `failed: ${failed.length} of ${job.regions.length} regions did not render`;
        error = failed.map((r) => `region ${r.index + 1}: ${r.error || "unknown error"}`).join("\n");
        break;
      case "cancelled":
        detail = "cancelled";
        break;
      default:
        detail = job.state;
    }
    const title = plan && plan.placements.length
      ? `${plan.placements[0].instruction}${plan.placements.length > 1 ? ` (+${plan.placements.length - 1})` : ""}`
      : job.label || job.id;
    return {
      id: job.id, title, state: job.state, progress: total ? done / total : 0, detail,
      canCancel: !FINISHED.has(job.state), error, placed: Boolean(plan && plan.placed),
    };
  }
}

/**
 * A bridge error in plain words, with what to do.
 * @param {{code?: string, message?: string} | null | undefined} error
 */
function plainError(error) {
  const code = error && error.code;
  const message = (error && error.message) || "";
  switch (code) {
    case "unauthorized":
      return "The sidecar refused the token this panel keeps (it has a new one since the panel was paired). Pair " +
        "again: run \"liveedit premiere pair\" in a terminal and enter the code in Settings.";
    case "wrong_code":
    case "no_pairing_code":
    case "too_many_attempts":
      return message ? message.charAt(0).toUpperCase() + message.slice(1) : "The sidecar refused the pairing code.";
    case "forbidden_origin":
    case "forbidden_host":
      return "The sidecar refused this panel's address. Update the LiveEdit sidecar and the panel to the same version.";
    case "unavailable":
      return `The sidecar cannot take jobs right now (${message}). Restart it with: liveedit serve`;
    case "invalid_job":
    case "invalid_request":
    case "bad_request":
      return message ? message.charAt(0).toUpperCase() + message.slice(1) : "The sidecar refused the request.";
    case "not_found":
      return message || "The sidecar does not know that job any more.";
    case "internal":
      return "The sidecar hit an internal error; its log has the details.";
    default:
      return message || "Unknown error from the sidecar.";
  }
}

module.exports = { JobBook, plainError, duration, FINISHED };
