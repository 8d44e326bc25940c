/**
 * The walltime warning: the notebook server runs as a Slurm job, and Slurm
 * stops it at its walltime. Every 30 s this plugin asks the server extension
 * (`GET <base>/sandfill/walltime`, sandfill.lab.walltime) and, once the end is
 * near, shows one JupyterLab notification with a "Save all" action.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from './api';

export const WALLTIME_PLUGIN_ID = 'sandfill-labextension:walltime';

/** How often the plugin asks the server (ms). */
export const WALLTIME_POLL_MS = 30_000;

/** `GET sandfill/walltime`, field for field. */
export interface IWalltimeInfo {
  job_id: string | null;
  end_time: number | null;
  seconds_left: number | null;
  warn_before: number;
  warning: boolean;
  message: string;
  error: string | null;
}

/** The arguments of the `apputils:notify` command for the warning. */
export function walltimeNotice(info: IWalltimeInfo): {
  message: string;
  type: 'warning';
  options: {
    autoClose: false;
    actions: { label: string; commandId: string; caption: string }[];
  };
} {
  return {
    message: info.message,
    type: 'warning',
    options: {
      autoClose: false,
      actions: [
        {
          label: 'Save all',
          commandId: 'docmanager:save-all',
          caption: 'Save all open documents'
        }
      ]
    }
  };
}

/**
 * Asks for the walltime and calls `notify` once, the first time the server
 * says `warning`. A failed request is ignored (the server may be going away
 * or restarting): the next check tries again.
 */
export class WalltimeWatcher {
  /** The last answer, or null before the first. */
  latest: IWalltimeInfo | null = null;
  private _warned = false;

  constructor(
    private readonly _fetch: () => Promise<IWalltimeInfo>,
    private readonly _notify: (info: IWalltimeInfo) => void,
    private readonly _seen: (info: IWalltimeInfo) => void = () => undefined
  ) {}

  get warned(): boolean {
    return this._warned;
  }

  async check(): Promise<void> {
    let info: IWalltimeInfo;
    try {
      info = await this._fetch();
    } catch {
      return;
    }
    if (!info) {
      return;
    }
    this.latest = info;
    this._seen(info);
    if (info.warning && !this._warned) {
      this._warned = true;
      this._notify(info);
    }
  }
}

declare global {
  interface Window {
    /** The last walltime answer (for browser tests and curious users). */
    sandfillWalltime?: IWalltimeInfo;
  }
}

export const walltimePlugin: JupyterFrontEndPlugin<void> = {
  id: WALLTIME_PLUGIN_ID,
  description: "Warns before the notebook server's Slurm walltime ends.",
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    const settings =
      app.serviceManager?.serverSettings ?? ServerConnection.makeSettings();
    const watcher = new WalltimeWatcher(
      () => requestAPI<IWalltimeInfo>('walltime', {}, settings),
      info =>
        void app.commands.execute('apputils:notify', walltimeNotice(info)),
      info => {
        window.sandfillWalltime = info;
      }
    );
    void app.restored.then(() => watcher.check());
    window.setInterval(() => void watcher.check(), WALLTIME_POLL_MS);
  }
};
