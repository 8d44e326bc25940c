/**
 * The REST models of the sandfill server extension (docs/lab-api.md), mirrored
 * field for field, and pure functions that turn them into display text.
 *
 * Nothing in this module touches the DOM, the network or JupyterLab: the unit
 * tests exercise it directly. Functions that depend on the time take `now`
 * (epoch seconds) as an argument.
 */

/** The states the server reports for a worker job. */
export type JobState = 'pending' | 'running' | 'retiring' | 'ended' | 'unknown';

/** Every job state, in the order the panel lists them. */
export const JOB_STATES: readonly JobState[] = [
  'running',
  'retiring',
  'pending',
  'unknown',
  'ended'
];

/** An admin-defined cluster template (`GET sandfill/templates`). */
export interface ITemplate {
  name: string;
  description: string;
  /** Cores per worker job. */
  cores: number;
  /** Memory per worker job, e.g. "2GiB". */
  memory: string;
  /** "HH:MM:SS" */
  min_walltime: string;
  /** "HH:MM:SS" */
  max_walltime: string;
  partition: string | null;
  qos: string | null;
}

/** What the cluster manager tries to hold. */
export interface IClusterTarget {
  mode: 'scale' | 'adapt';
  n: number | null;
  minimum: number | null;
  maximum: number | null;
}

/** One Slurm job that hosts Dask workers. */
export interface IWorkerJob {
  job_id: string;
  state: JobState;
  /** Raw Slurm state, e.g. "PENDING", "RUNNING", "COMPLETED", "TIMEOUT". */
  slurm_state: string | null;
  /** Slurm's reason while pending ("Priority", "Resources", …). */
  reason: string | null;
  /** The same in plain words ("waiting for free resources"), from the one job view. */
  reason_text: string | null;
  /** Epoch seconds (squeue --start), pending only. */
  estimated_start: number | null;
  /** Epoch seconds. */
  start_time: number | null;
  /** Epoch seconds: when Slurm will kill the job (running). */
  end_time: number | null;
  /** Seconds left before end_time (running/retiring). */
  time_left: number | null;
  /** Granted time limit, "HH:MM:SS". */
  walltime: string | null;
  node: string | null;
  partition: string | null;
  qos: string | null;
  /** Dask worker names this job hosts. */
  workers: string[];
  /** For "ended", in the job view's words: "retired", "reached its walltime", "cancelled", "node failure", … */
  ended_why: string | null;
  /** Epoch seconds: when an ended job ended, when Slurm says (ended only). */
  ended_at?: number | null;
}

/** A cancel that failed and is being tried again. */
export interface ICancelOwed {
  job_id: string;
  error: string;
  tries: number;
}

/** A Dask cluster of backfill worker jobs (`GET sandfill/clusters`). */
export interface ICluster {
  /** Stable id, also usable with sandfill.dask.connect(id or name). */
  id: string;
  name: string;
  template: string | null;
  /** tls://… */
  scheduler_address: string;
  /** Relative to the server's base URL, e.g. "proxy/8787/status". */
  dashboard_link: string;
  target: IClusterTarget;
  /** Connected Dask workers. */
  workers: number;
  jobs: IWorkerJob[];
  /** Epoch seconds. */
  created: number;
  /** Why worker jobs are held back (not submitted): no gap before a planned start. */
  waiting_reason?: string | null;
  /** Why the cluster's last round of keeping its jobs failed. */
  last_error?: string | null;
  /** Cancels that failed and are being tried again. */
  cancels_owed?: ICancelOwed[];
  /** Epoch seconds: the next planned start of another job on the partition, the bound of the gap workers fit into. */
  next_planned_start?: number | null;
}

/** `POST sandfill/clusters` from a template. */
export interface ICreateFromTemplate {
  template: string;
  name?: string;
  workers?: number;
}

/** `POST sandfill/clusters` from explicit parameters. */
export interface ICreateFromParameters {
  name?: string;
  cores: number;
  memory: string;
  min_walltime: string;
  max_walltime: string;
  partition?: string;
  qos?: string;
}

export type ICreateClusterRequest = ICreateFromTemplate | ICreateFromParameters;

/** `PATCH sandfill/clusters/{id}` bodies. */
export interface IScaleRequest {
  scale: number;
}

export interface IAdaptRequest {
  adapt: { minimum: number; maximum: number };
}

export type IPatchClusterRequest = IScaleRequest | IAdaptRequest;

/** `GET sandfill/clusters/{id}/jobs/{job_id}/log` */
export interface IJobLog {
  job_id: string;
  text: string;
}

