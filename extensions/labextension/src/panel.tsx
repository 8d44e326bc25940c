/**
 * The "Backfill Dask" sidebar panel: the user's clusters, their worker jobs,
 * and the controls to create, scale, adapt and shut down clusters.
 *
 * All state comes from the server (polled); the panel keeps nothing that a
 * browser reload would lose except half-typed form input.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { SandfillAPIError, SandfillClient } from './api';
import { CountControl } from './controls';
import { JobTable } from './jobs';
import {
  IDLE_HINT,
  ICluster,
  ICreateFromTemplate,
  ITemplate,
  POLL_INTERVAL,
  connectSnippet,
  dashboardUrl,
  isIdleCluster,
  nextPollDelay,
  parseCount,
  readAdapt,
  readScale,
  summaryLine,
  targetLine,
  templateInfo
} from './model';
import { Timeline } from './timeline';

/** Inserts code into the active notebook; resolves to an error text or null. */
export type SnippetInserter = (code: string) => Promise<string | null>;

export interface ISandfillPanelOptions {
  client: SandfillClient;
  insertSnippet: SnippetInserter;
}

function messageOf(error: unknown): string {
  if (error instanceof SandfillAPIError) {
    return error.describe();
  }
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/** A worker job's log as the panel shows it: loading, its text, or why it is not shown. */
export interface IShownLog {
  jobId: string;
  text: string | null;
  error: string | null;
}

function liveJobs(cluster: ICluster): number {
  return (cluster.jobs || []).filter(j => j.state !== 'ended').length;
}

export class SandfillPanel extends ReactWidget {
  constructor(options: ISandfillPanelOptions) {
    super();
    this.client = options.client;
    this._insertSnippet = options.insertSnippet;
    this.addClass('sandfill-panel');
    this.node.dataset.testid = 'sandfill-panel';
  }

  readonly client: SandfillClient;

  /** Clusters as last read from the server; null until the first answer. */
  clusters: ICluster[] | null = null;
  templates: ITemplate[] | null = null;
  /** Why the last poll failed; cleared by the next good poll. */
  pollError: string | null = null;
  templatesError: string | null = null;
  /** Why the last action failed; cleared by the user or the next good action. */
  actionError: string | null = null;
  notice: string | null = null;
  /** Cluster ids (or "create") with a request under way. */
  busy = new Set<string>();
  /** The worker-job log open in each cluster's card, by cluster id. */
  logs = new Map<string, IShownLog>();

  /** The current poll delay in ms (exposed for tests and debugging). */
  get pollDelay(): number {
    return this._delay;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._clearTimer();
    document.removeEventListener('visibilitychange', this._onVisibility);
    super.dispose();
  }

  /** Read clusters (and templates, until they are known) from the server. */
  async refresh(): Promise<boolean> {
    let ok = true;
    if (this.templates === null) {
      try {
        this.templates = await this.client.listTemplates();
        this.templatesError = null;
      } catch (e) {
        this.templatesError = messageOf(e);
      }
    }
    try {
      this.clusters = await this.client.listClusters();
      this.pollError = null;
    } catch (e) {
      this.pollError = messageOf(e);
      ok = false;
    }
    this.update();
    return ok;
  }

  async createCluster(body: ICreateFromTemplate): Promise<boolean> {
    return this._act('create', async () => {
      const cluster = await this.client.createCluster(body);
      this._upsert(cluster);
      this.notice = `Created cluster "${cluster.name}".`;
    });
  }

  async scale(cluster: ICluster, n: number): Promise<boolean> {
    return this._act(cluster.id, async () => {
      this._upsert(await this.client.scaleCluster(cluster.id, n));
    });
  }

  async adapt(cluster: ICluster, minimum: number, maximum: number): Promise<boolean> {
    return this._act(cluster.id, async () => {
      this._upsert(await this.client.adaptCluster(cluster.id, minimum, maximum));
    });
  }

  async shutdown(cluster: ICluster): Promise<boolean> {
    const answer = await showDialog({
      title: 'Shut down cluster',
      body: `Shut down "${cluster.name}" and cancel its ${liveJobs(cluster)} worker job(s)?`,
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: 'Shut down' })
      ]
    });
    if (!answer.button.accept) {
      return false;
    }
    return this._act(cluster.id, async () => {
      await this.client.deleteCluster(cluster.id);
      this.logs.delete(cluster.id);
      if (this.clusters) {
        this.clusters = this.clusters.filter(c => c.id !== cluster.id);
      }
      this.notice = `Shut down cluster "${cluster.name}".`;
    });
  }

  async insertSnippet(cluster: ICluster): Promise<void> {
    const error = await this._insertSnippet(connectSnippet(cluster.name));
    this.actionError = error;
    this.notice = error ? null : `Inserted the connect snippet for "${cluster.name}".`;
    this.update();
  }

  /** Open (or re-read) the log of one of a cluster's worker jobs in its card. */
  async showLog(cluster: ICluster, jobId: string): Promise<void> {
    this.logs.set(cluster.id, { jobId, text: null, error: null });
    this.update();
    let shown: IShownLog;
    try {
      shown = { jobId, text: (await this.client.jobLog(cluster.id, jobId)).text, error: null };
    } catch (e) {
      shown = { jobId, text: null, error: messageOf(e) };
    }
    if (this.logs.get(cluster.id)?.jobId === jobId) {
      this.logs.set(cluster.id, shown);
      this.update();
    }
  }

  closeLog(cluster: ICluster): void {
    this.logs.delete(cluster.id);
    this.update();
  }

  /** Report an input mistake the same way as a server error. */
  reportError(message: string): void {
    this.actionError = message;
    this.notice = null;
    this.update();
  }

  dismissMessages(): void {
    this.actionError = null;
    this.notice = null;
    this.update();
  }

  /** The browser URL of a cluster's dashboard. */
  dashboardUrl(cluster: ICluster): string {
    return dashboardUrl(this.client.settings.baseUrl, cluster.dashboard_link);
  }

  protected render(): JSX.Element {
    return <PanelView panel={this} now={Date.now() / 1000} />;
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    document.addEventListener('visibilitychange', this._onVisibility);
    this._poll();
  }

  protected onBeforeDetach(msg: Message): void {
    document.removeEventListener('visibilitychange', this._onVisibility);
    this._clearTimer();
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    // Shown again: refresh at once and go back to the fast interval.
    this._delay = POLL_INTERVAL;
    this._poll();
  }

  private _visible(): boolean {
    return this.isVisible && !document.hidden;
  }

  private _onVisibility = (): void => {
    if (this._visible()) {
      this._delay = POLL_INTERVAL;
      this._poll();
    }
  };

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  /** Poll now (unless a poll is in flight), then schedule the next one. */
  private _poll(): void {
    this._clearTimer();
    if (this._inFlight || this.isDisposed) {
      return;
    }
    this._inFlight = true;
    void this.refresh()
      .catch(() => false)
      .then(ok => {
        this._inFlight = false;
        if (this.isDisposed || !this.isAttached) {
          return;
        }
        this._delay = nextPollDelay(this._delay, ok, this._visible());
        this._clearTimer();
        this._timer = setTimeout(() => this._poll(), this._delay);
      });
  }

  private _upsert(cluster: ICluster): void {
    const list = this.clusters ? [...this.clusters] : [];
    const i = list.findIndex(c => c.id === cluster.id);
    if (i >= 0) {
      list[i] = cluster;
    } else {
      list.push(cluster);
    }
    this.clusters = list;
  }

  private async _act(key: string, fn: () => Promise<void>): Promise<boolean> {
    this.busy.add(key);
    this.actionError = null;
    this.notice = null;
    this.update();
    try {
      await fn();
      return true;
    } catch (e) {
      this.actionError = messageOf(e);
      return false;
    } finally {
      this.busy.delete(key);
      this.update();
    }
  }

  private _insertSnippet: SnippetInserter;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _inFlight = false;
  private _delay = POLL_INTERVAL;
}

