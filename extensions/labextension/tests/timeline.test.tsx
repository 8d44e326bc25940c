import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import { NOW, makeJob } from './fixtures';

import { TIMELINE_PAST, Timeline, timeline } from '../src/timeline';

const jobs = [
  makeJob({ state: 'running', start_time: NOW - 600, end_time: NOW + 1200, time_left: 1200 }, '10'),
  makeJob({ state: 'retiring', start_time: NOW - 3000, end_time: NOW + 60, time_left: 60 }, '11'),
  makeJob({ state: 'pending', estimated_start: NOW + 300 }, '12'),
  makeJob({ state: 'pending', reason: 'WaitingForGap' }, ''),
  makeJob({ state: 'ended', start_time: NOW - 9000, ended_at: NOW - 120 }, '9'),
  makeJob({ state: 'ended' }, '8'),
  makeJob({ state: 'ended', start_time: NOW - 60, ended_at: NOW + 3000, ended_why: 'scaled down' }, '7'),
  makeJob({ state: 'unknown' }, '13')
];

describe('timeline', () => {
  const t = timeline(jobs, NOW, NOW + 1800);

  it('one bar per job with times to draw: running to its end, pending to its estimate', () => {
    const bars = Object.fromEntries(t.bars.map(b => [b.key, [b.state, b.from - NOW, b.to - NOW, b.open]]));
    expect(bars).toEqual({
      '10': ['running', -600, 1200, false],
      '11': ['retiring', -3000, 60, false],
      '12': ['pending', 0, 300, false],
      'unsubmitted-0': ['pending', 0, 0, true],
      '9': ['ended', -9000, -120, false],
      '7': ['ended', -60, 0, false] // scaled down: Slurm's planned end is not when it ended
    });
  });

  it('spans from at most an hour ago to the next planned start, which it marks', () => {
    expect(t.from).toBe(NOW - TIMELINE_PAST);
    expect(t.to).toBe(NOW + 1800);
    expect(t.bound).toBe(NOW + 1800);
    expect(timeline(jobs, NOW, NOW - 5).bound).toBeNull(); // a start already past bounds nothing
  });
});

describe('Timeline', () => {
  it('draws an SVG bar per job, the now line and the gap bound', () => {
    const html = renderToStaticMarkup(<Timeline jobs={jobs} now={NOW} bound={NOW + 1800} />);
    expect(html).toContain('<svg class="sandfill-timeline" data-testid="sandfill-timeline"');
    const bars = [...html.matchAll(/<rect class="sandfill-tl-bar sandfill-tl-(\w+)[^"]*" data-job-id="(\d*)"/g)].map(m => `${m[2]}:${m[1]}`);
    expect(bars).toEqual(['10:running', '11:retiring', ':pending', '12:pending', '7:ended', '9:ended']); // the table's order
    expect(html).toContain('data-testid="sandfill-tl-now"');
    expect(html).toContain('data-testid="sandfill-tl-bound"');
    expect(html).toContain('next planned start in 30 min');
    expect(html).toContain('<span class="sandfill-tl-range" data-testid="sandfill-tl-range">1 h ago → in 30 min</span>');
    expect(html).toContain('<title>job 12 — Pending: starts in 5 min</title>');
  });

  it('draws nothing without jobs, and no bound when none is known', () => {
    expect(renderToStaticMarkup(<Timeline jobs={[]} now={NOW} />)).toBe('');
    expect(renderToStaticMarkup(<Timeline jobs={jobs.slice(0, 1)} now={NOW} />)).not.toContain('sandfill-tl-bound');
  });
});