/** The body of a 400/404 answer. */
export interface IErrorBody {
  error: string;
}

// ---------------------------------------------------------------------------
// Display helpers
// ---------------------------------------------------------------------------

const STATE_LABELS: Record<JobState, string> = {
  pending: 'Pending',
  running: 'Running',
  retiring: 'Retiring',
  ended: 'Ended',
  unknown: 'Unknown'
};

/** Whether a value from the server is one of the known job states. */
export function isJobState(state: unknown): state is JobState {
  return (
    typeof state === 'string' && (JOB_STATES as readonly string[]).includes(state)
  );
}

/** Human label of a job state; anything unexpected reads as "Unknown". */
export function stateLabel(state: string): string {
  return isJobState(state) ? STATE_LABELS[state] : STATE_LABELS.unknown;
}

/** CSS classes of the badge for a job state. */
export function badgeClass(state: string): string {
  const s = isJobState(state) ? state : 'unknown';
  return `sandfill-badge sandfill-badge-${s}`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/**
 * A duration in seconds as a clock: "0:45", "12:34", "1:02:03", "2d 03:04:05".
 * Negative values count as zero; null/NaN give "—".
 */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '—';
  }
  let s = Math.max(0, Math.floor(seconds));
  const days = Math.floor(s / 86400);
  s -= days * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (days > 0) {
    return `${days}d ${pad2(h)}:${pad2(m)}:${pad2(s)}`;
  }
  if (h > 0) {
    return `${h}:${pad2(m)}:${pad2(s)}`;
  }
  return `${m}:${pad2(s)}`;
}