// ---------------------------------------------------------------------------
// React views
// ---------------------------------------------------------------------------

interface IViewProps {
  panel: SandfillPanel;
  now: number;
}

function PanelView({ panel, now }: IViewProps): JSX.Element {
  const clusters = panel.clusters;
  return (
    <div className="sandfill-body">
      <header className="sandfill-header">
        <h2 className="sandfill-title">Backfill Dask</h2>
        <button
          className="jp-Button sandfill-refresh"
          data-testid="sandfill-refresh"
          title="Refresh now"
          onClick={() => void panel.refresh()}
        >
          ⟳
        </button>
      </header>
      <Messages panel={panel} />
      <CreateForm panel={panel} />
      <section className="sandfill-clusters" data-testid="sandfill-clusters">
        {clusters === null ? (
          <p className="sandfill-empty">
            {panel.pollError ? 'Clusters unavailable.' : 'Loading clusters…'}
          </p>
        ) : clusters.length === 0 ? (
          <p className="sandfill-empty" data-testid="sandfill-no-clusters">
            No clusters yet.
          </p>
        ) : (
          clusters.map(c => (
            <ClusterCard key={c.id} panel={panel} cluster={c} now={now} />
          ))
        )}
      </section>
    </div>
  );
}

/** An error line: class and test id `sandfill-<kind>`, announced to screen readers. */
function Alert({ kind, children }: { kind: string; children: React.ReactNode }): JSX.Element {
  return (
    <div className={`sandfill-error sandfill-${kind}`} data-testid={`sandfill-${kind}`} role="alert">
      {children}
    </div>
  );
}

