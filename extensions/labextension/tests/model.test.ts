import { describe, expect, it } from 'vitest';

import { NOW, makeJob } from './fixtures';

import {
  ICluster,
  IWorkerJob,
  POLL_INTERVAL,
  POLL_MAX_INTERVAL,
  badgeClass,
  connectSnippet,
  countStates,
  dashboardUrl,
  IDLE_HINT,
  describeFailure,
  describeJob,
  formatDuration,
  formatRelative,
  formatSpan,
  isIdleCluster,
  nextPollDelay,
  parseCount,
  readAdapt,
  readScale,
  rowKeys,
  sortJobs,
  stateLabel,
  summaryLine,
  targetLine,
  templateInfo
} from '../src/model';

const job = makeJob;

/** Jobs '1', '2', ... in these states. */
function jobsIn(states: IWorkerJob['state'][]): IWorkerJob[] {
  return states.map((state, i) => job({ job_id: String(i + 1), state }));
}

function cluster(over: Partial<ICluster>): ICluster {
  return {
    id: 'c1',
    name: 'demo',
    template: 'small',
    scheduler_address: 'tls://127.0.0.1:8786',
    dashboard_link: 'proxy/8787/status',
    target: { mode: 'scale', n: 4, minimum: null, maximum: null },
    workers: 0,
    jobs: [],
    created: NOW - 60,
    ...over
  };
}

describe('formatDuration', () => {
  it.each([
    [0, '0:00'],
    [45, '0:45'],
    [59.9, '0:59'],
    [60, '1:00'],
    [754, '12:34'],
    [3599, '59:59'],
    [3600, '1:00:00'],
    [3723, '1:02:03'],
    [86400 + 3 * 3600 + 4 * 60 + 5, '1d 03:04:05']
  ])('%s s -> %s', (s, text) => {
    expect(formatDuration(s)).toBe(text);
  });

  it('clamps negatives and marks missing values', () => {
    expect(formatDuration(-5)).toBe('0:00');
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(undefined)).toBe('—');
    expect(formatDuration(NaN)).toBe('—');
  });
});

describe('formatSpan / formatRelative', () => {
  it('words a span coarsely', () => {
    expect(formatSpan(45)).toBe('45 s');
    expect(formatSpan(180)).toBe('3 min');
    expect(formatSpan(200)).toBe('3 min');
    expect(formatSpan(2 * 3600 + 5 * 60)).toBe('2 h 5 min');
    expect(formatSpan(7200)).toBe('2 h');
    expect(formatSpan(3 * 86400 + 4 * 3600)).toBe('3 d 4 h');
  });

  it('is relative to now, both ways', () => {
    expect(formatRelative(NOW + 180, NOW)).toBe('in 3 min');
    expect(formatRelative(NOW + 30, NOW)).toBe('in 30 s');
    expect(formatRelative(NOW - 120, NOW)).toBe('2 min ago');
    expect(formatRelative(NOW + 2, NOW)).toBe('now');
    expect(formatRelative(NOW - 2, NOW)).toBe('now');
  });

  it('gives null for no or placeholder times', () => {
    expect(formatRelative(null, NOW)).toBeNull();
    expect(formatRelative(0, NOW)).toBeNull();
    expect(formatRelative(NOW + 400 * 86400, NOW)).toBeNull();
  });
});

describe('state labels and badges', () => {
  it.each([
    ['pending', 'Pending'],
    ['running', 'Running'],
    ['retiring', 'Retiring'],
    ['ended', 'Ended'],
    ['unknown', 'Unknown']
  ])('%s', (state, label) => {
    expect(stateLabel(state)).toBe(label);
    expect(badgeClass(state)).toBe(`sandfill-badge sandfill-badge-${state}`);
  });

  it('treats an unexpected state as unknown', () => {
    expect(stateLabel('exploded')).toBe('Unknown');
    expect(badgeClass('exploded')).toBe('sandfill-badge sandfill-badge-unknown');
  });
});

