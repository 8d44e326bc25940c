/**
 * The timeline of a cluster's worker jobs, as SVG: one lane per job, a bar for the time it
 * waits (pending, up to Slurm's estimated start), runs (up to its walltime), retires or ran
 * (ended), the line of now, and the next planned start of another job: the bound of the
 * gap the workers fit into. React and the pure model only (the unit tests render it).
 */
import * as React from 'react';

import {
  IWorkerJob,
  JobState,
  describeJob,
  formatRelative,
  isJobState,
  rowKeys,
  sortJobs
} from './model';

/** How far back the timeline reaches at most, and ahead at least (seconds). */
export const TIMELINE_PAST = 3600;
export const TIMELINE_AHEAD = 600;
/** How far ahead it reaches at most (seconds). */
export const TIMELINE_MAX_AHEAD = 24 * 3600;

/** One job's bar, in epoch seconds. */
export interface ITimelineBar {
  key: string;
  jobId: string;
  state: JobState;
  from: number;
  to: number;
  /** The end is not known (pending without an estimate): the bar is a stub. */
  open: boolean;
  /** The bar's tooltip. */
  title: string;
}

export interface ITimeline {
  from: number;
  to: number;
  now: number;
  /** The next planned start of another job (the gap's end), when known and ahead. */
  bound: number | null;
  bars: ITimelineBar[];
}

/** [from, to] of a job's bar, or null when there is nothing to draw. */
function span(job: IWorkerJob, state: JobState, now: number): [number, number, boolean] | null {
  switch (state) {
    case 'pending': {
      const est = job.estimated_start;
      return est && est > now ? [now, est, false] : [now, now, true];
    }
    case 'running':
    case 'retiring': {
      const end = job.end_time ?? (job.time_left !== null ? now + job.time_left : now);
      return [job.start_time ?? now, Math.max(end, now), false];
    }
    case 'ended': {
      // a job the cluster ended itself may still carry Slurm's planned end: never past now
      const a = job.start_time ?? job.ended_at ?? null;
      const b = Math.min(job.ended_at ?? job.start_time ?? now, now);
      return a !== null ? [Math.min(a, b), b, false] : null;
    }
    default:
      return null;
  }
}

/** The timeline's bars and time range for these jobs at `now`. */
export function timeline(jobs: IWorkerJob[], now: number, bound?: number | null): ITimeline {
  const sorted = sortJobs(jobs);
  const keys = rowKeys(sorted);
  const bars: ITimelineBar[] = [];
  sorted.forEach((job, i) => {
    const state: JobState = isJobState(job.state) ? job.state : 'unknown';
    const s = span(job, state, now);
    if (s) {
      const d = describeJob(job, now);
      const what = d.detail ? `${d.label}: ${d.detail}` : d.label;
      bars.push({ key: keys[i], jobId: job.job_id, state, from: s[0], to: s[1], open: s[2], title: `${job.job_id ? `job ${job.job_id}` : 'not submitted yet'} — ${what}` });
    }
  });
  const ahead = bound && bound > now ? bound : null;
  const from = Math.max(now - TIMELINE_PAST, Math.min(now, ...bars.map(b => b.from)));
  const to = Math.min(now + TIMELINE_MAX_AHEAD, Math.max(now + TIMELINE_AHEAD, ahead ?? now, ...bars.map(b => b.to)));
  return { from, to, now, bound: ahead, bars };
}

/** SVG geometry: lanes of this height, a width of 200 user units (about the sidebar's). */
const WIDTH = 200;
const LANE = 14;
const STUB = 5;

export interface ITimelineProps {
  jobs: IWorkerJob[];
  now: number;
  bound?: number | null;
}

export function Timeline({ jobs, now, bound }: ITimelineProps): JSX.Element | null {
  const t = timeline(jobs, now, bound);
  if (!t.bars.length) {
    return null;
  }
  const x = (when: number) => ((Math.min(Math.max(when, t.from), t.to) - t.from) / (t.to - t.from)) * WIDTH;
  const height = t.bars.length * LANE;
  const boundText = t.bound ? `next planned start ${formatRelative(t.bound, now) ?? ''}`.trim() : '';
  return (
    <figure className="sandfill-timeline-wrap">
      <svg
        className="sandfill-timeline"
        data-testid="sandfill-timeline"
        viewBox={`0 0 ${WIDTH} ${height}`}
        preserveAspectRatio="none"
        role="img"
        aria-label="Timeline of the worker jobs"
      >
        {t.bars.map((b, i) => (
          <rect
            key={b.key}
            className={`sandfill-tl-bar sandfill-tl-${b.state}${b.open ? ' sandfill-tl-open' : ''}`}
            data-job-id={b.jobId}
            data-state={b.state}
            x={x(b.from)}
            y={i * LANE + 2}
            width={Math.max(b.open ? STUB : 1, x(b.to) - x(b.from))}
            height={LANE - 4}
          >
            <title>{b.title}</title>
          </rect>
        ))}
        <line className="sandfill-tl-now" data-testid="sandfill-tl-now" x1={x(now)} x2={x(now)} y1={0} y2={height}>
          <title>now</title>
        </line>
        {t.bound && (
          <g className="sandfill-tl-bound" data-testid="sandfill-tl-bound">
            <line x1={x(t.bound)} x2={x(t.bound)} y1={0} y2={height} />
            <title>{boundText}: the gap the workers fit into ends there</title>
          </g>
        )}
      </svg>
      <figcaption className="sandfill-timeline-legend">
        <span className="sandfill-tl-range" data-testid="sandfill-tl-range">
          {formatRelative(t.from, now) ?? ''} → {formatRelative(t.to, now) ?? ''}
        </span>
        <span className="sandfill-tl-key sandfill-tl-now-key">now</span>
        <span className="sandfill-tl-key sandfill-tl-pending">pending</span>
        <span className="sandfill-tl-key sandfill-tl-running">running</span>
        <span className="sandfill-tl-key sandfill-tl-retiring">retiring</span>
        <span className="sandfill-tl-key sandfill-tl-ended">ended</span>
        {boundText && <span className="sandfill-tl-key sandfill-tl-bound-key">{boundText}</span>}
      </figcaption>
    </figure>
  );
}