function Messages({ panel }: { panel: SandfillPanel }): JSX.Element | null {
  const items: JSX.Element[] = [];
  if (panel.pollError) {
    items.push(
      <Alert key="poll" kind="poll-error">
        Cannot list clusters — {panel.pollError}
      </Alert>
    );
  }
  if (panel.templatesError) {
    items.push(
      <Alert key="templates" kind="templates-error">
        Cannot list templates — {panel.templatesError}
      </Alert>
    );
  }
  if (panel.actionError) {
    items.push(
      <Alert key="action" kind="action-error">
        {panel.actionError}
        <button
          className="sandfill-dismiss"
          title="Dismiss"
          onClick={() => panel.dismissMessages()}
        >
          ×
        </button>
      </Alert>
    );
  }
  if (panel.notice) {
    items.push(
      <div key="notice" className="sandfill-notice" data-testid="sandfill-notice">
        {panel.notice}
      </div>
    );
  }
  return items.length ? <div className="sandfill-messages">{items}</div> : null;
}

function CreateForm({ panel }: { panel: SandfillPanel }): JSX.Element {
  const templates = panel.templates || [];
  const [template, setTemplate] = React.useState('');
  const [name, setName] = React.useState('');
  const [workers, setWorkers] = React.useState('');
  const chosen = templates.some(t => t.name === template)
    ? template
    : templates.length
      ? templates[0].name
      : '';
  const busy = panel.busy.has('create');

  const submit = async (ev: React.FormEvent) => {
    ev.preventDefault();
    if (!chosen) {
      panel.reportError('No cluster template to create from.');
      return;
    }
    const body: ICreateFromTemplate = { template: chosen };
    if (name.trim()) {
      body.name = name.trim();
    }
    if (workers.trim()) {
      const n = parseCount(workers);
      if (n === null) {
        panel.reportError(`Workers must be a whole number, not "${workers}".`);
        return;
      }
      body.workers = n;
    }
    if (await panel.createCluster(body)) {
      setName('');
      setWorkers('');
    }
  };

  return (
    <form className="sandfill-create-form" onSubmit={submit}>
      <TemplateField templates={templates} chosen={chosen} choose={setTemplate} />
      <OptionalField name="name" label="Name" value={name} set={setName} />
      <OptionalField name="workers" label="Workers" value={workers} set={setWorkers} numeric />
      <button
        type="submit"
        className="jp-Button jp-mod-styled jp-mod-accept sandfill-create"
        data-testid="sandfill-create"
        disabled={busy || !chosen}
      >
        {busy ? 'Creating…' : 'Create cluster'}
      </button>
    </form>
  );
}