describe('describeJob', () => {
  it('pending: reason and relative estimated start', () => {
    const d = describeJob(
      job({
        job_id: '4242',
        state: 'pending',
        slurm_state: 'PENDING',
        reason: 'Priority',
        estimated_start: NOW + 180,
        partition: 'batch'
      }),
      NOW
    );
    expect(d.state).toBe('pending');
    expect(d.label).toBe('Pending');
    expect(d.badgeClass).toContain('sandfill-badge-pending');
    expect(d.reason).toBe('Priority');
    expect(d.estimatedStart).toBe('in 3 min');
    expect(d.timeLeft).toBeNull();
    expect(d.endedWhy).toBeNull();
    expect(d.detail).toBe('Priority · starts in 3 min');
    expect(d.node).toBe('—');
    expect(d.title).toContain('partition batch');
  });

  it('pending without an estimate says so', () => {
    const d = describeJob(job({ state: 'pending', reason: 'Resources' }), NOW);
    expect(d.estimatedStart).toBeNull();
    expect(d.detail).toBe('Resources · start not estimated');
  });

  it('running: time left from time_left, node and workers', () => {
    const d = describeJob(
      job({
        job_id: '7',
        state: 'running',
        slurm_state: 'RUNNING',
        time_left: 754,
        end_time: NOW + 9999,
        node: 'node2',
        workers: ['sandfill-7-0', 'sandfill-7-1']
      }),
      NOW
    );
    expect(d.label).toBe('Running');
    expect(d.timeLeft).toBe('12:34');
    expect(d.detail).toBe('12:34 left');
    expect(d.node).toBe('node2');
    expect(d.workers).toBe('sandfill-7-0, sandfill-7-1');
    expect(d.reason).toBeNull();
    expect(d.estimatedStart).toBeNull();
  });

  it('running: time left from end_time when time_left is missing', () => {
    const d = describeJob(job({ state: 'running', end_time: NOW + 3723 }), NOW);
    expect(d.timeLeft).toBe('1:02:03');
  });

  it('retiring: labelled and with time left', () => {
    const d = describeJob(
      job({ state: 'retiring', slurm_state: 'RUNNING', time_left: 62, node: 'node1' }),
      NOW
    );
    expect(d.label).toBe('Retiring');
    expect(d.badgeClass).toContain('sandfill-badge-retiring');
    expect(d.timeLeft).toBe('1:02');
    expect(d.detail).toBe('retiring · 1:02 left');
  });

  it('ended: shows why', () => {
    const d = describeJob(
      job({ state: 'ended', slurm_state: 'TIMEOUT', ended_why: 'walltime' }),
      NOW
    );
    expect(d.label).toBe('Ended');
    expect(d.endedWhy).toBe('walltime');
    expect(d.detail).toBe('walltime');
    expect(d.timeLeft).toBeNull();
  });

  it('ended without a why falls back to the Slurm state', () => {
    const d = describeJob(job({ state: 'ended', slurm_state: 'CANCELLED' }), NOW);
    expect(d.endedWhy).toBe('cancelled');
  });

  it('unknown: says the state is not known', () => {
    const d = describeJob(job({ state: 'unknown' }), NOW);
    expect(d.label).toBe('Unknown');
    expect(d.badgeClass).toContain('sandfill-badge-unknown');
    expect(d.detail).toBe('state not known');
    const d2 = describeJob(job({ state: 'unknown', slurm_state: 'SUSPENDED' }), NOW);
    expect(d2.detail).toBe('Slurm: SUSPENDED');
  });

  it('an unexpected state from the server renders as unknown', () => {
    const d = describeJob(job({ state: 'weird' as never }), NOW);
    expect(d.state).toBe('unknown');
  });
});

