import { describe, expect, it } from 'vitest';

import {
  IWalltimeInfo,
  WALLTIME_POLL_MS,
  WalltimeWatcher,
  walltimeNotice
} from '../src/walltime';

function info(over: Partial<IWalltimeInfo>): IWalltimeInfo {
  return {
    job_id: '42',
    end_time: 1_800_003_600,
    seconds_left: 3600,
    warn_before: 600,
    warning: false,
    message: '',
    error: null,
    ...over
  };
}

const NEAR = info({
  seconds_left: 540,
  warning: true,
  message:
    "This server's Slurm job 42 reaches its walltime at 14:05 (in 9 min 0 s). Save your work: the server stops then."
});

/** A watcher over a queue of answers (an Error is a failed request). */
function watcherOf(answers: (IWalltimeInfo | Error)[]): {
  watcher: WalltimeWatcher;
  notified: IWalltimeInfo[];
  seen: IWalltimeInfo[];
} {
  const notified: IWalltimeInfo[] = [];
  const seen: IWalltimeInfo[] = [];
  const watcher = new WalltimeWatcher(
    async () => {
      const next = answers.shift();
      if (next === undefined || next instanceof Error) {
        throw next ?? new Error('no answer');
      }
      return next;
    },
    i => notified.push(i),
    i => seen.push(i)
  );
  return { watcher, notified, seen };
}

describe('WalltimeWatcher', () => {
  it('stays quiet while the end is far', async () => {
    const { watcher, notified, seen } = watcherOf([info({}), info({})]);
    await watcher.check();
    await watcher.check();
    expect(notified).toEqual([]);
    expect(seen).toHaveLength(2);
    expect(watcher.latest?.job_id).toBe('42');
    expect(watcher.warned).toBe(false);
  });

  it('notifies once when the warning starts', async () => {
    const { watcher, notified } = watcherOf([info({}), NEAR, NEAR, NEAR]);
    for (let i = 0; i < 4; i++) {
      await watcher.check();
    }
    expect(notified).toEqual([NEAR]);
    expect(watcher.warned).toBe(true);
  });

  it('ignores a failed request and tries again next time', async () => {
    const { watcher, notified, seen } = watcherOf([
      new Error('cannot reach the Jupyter server'),
      NEAR
    ]);
    await watcher.check();
    expect(watcher.latest).toBeNull();
    expect(seen).toEqual([]);
    await watcher.check();
    expect(notified).toEqual([NEAR]);
  });

  it('polls every 30 s', () => {
    expect(WALLTIME_POLL_MS).toBe(30_000);
  });
});

describe('walltimeNotice', () => {
  it('is a sticky warning with the server message and a Save all action', () => {
    const notice = walltimeNotice(NEAR);
    expect(notice.type).toBe('warning');
    expect(notice.message).toBe(NEAR.message);
    expect(notice.options.autoClose).toBe(false);
    expect(notice.options.actions).toEqual([
      {
        label: 'Save all',
        commandId: 'docmanager:save-all',
        caption: 'Save all open documents'
      }
    ]);
  });
});