interface ITemplateFieldProps {
  templates: ITemplate[];
  chosen: string;
  choose: (name: string) => void;
}

/** The template to create a cluster from, and what it gives. */
function TemplateField({ templates, chosen, choose }: ITemplateFieldProps): JSX.Element {
  const info = templates.find(t => t.name === chosen);
  return (
    <>
      <label className="sandfill-field">
        <span>Template</span>
        <select
          className="jp-mod-styled sandfill-template"
          data-testid="sandfill-template"
          value={chosen}
          disabled={!templates.length}
          onChange={e => choose(e.target.value)}
        >
          {templates.map(t => (
            <option key={t.name} value={t.name} title={t.description}>
              {t.name}
            </option>
          ))}
        </select>
      </label>
      {info && (
        <div className="sandfill-template-info" data-testid="sandfill-template-info" title={templateInfo(info).title}>
          {templateInfo(info).text}
        </div>
      )}
    </>
  );
}

interface IOptionalFieldProps {
  /** the input's class and test id: `sandfill-<name>` */
  name: string;
  label: string;
  value: string;
  set: (value: string) => void;
  numeric?: boolean;
}

/** A labelled text input of the create form that may stay empty. */
function OptionalField({ name, label, value, set, numeric }: IOptionalFieldProps): JSX.Element {
  return (
    <label className="sandfill-field">
      <span>{label}</span>
      <input
        className={`jp-mod-styled sandfill-${name}`}
        data-testid={`sandfill-${name}`}
        placeholder="optional"
        inputMode={numeric ? 'numeric' : undefined}
        value={value}
        onChange={e => set(e.target.value)}
      />
    </label>
  );
}

interface IClusterProps {
  panel: SandfillPanel;
  cluster: ICluster;
  now: number;
}

function ClusterCard({ panel, cluster, now }: IClusterProps): JSX.Element {
  return (
    <article
      className="sandfill-cluster"
      data-testid="sandfill-cluster"
      data-cluster-name={cluster.name}
      data-cluster-id={cluster.id}
    >
      <div className="sandfill-cluster-head">
        <span className="sandfill-cluster-name" title={cluster.scheduler_address}>
          {cluster.name}
        </span>
        {cluster.template && (
          <span className="sandfill-cluster-template">{cluster.template}</span>
        )}
      </div>
      <div className="sandfill-summary" data-testid="sandfill-summary">
        {summaryLine(cluster)}
      </div>
      <div className="sandfill-target" data-testid="sandfill-target">
        target: {targetLine(cluster.target)}
      </div>
      <ClusterStatus cluster={cluster} />
      <div className="sandfill-links">
        <a
          className="sandfill-dashboard-link"
          data-testid="sandfill-dashboard-link"
          href={panel.dashboardUrl(cluster)}
          target="_blank"
          rel="noopener noreferrer"
        >
          Dask dashboard ↗
        </a>
        <button
          className="jp-Button jp-mod-styled sandfill-insert-snippet"
          data-testid="sandfill-insert-snippet"
          title="Insert a cell that connects a Dask client to this cluster"
          onClick={() => void panel.insertSnippet(cluster)}
        >
          Insert connect snippet
        </button>
      </div>
      <ClusterControls panel={panel} cluster={cluster} />
      <Timeline jobs={cluster.jobs || []} now={now} bound={cluster.next_planned_start} />
      <JobTable jobs={cluster.jobs || []} now={now} onLog={jobId => void panel.showLog(cluster, jobId)} />
      <JobLog panel={panel} cluster={cluster} />
    </article>
  );
}

