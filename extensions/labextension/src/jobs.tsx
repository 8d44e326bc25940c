/**
 * The worker-job table of one cluster. Only React and the pure model: the
 * unit tests render it to static markup.
 */
import * as React from 'react';

import { IJobDisplay, IWorkerJob, describeJob, rowKeys, sortJobs } from './model';

/** The pieces of the details cell, each with its class for tests and styling. */
export function detailPieces(d: IJobDisplay): [string, string][] {
  const pieces: [string, string][] = [];
  switch (d.state) {
    case 'pending':
      if (d.reason) {
        pieces.push(['sandfill-job-reason', d.reason]);
      }
      pieces.push([
        'sandfill-job-start',
        d.estimatedStart ? `starts ${d.estimatedStart}` : 'start not estimated'
      ]);
      break;
    case 'running':
    case 'retiring':
      if (d.state === 'retiring') {
        pieces.push(['sandfill-job-retiring', 'retiring']);
      }
      if (d.timeLeft) {
        pieces.push(['sandfill-job-left', `${d.timeLeft} left`]);
      }
      break;
    case 'ended':
      pieces.push(['sandfill-job-why', d.endedWhy || 'ended']);
      break;
    default:
      pieces.push(['sandfill-job-unknown', d.detail]);
  }
  return pieces;
}

export interface IJobTableProps {
  jobs: IWorkerJob[];
  /** Epoch seconds, for relative times. */
  now: number;
  /** Show a job's log: each submitted job's id becomes a link to it. */
  onLog?: (jobId: string) => void;
}

/** The job cell: the id, a link to the job's log when there is one to show. */
function JobCell({ job, onLog }: { job: IWorkerJob; onLog?: (jobId: string) => void }): JSX.Element {
  if (!job.job_id) {
    return <td className="sandfill-job-id" title="not submitted to Slurm yet">—</td>;
  }
  return (
    <td className="sandfill-job-id">
      {onLog ? (
        <a
          href="#"
          className="sandfill-job-log-link"
          data-testid="sandfill-job-log-link"
          title={`Show the log of job ${job.job_id}`}
          onClick={e => {
            e.preventDefault();
            onLog(job.job_id);
          }}
        >
          {job.job_id}
        </a>
      ) : (
        job.job_id
      )}
    </td>
  );
}

export function JobTable({ jobs, now, onLog }: IJobTableProps): JSX.Element {
  if (!jobs.length) {
    return <p className="sandfill-empty sandfill-no-jobs">No worker jobs.</p>;
  }
  const sorted = sortJobs(jobs);
  const keys = rowKeys(sorted);
  return (
    <div className="sandfill-jobs-wrap">
      <table className="sandfill-jobs" data-testid="sandfill-jobs">
        <thead>
          <tr>
            <th>Job</th>
            <th>State</th>
            <th>Details</th>
            <th>Node</th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((job, i) => {
            const d = describeJob(job, now);
            const pieces = detailPieces(d);
            return (
              <tr
                key={keys[i]}
                className={`sandfill-job sandfill-job-${d.state}`}
                data-testid="sandfill-job"
                data-job-id={job.job_id}
                data-state={d.state}
                title={d.title}
              >
                <JobCell job={job} onLog={onLog} />
                <td className="sandfill-job-state">
                  <span className={d.badgeClass}>{d.label}</span>
                </td>
                <td className="sandfill-job-detail">
                  {pieces.map(([cls, text], i) => (
                    <React.Fragment key={cls}>
                      {i > 0 && ' · '}
                      <span className={cls}>{text}</span>
                    </React.Fragment>
                  ))}
                  {job.workers && job.workers.length > 0 && (
                    <span className="sandfill-job-workers" title="Dask workers">
                      {' '}
                      {d.workers}
                    </span>
                  )}
                </td>
                <td className="sandfill-job-node">{d.node}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
