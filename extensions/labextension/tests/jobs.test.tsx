import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import { NOW, makeJob } from './fixtures';

import { JobTable } from '../src/jobs';
import { IWorkerJob } from '../src/model';

function job(over: Partial<IWorkerJob>): IWorkerJob {
  return makeJob(over, '1');
}

/** The <tr> of one job in the rendered markup. */
function row(html: string, jobId: string): string {
  const m = html.match(
    new RegExp(`<tr [^>]*data-job-id="${jobId}"[^>]*>(.*?)</tr>`)
  );
  expect(m, `row for job ${jobId}`).not.toBeNull();
  return m![0];
}

function text(html: string): string {
  return html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#x27;/g, "'")
    .replace(/\s+/g, ' ')
    .trim();
}

describe('JobTable', () => {
  const jobs = [
    job({ job_id: '40', state: 'ended', slurm_state: 'TIMEOUT', ended_why: 'walltime', node: 'node2' }),
    job({ job_id: '30', state: 'pending', reason: 'Resources', estimated_start: NOW + 180 }),
    job({ job_id: '20', state: 'retiring', time_left: 62, node: 'node1', workers: ['w-20'] }),
    job({ job_id: '10', state: 'running', time_left: 754, node: 'node3', workers: ['w-10a', 'w-10b'] }),
    job({ job_id: '50', state: 'unknown' })
  ];
  const html = renderToStaticMarkup(<JobTable jobs={jobs} now={NOW} />);

  it('renders one row per job with the DOM hooks, in state order', () => {
    const ids = [...html.matchAll(/<tr [^>]*class="sandfill-job [^"]*"[^>]*data-job-id="(\d+)" data-state="(\w+)"/g)].map(
      m => `${m[1]}:${m[2]}`
    );
    expect(ids).toEqual(['10:running', '20:retiring', '30:pending', '50:unknown', '40:ended']);
  });

  it('pending row: badge, reason and relative start', () => {
    const r = row(html, '30');
    expect(r).toContain('class="sandfill-badge sandfill-badge-pending"');
    expect(r).toContain('<span class="sandfill-job-reason">Resources</span>');
    expect(r).toContain('<span class="sandfill-job-start">starts in 3 min</span>');
    expect(text(r)).toBe('30 Pending Resources · starts in 3 min —');
  });

  it('running row: time left, node, workers', () => {
    const r = row(html, '10');
    expect(r).toContain('sandfill-badge-running');
    expect(text(r)).toBe('10 Running 12:34 left w-10a, w-10b node3');
    expect(r).toContain('<span class="sandfill-job-workers" title="Dask workers"> w-10a, w-10b</span>');
  });

  it('retiring row says retiring and the time left', () => {
    expect(text(row(html, '20'))).toBe('20 Retiring retiring · 1:02 left w-20 node1');
  });

  it('ended row shows why', () => {
    const r = row(html, '40');
    expect(r).toContain('<span class="sandfill-job-why">walltime</span>');
    expect(text(r)).toBe('40 Ended walltime node2');
  });

  it('unknown row', () => {
    expect(row(html, '50')).toContain('sandfill-badge-unknown');
    expect(text(row(html, '50'))).toBe('50 Unknown state not known —');
  });

  it('says so when there are no jobs', () => {
    expect(renderToStaticMarkup(<JobTable jobs={[]} now={NOW} />)).toContain(
      'No worker jobs.'
    );
  });
});

describe('JobTable log links', () => {
  it("links each submitted job's id to its log; a job without an id has no link", () => {
    const seen: string[] = [];
    const jobs = [job({ job_id: '10', state: 'running' }), makeJob({ state: 'pending', reason: 'Submitting' }, '')];
    const html = renderToStaticMarkup(<JobTable jobs={jobs} now={NOW} onLog={id => seen.push(id)} />);
    expect(html).toContain('<a href="#" class="sandfill-job-log-link" data-testid="sandfill-job-log-link" title="Show the log of job 10">10</a>');
    expect(html.match(/<a /g)).toHaveLength(1);
    expect(html).toContain('<td class="sandfill-job-id" title="not submitted to Slurm yet">—</td>');
  });
});