/** A span of seconds in words, coarse: "45 s", "3 min", "2 h 5 min", "3 d 4 h". */
export function formatSpan(seconds: number): string {
  const s = Math.round(Math.abs(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  const totalMin = Math.round(s / 60);
  if (totalMin < 60) {
    return `${totalMin} min`;
  }
  const totalH = Math.floor(totalMin / 60);
  if (totalH < 24) {
    const m = totalMin - totalH * 60;
    return m ? `${totalH} h ${m} min` : `${totalH} h`;
  }
  const d = Math.floor(totalH / 24);
  const h = totalH - d * 24;
  return h ? `${d} d ${h} h` : `${d} d`;
}

/** Within this many seconds of now, a time reads as "now". */
const NOW_WINDOW = 5;

/** Estimates further out than this are Slurm placeholders, not real estimates. */
const FAR_FUTURE = 365 * 86400;

/**
 * An epoch time relative to `now` (both epoch seconds): "in 3 min",
 * "2 min ago", "now"; null when there is no usable time.
 */
export function formatRelative(
  when: number | null | undefined,
  now: number
): string | null {
  if (when === null || when === undefined || !isFinite(when) || when <= 0) {
    return null;
  }
  const delta = when - now;
  if (delta > FAR_FUTURE) {
    return null;
  }
  if (Math.abs(delta) < NOW_WINDOW) {
    return 'now';
  }
  return delta > 0 ? `in ${formatSpan(delta)}` : `${formatSpan(delta)} ago`;
}

/**
 * Seconds a running or retiring job has left: the server's `time_left`,
 * else derived from `end_time`; null when neither is known.
 */
export function secondsLeft(job: IWorkerJob, now: number): number | null {
  if (job.time_left !== null && job.time_left !== undefined) {
    return Math.max(0, job.time_left);
  }
  if (job.end_time !== null && job.end_time !== undefined) {
    return Math.max(0, job.end_time - now);
  }
  return null;
}

/** Everything the job table shows for one job, as text. */
export interface IJobDisplay {
  jobId: string;
  state: JobState;
  label: string;
  badgeClass: string;
  /** Slurm's pending reason (pending only). */
  reason: string | null;
  /** Estimated start relative to now, e.g. "in 3 min" (pending only). */
  estimatedStart: string | null;
  /** Time left as a clock, e.g. "12:34" (running/retiring only). */
  timeLeft: string | null;
  /** Why an ended job ended. */
  endedWhy: string | null;
  node: string;
  workers: string;
  /** One line combining the state-specific facts, for the details column. */
  detail: string;
  /** Longer text for a tooltip. */
  title: string;
}

/** Why an ended job ended, falling back to Slurm's raw state. */
export function endedWhy(job: IWorkerJob): string {
  if (job.ended_why) {
    return job.ended_why;
  }
  if (job.slurm_state) {
    return job.slurm_state.toLowerCase();
  }
  return 'ended';
}

/** Turn a worker job into the text the job table shows. */
export function describeJob(job: IWorkerJob, now: number): IJobDisplay {
  const state: JobState = isJobState(job.state) ? job.state : 'unknown';
  let reason: string | null = null;
  let estimatedStart: string | null = null;
  let timeLeft: string | null = null;
  let why: string | null = null;
  const parts: string[] = [];

  switch (state) {
    case 'pending': {
      reason = job.reason_text || job.reason || null;
      estimatedStart = formatRelative(job.estimated_start, now);
      if (reason) {
        parts.push(reason);
      }
      parts.push(
        estimatedStart ? `starts ${estimatedStart}` : 'start not estimated'
      );
      break;
    }
    case 'running':
    case 'retiring': {
      const left = secondsLeft(job, now);
      timeLeft = left === null ? null : formatDuration(left);
      if (state === 'retiring') {
        parts.push('retiring');
      }
      if (timeLeft) {
        parts.push(`${timeLeft} left`);
      }
      break;
    }
    case 'ended': {
      why = endedWhy(job);
      parts.push(why);
      break;
    }
    default: {
      parts.push(job.slurm_state ? `Slurm: ${job.slurm_state}` : 'state not known');
    }
  }

  return {
    jobId: job.job_id,
    state,
    label: STATE_LABELS[state],
    badgeClass: badgeClass(state),
    reason,
    estimatedStart,
    timeLeft,
    endedWhy: why,
    node: job.node || '—',
    workers: job.workers && job.workers.length ? job.workers.join(', ') : '—',
    detail: parts.join(' · '),
    title: jobTitle(job, state)
  };
}

/** The tooltip of a job's row: id, state and what Slurm says about it. */
function jobTitle(job: IWorkerJob, state: JobState): string {
  const parts = [`job ${job.job_id}`, STATE_LABELS[state]];
  if (job.slurm_state) {
    parts.push(`Slurm ${job.slurm_state}`);
  }
  if (job.partition) {
    parts.push(`partition ${job.partition}`);
  }
  if (job.qos) {
    parts.push(`QOS ${job.qos}`);
  }
  if (job.walltime) {
    parts.push(`walltime ${job.walltime}`);
  }
  return parts.join(' · ');
}

/** Count of jobs per state. */
export function countStates(jobs: IWorkerJob[]): Record<JobState, number> {
  const counts: Record<JobState, number> = {
    pending: 0,
    running: 0,
    retiring: 0,
    ended: 0,
    unknown: 0
  };
  for (const job of jobs) {
    counts[isJobState(job.state) ? job.state : 'unknown'] += 1;
  }
  return counts;
}

/**
 * The one-line summary of a cluster: connected workers, then the number of
 * jobs per state, zero counts left out: "4 workers · 4 running · 1 pending".
 */
export function summaryLine(cluster: Pick<ICluster, 'workers' | 'jobs'>): string {
  const n = cluster.workers;
  const parts = [`${n} ${n === 1 ? 'worker' : 'workers'}`];
  const counts = countStates(cluster.jobs || []);
  for (const state of JOB_STATES) {
    if (counts[state] > 0) {
      parts.push(`${counts[state]} ${state}`);
    }
  }
  return parts.join(' · ');
}

/** What the cluster is held at: "scale to 4" or "adapt 1–8". */
export function targetLine(target: IClusterTarget | null | undefined): string {
  if (!target) {
    return 'no target';
  }
  if (target.mode === 'adapt') {
    return `adapt ${target.minimum ?? 0}–${target.maximum ?? '?'}`;
  }
  return `scale to ${target.n ?? 0}`;
}

/** Jobs in table order: by state (running first, ended last), then by id. */
export function sortJobs(jobs: IWorkerJob[]): IWorkerJob[] {
  const rank = (j: IWorkerJob) =>
    JOB_STATES.indexOf(isJobState(j.state) ? j.state : 'unknown');
  return [...jobs].sort((a, b) => {
    const d = rank(a) - rank(b);
    if (d !== 0) {
      return d;
    }
    return a.job_id.localeCompare(b.job_id, undefined, { numeric: true });
  });
}

/**
 * A React key for each job, in order: its Slurm job id, or, for a job the cluster wants
 * but Slurm does not know yet (held back, or being submitted: no id), "unsubmitted-N".
 * A repeated id gets "-N", so no two rows ever share a key (shared keys leave ghost
 * rows behind when the table changes).
 */
export function rowKeys(jobs: IWorkerJob[]): string[] {
  const seen = new Map<string, number>();
  return jobs.map(job => {
    const base = job.job_id ? job.job_id : 'unsubmitted';
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    return job.job_id && n === 0 ? base : `${base}-${n}`;
  });
}

/**
 * What the panel says when a request failed: the server's own words for a refusal (a 4xx
 * names the bad field and value), with no status number in front; a server failure says so.
 */
export function describeFailure(status: number | null, message: string): string {
  if (status !== null && status >= 500) {
    return `The server failed (HTTP ${status}): ${message}`;
  }
  return message;
}

/** Whether a cluster holds no workers and asks for none: the panel suggests the next step. */
export function isIdleCluster(cluster: Pick<ICluster, 'target' | 'jobs' | 'workers'>): boolean {
  const t = cluster.target;
  const asksNone = !t || (t.mode === 'scale' && !t.n) || (t.mode === 'adapt' && !t.maximum);
  const live = (cluster.jobs || []).some(j => j.state !== 'ended');
  return asksNone && !live && !cluster.workers;
}

/** The next step for a cluster with no workers. */
export const IDLE_HINT =
  'No workers yet: type a number and press Scale (2 is a good start), or Adapt to let Dask choose within bounds.';

/** What a template gives, in words: "1 core, 2GiB per job, walltime 00:05:00–01:00:00". */
export function templateFacts(t: ITemplate): string {
  const parts = [`${t.cores} ${t.cores === 1 ? 'core' : 'cores'}`, `${t.memory} per job`, `walltime ${t.min_walltime}–${t.max_walltime}`];
  if (t.partition) {
    parts.push(`partition ${t.partition}`);
  }
  if (t.qos) {
    parts.push(`QOS ${t.qos}`);
  }
  return parts.join(', ');
}

/**
 * The line under the template select: the admin's description once (it usually says the
 * same as the facts), else the facts; the facts are always in the tooltip.
 */
export function templateInfo(t: ITemplate): { text: string; title: string } {
  const facts = templateFacts(t);
  return { text: t.description.trim() || facts, title: facts };
}

/** The Python cell the panel inserts to connect a notebook to a cluster. */
export function connectSnippet(clusterName: string): string {
  // A JSON string literal is also a valid Python string literal.
  return [
    'from sandfill.dask import connect',
    `client = connect(${JSON.stringify(clusterName)})`,
    'client'
  ].join('\n');
}

/**
 * The browser URL of a cluster's dashboard. `link` is relative to the Jupyter
 * server's base URL (e.g. "proxy/8787/status"); an absolute http(s) URL is
 * returned as it is. Leading slashes on a relative link are dropped so it
 * stays under the base URL.
 */
export function dashboardUrl(baseUrl: string, link: string): string {
  if (/^https?:\/\//i.test(link)) {
    return link;
  }
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return base + link.replace(/^\/+/, '');
}

/** Polling intervals, in milliseconds. */
export const POLL_INTERVAL = 2000;
export const POLL_MAX_INTERVAL = 30000;

/**
 * The delay before the next poll: the base interval while the panel is visible
 * and the last request succeeded, else double the previous delay, up to the
 * maximum.
 */
export function nextPollDelay(
  previous: number,
  ok: boolean,
  visible: boolean
): number {
  if (ok && visible) {
    return POLL_INTERVAL;
  }
  return Math.min(Math.max(previous, POLL_INTERVAL) * 2, POLL_MAX_INTERVAL);
}

/**
 * Parse a non-negative integer typed by the user; null when it is not one.
 */
export function parseCount(text: string): number | null {
  const t = text.trim();
  if (!/^\d+$/.test(t)) {
    return null;
  }
  const n = parseInt(t, 10);
  return Number.isSafeInteger(n) ? n : null;
}

/** A value typed into the panel, or why it cannot be used. */
export type Typed<T> = { ok: true; value: T } | { ok: false; error: string };

/** The worker count typed into a cluster's Scale control. */
export function readScale(n: string): Typed<number> {
  const value = parseCount(n);
  return value === null
    ? { ok: false, error: `Scale needs a whole number of workers, not "${n}".` }
    : { ok: true, value };
}

/** The bounds typed into a cluster's Adapt control. */
export function readAdapt(
  minimum: string,
  maximum: string
): Typed<{ minimum: number; maximum: number }> {
  const lo = parseCount(minimum);
  const hi = parseCount(maximum);
  if (lo === null || hi === null) {
    return {
      ok: false,
      error: `Adapt needs whole numbers, not "${minimum}" and "${maximum}".`
    };
  }
  if (lo > hi) {
    return { ok: false, error: `Adapt minimum ${lo} is above maximum ${hi}.` };
  }
  return { ok: true, value: { minimum: lo, maximum: hi } };
}
