import { IWorkerJob } from '../src/model';

/** A fixed "now" (epoch seconds) for display tests. */
export const NOW = 1_800_000_000;

/** A worker job with every field empty, overridden by `over`. */
export function makeJob(over: Partial<IWorkerJob>, jobId = '100'): IWorkerJob {
  return {
    job_id: jobId,
    state: 'unknown',
    slurm_state: null,
    reason: null,
    reason_text: null,
    estimated_start: null,
    start_time: null,
    end_time: null,
    time_left: null,
    walltime: null,
    node: null,
    partition: null,
    qos: null,
    workers: [],
    ended_why: null,
    ...over
  };
}