/** Why workers are held back, what went wrong, and the next step for an idle cluster. */
function ClusterStatus({ cluster }: { cluster: ICluster }): JSX.Element | null {
  const lines: JSX.Element[] = [];
  if (cluster.waiting_reason) {
    lines.push(
      <div key="waiting" className="sandfill-waiting" data-testid="sandfill-waiting">
        Held back: {cluster.waiting_reason}
      </div>
    );
  }
  if (cluster.last_error) {
    lines.push(
      <div key="error" className="sandfill-error sandfill-last-error" data-testid="sandfill-last-error">
        The last round of keeping the worker jobs failed: {cluster.last_error}
      </div>
    );
  }
  for (const owed of cluster.cancels_owed || []) {
    lines.push(
      <div key={`owed-${owed.job_id}`} className="sandfill-error sandfill-cancel-owed" data-testid="sandfill-cancel-owed">
        Job {owed.job_id}: cancelling failed ({owed.error}); trying again.
      </div>
    );
  }
  if (isIdleCluster(cluster)) {
    lines.push(
      <div key="hint" className="sandfill-hint" data-testid="sandfill-hint">
        {IDLE_HINT}
      </div>
    );
  }
  return lines.length ? <div className="sandfill-cluster-status">{lines}</div> : null;
}

/** The log of the worker job picked in the table (the server's tail of its .out and .err). */
function JobLog({ panel, cluster }: Omit<IClusterProps, 'now'>): JSX.Element | null {
  const log = panel.logs.get(cluster.id);
  if (!log) {
    return null;
  }
  return (
    <section className="sandfill-log-view" data-testid="sandfill-log-view" data-job-id={log.jobId}>
      <div className="sandfill-log-head">
        <span>Log of job {log.jobId}</span>
        <button className="jp-Button sandfill-log-refresh" title="Read the log again" onClick={() => void panel.showLog(cluster, log.jobId)}>
          ⟳
        </button>
        <button className="jp-Button sandfill-log-close" title="Close the log" onClick={() => panel.closeLog(cluster)}>
          ×
        </button>
      </div>
      {log.error ? (
        <Alert kind="log-error">Cannot show the log — {log.error}</Alert>
      ) : (
        <pre className="sandfill-log" data-testid="sandfill-log">
          {log.text ?? 'Loading…'}
        </pre>
      )}
    </section>
  );
}

/** Scale, adapt and shut down one cluster. */
function ClusterControls({ panel, cluster }: Omit<IClusterProps, 'now'>): JSX.Element {
  const t = cluster.target || { mode: 'scale', n: null, minimum: null, maximum: null };
  const [scaleN, setScaleN] = React.useState(String(t.n ?? cluster.workers ?? 0));
  const [adaptMin, setAdaptMin] = React.useState(String(t.minimum ?? 0));
  const [adaptMax, setAdaptMax] = React.useState(String(t.maximum ?? 4));
  const busy = panel.busy.has(cluster.id);

  const doScale = () => {
    const typed = readScale(scaleN);
    if (typed.ok) {
      void panel.scale(cluster, typed.value);
    } else {
      panel.reportError(typed.error);
    }
  };
  const doAdapt = () => {
    const typed = readAdapt(adaptMin, adaptMax);
    if (typed.ok) {
      void panel.adapt(cluster, typed.value.minimum, typed.value.maximum);
    } else {
      panel.reportError(typed.error);
    }
  };

  return (
    <div className="sandfill-controls">
      <CountControl
        action="scale"
        label="Scale"
        busy={busy}
        run={doScale}
        inputs={[
          { name: 'scale-n', label: 'Number of workers', value: scaleN, set: setScaleN }
        ]}
      />
      <CountControl
        action="adapt"
        label="Adapt"
        busy={busy}
        run={doAdapt}
        inputs={[
          { name: 'adapt-min', label: 'Minimum workers', value: adaptMin, set: setAdaptMin },
          { name: 'adapt-max', label: 'Maximum workers', value: adaptMax, set: setAdaptMax }
        ]}
      />
      <button
        className="jp-Button jp-mod-styled jp-mod-warn sandfill-shutdown"
        data-testid="sandfill-shutdown"
        disabled={busy}
        onClick={() => void panel.shutdown(cluster)}
      >
        Shut down
      </button>
    </div>
  );
}