describe('summaryLine', () => {
  it('counts workers and jobs per state, omitting zeros', () => {
    const jobs = jobsIn(['running', 'running', 'running', 'running', 'pending']);
    expect(summaryLine(cluster({ workers: 4, jobs }))).toBe(
      '4 workers · 4 running · 1 pending'
    );
  });

  it('orders states and uses the singular', () => {
    const jobs = jobsIn(['ended', 'pending', 'unknown', 'retiring', 'running']);
    expect(summaryLine(cluster({ workers: 1, jobs }))).toBe(
      '1 worker · 1 running · 1 retiring · 1 pending · 1 unknown · 1 ended'
    );
    expect(summaryLine(cluster({ workers: 0, jobs: [] }))).toBe('0 workers');
  });

  it('countStates tallies every state', () => {
    expect(
      countStates([job({ state: 'pending' }), job({ state: 'pending' })])
    ).toEqual({ pending: 2, running: 0, retiring: 0, ended: 0, unknown: 0 });
  });
});

describe('sortJobs', () => {
  it('running first, ended last, then numeric id', () => {
    const order = sortJobs([
      job({ job_id: '10', state: 'ended' }),
      job({ job_id: '9', state: 'pending' }),
      job({ job_id: '11', state: 'running' }),
      job({ job_id: '2', state: 'running' })
    ]).map(j => j.job_id);
    expect(order).toEqual(['2', '11', '9', '10']);
  });
});

describe('targetLine', () => {
  it('describes scale and adapt targets', () => {
    expect(targetLine({ mode: 'scale', n: 4, minimum: null, maximum: null })).toBe(
      'scale to 4'
    );
    expect(targetLine({ mode: 'adapt', n: null, minimum: 1, maximum: 8 })).toBe(
      'adapt 1–8'
    );
  });
});

describe('connectSnippet', () => {
  it('matches the snippet in docs/lab-api.md', () => {
    expect(connectSnippet('demo')).toBe(
      'from sandfill.dask import connect\nclient = connect("demo")\nclient'
    );
  });

  it('quotes names safely', () => {
    expect(connectSnippet('a"b\\c')).toContain('connect("a\\"b\\\\c")');
  });
});

describe('dashboardUrl', () => {
  it('joins the relative link to the base URL', () => {
    expect(dashboardUrl('/user/alice/', 'proxy/8787/status')).toBe(
      '/user/alice/proxy/8787/status'
    );
    expect(dashboardUrl('/', 'proxy/8787/status')).toBe('/proxy/8787/status');
    expect(dashboardUrl('http://h:8888/lab-base', '/proxy/8787/status')).toBe(
      'http://h:8888/lab-base/proxy/8787/status'
    );
  });

  it('keeps absolute links', () => {
    expect(dashboardUrl('/user/a/', 'https://dash.example/status')).toBe(
      'https://dash.example/status'
    );
  });
});

describe('nextPollDelay', () => {
  it('polls fast while visible and healthy', () => {
    expect(nextPollDelay(POLL_INTERVAL, true, true)).toBe(POLL_INTERVAL);
    expect(nextPollDelay(16000, true, true)).toBe(POLL_INTERVAL);
  });

  it('doubles up to the maximum when hidden or failing', () => {
    let d = POLL_INTERVAL;
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      d = nextPollDelay(d, false, true);
      seen.push(d);
    }
    expect(seen).toEqual([4000, 8000, 16000, 30000, 30000, 30000]);
    expect(nextPollDelay(POLL_INTERVAL, true, false)).toBe(4000);
    expect(nextPollDelay(POLL_MAX_INTERVAL, true, false)).toBe(POLL_MAX_INTERVAL);
  });
});

describe('parseCount', () => {
  it('accepts whole numbers only', () => {
    expect(parseCount(' 8 ')).toBe(8);
    expect(parseCount('0')).toBe(0);
    expect(parseCount('-1')).toBeNull();
    expect(parseCount('2.5')).toBeNull();
    expect(parseCount('')).toBeNull();
    expect(parseCount('abc')).toBeNull();
  });
});

