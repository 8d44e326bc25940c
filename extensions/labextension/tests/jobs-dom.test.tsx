// @vitest-environment jsdom
/**
 * The job table in a live React DOM, re-rendered as the poll answers change: the rows
 * must always be exactly the jobs of the last answer (no ghost rows left behind).
 */
import * as React from 'react';
import { flushSync } from 'react-dom';
import { createRoot, Root } from 'react-dom/client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { NOW, makeJob } from './fixtures';

import { JobTable } from '../src/jobs';
import { IWorkerJob, summaryLine } from '../src/model';

/** A job the cluster wants but Slurm does not know yet: no job id. */
function unsubmitted(reason = 'Submitting'): IWorkerJob {
  return makeJob({ state: 'pending', reason }, '');
}

function running(id: string): IWorkerJob {
  return makeJob({ state: 'running', time_left: 600, node: 'node1', workers: [`w-${id}`] }, id);
}

let host: HTMLDivElement;
let root: Root;

beforeEach(() => {
  host = document.createElement('div');
  document.body.appendChild(host);
  root = createRoot(host);
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  root.unmount();
  host.remove();
  vi.restoreAllMocks();
});

function show(jobs: IWorkerJob[]): string[] {
  flushSync(() => root.render(<JobTable jobs={jobs} now={NOW} />));
  return [...host.querySelectorAll('tr[data-testid="sandfill-job"]')].map(
    tr => `${tr.getAttribute('data-job-id') || '-'}:${tr.getAttribute('data-state')}`
  );
}

describe('JobTable across polls', () => {
  it('scale to 4: unsubmitted rows give way to submitted jobs, no ghosts', () => {
    expect(show([unsubmitted(), unsubmitted(), unsubmitted(), unsubmitted()])).toHaveLength(4);
    expect(show([running('11'), unsubmitted(), unsubmitted(), unsubmitted()])).toHaveLength(4);
    expect(show([running('11'), running('12'), unsubmitted('WaitingForGap'), unsubmitted()])).toHaveLength(4);
    const last = [running('11'), running('12'), running('13'), running('14')];
    expect(show(last)).toEqual(['11:running', '12:running', '13:running', '14:running']);
    // the table agrees with the summary line
    expect(summaryLine({ workers: 4, jobs: last })).toBe('4 workers · 4 running');
  });

  it('rows without a job id each have their own key (React warns of none)', () => {
    show([unsubmitted(), unsubmitted(), running('3')]);
    show([unsubmitted(), running('3')]);
    const warned = (console.error as unknown as { mock: { calls: unknown[][] } }).mock.calls
      .map(c => String(c[0]))
      .filter(m => m.includes('same key'));
    expect(warned).toEqual([]);
  });
});