describe('readScale and readAdapt', () => {
  it('read the numbers typed into the Scale and Adapt controls', () => {
    expect(readScale(' 4 ')).toEqual({ ok: true, value: 4 });
    expect(readAdapt('0', '8')).toEqual({
      ok: true,
      value: { minimum: 0, maximum: 8 }
    });
    expect(readAdapt('3', '3')).toEqual({
      ok: true,
      value: { minimum: 3, maximum: 3 }
    });
  });

  it('say what is wrong, with the text that was typed', () => {
    expect(readScale('four')).toEqual({
      ok: false,
      error: 'Scale needs a whole number of workers, not "four".'
    });
    expect(readAdapt('1', '-2')).toEqual({
      ok: false,
      error: 'Adapt needs whole numbers, not "1" and "-2".'
    });
    expect(readAdapt('5', '2')).toEqual({
      ok: false,
      error: 'Adapt minimum 5 is above maximum 2.'
    });
  });
});

describe('rowKeys', () => {
  it('gives every row its own key: job ids, then unsubmitted-N for jobs without one', () => {
    const jobs = [makeJob({}, '7'), makeJob({}, ''), makeJob({}, ''), makeJob({}, '7')];
    expect(rowKeys(jobs)).toEqual(['7', 'unsubmitted-0', 'unsubmitted-1', '7-1']);
    expect(new Set(rowKeys(jobs)).size).toBe(jobs.length);
  });
});

describe('describeFailure', () => {
  it("shows a refusal in the server's words, without the status in front", () => {
    expect(describeFailure(400, 'scale: must be from 0 to 64, not 999')).toBe('scale: must be from 0 to 64, not 999');
    expect(describeFailure(404, "no cluster 'x'")).toBe("no cluster 'x'");
    expect(describeFailure(null, 'cannot reach the Jupyter server (offline)')).toBe('cannot reach the Jupyter server (offline)');
  });

  it('says when the server itself failed', () => {
    expect(describeFailure(500, 'Internal Server Error')).toBe('The server failed (HTTP 500): Internal Server Error');
  });
});

describe('isIdleCluster', () => {
  const scale = (n: number) => ({ mode: 'scale' as const, n, minimum: null, maximum: null });
  it('a new cluster at scale 0 with no jobs gets the next step', () => {
    expect(isIdleCluster({ workers: 0, jobs: [], target: scale(0) })).toBe(true);
    expect(IDLE_HINT).toContain('Scale');
  });

  it('not once it asks for workers or has live jobs', () => {
    expect(isIdleCluster({ workers: 0, jobs: [], target: scale(2) })).toBe(false);
    expect(isIdleCluster({ workers: 0, jobs: [], target: { mode: 'adapt', n: null, minimum: 0, maximum: 4 } })).toBe(false);
    expect(isIdleCluster({ workers: 0, jobs: [makeJob({ state: 'pending' })], target: scale(0) })).toBe(false);
    expect(isIdleCluster({ workers: 0, jobs: [makeJob({ state: 'ended' })], target: scale(0) })).toBe(true);
  });
});

describe('pending reason', () => {
  it("prefers the plain words of the one job view to Slurm's code", () => {
    const d = describeJob(makeJob({ state: 'pending', reason: 'WaitingForGap', reason_text: 'waiting for a gap in the schedule' }, ''), NOW);
    expect(d.reason).toBe('waiting for a gap in the schedule');
  });
});

describe('templateInfo', () => {
  const t = { name: 'small', description: '1 CPU, 2 GiB per worker; 5 min – 1 h jobs in the gaps', cores: 1, memory: '2GiB', min_walltime: '00:05:00', max_walltime: '01:00:00', partition: 'burst', qos: null };
  it("shows the admin's description once, the facts in the tooltip", () => {
    expect(templateInfo(t)).toEqual({ text: t.description, title: '1 core, 2GiB per job, walltime 00:05:00–01:00:00, partition burst' });
  });
  it('shows the facts when there is no description', () => {
    expect(templateInfo({ ...t, description: ' ', cores: 4, qos: 'low' }).text).toBe('4 cores, 2GiB per job, walltime 00:05:00–01:00:00, partition burst, QOS low');
  });
});
