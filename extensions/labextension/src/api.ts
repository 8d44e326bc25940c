/**
 * Typed calls to the sandfill server extension (docs/lab-api.md).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  ICluster,
  describeFailure,
  ICreateClusterRequest,
  IJobLog,
  IPatchClusterRequest,
  ITemplate,
  IWorkerJob
} from './model';

/** The server extension's route namespace under the base URL. */
export const API_NAMESPACE = 'sandfill';

/**
 * An answer other than 2xx, or no answer at all. `message` is the server's
 * `{"error": ...}` text when there is one.
 */
export class SandfillAPIError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly endpoint: string
  ) {
    super(message);
    this.name = 'SandfillAPIError';
  }

  /** Text for the panel: the server's words ("no cluster 'x'"), no "404:" in front. */
  describe(): string {
    return describeFailure(this.status, this.message);
  }
}

function errorText(data: unknown, response: Response): string {
  if (data && typeof data === 'object') {
    const d = data as { error?: unknown; message?: unknown };
    if (typeof d.error === 'string' && d.error) {
      return d.error;
    }
    if (typeof d.message === 'string' && d.message) {
      return d.message;
    }
  }
  if (typeof data === 'string' && data.trim() && !data.trim().startsWith('<')) {
    return data.trim().slice(0, 300);
  }
  return response.statusText || 'request failed';
}

/**
 * Call the server extension and return the JSON body (undefined for 204).
 *
 * @param endPoint path under `sandfill/`, e.g. `clusters/abc`
 * @param init fetch options; a `body` object is sent as JSON
 * @param settings server settings (base URL, token, XSRF handling)
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    throw new SandfillAPIError(
      `cannot reach the Jupyter server (${text})`,
      null,
      endPoint
    );
  }

  const raw = await response.text();
  let data: unknown = undefined;
  if (raw.length > 0) {
    try {
      data = JSON.parse(raw);
    } catch {
      data = raw;
    }
  }

  if (!response.ok) {
    throw new SandfillAPIError(
      errorText(data, response),
      response.status,
      endPoint
    );
  }
  return data as T;
}

function jsonInit(method: string, body: unknown): RequestInit {
  return {
    method,
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' }
  };
}

const enc = encodeURIComponent;

/** The REST client the panel uses; one per panel. */
export class SandfillClient {
  constructor(
    readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  listTemplates(): Promise<ITemplate[]> {
    return requestAPI<ITemplate[]>('templates', {}, this.settings);
  }

  listClusters(): Promise<ICluster[]> {
    return requestAPI<ICluster[]>('clusters', {}, this.settings);
  }

  getCluster(id: string): Promise<ICluster> {
    return requestAPI<ICluster>(`clusters/${enc(id)}`, {}, this.settings);
  }

  createCluster(body: ICreateClusterRequest): Promise<ICluster> {
    return requestAPI<ICluster>(
      'clusters',
      jsonInit('POST', body),
      this.settings
    );
  }

  patchCluster(id: string, body: IPatchClusterRequest): Promise<ICluster> {
    return requestAPI<ICluster>(
      `clusters/${enc(id)}`,
      jsonInit('PATCH', body),
      this.settings
    );
  }

  scaleCluster(id: string, n: number): Promise<ICluster> {
    return this.patchCluster(id, { scale: n });
  }

  adaptCluster(id: string, minimum: number, maximum: number): Promise<ICluster> {
    return this.patchCluster(id, { adapt: { minimum, maximum } });
  }

  async deleteCluster(id: string): Promise<void> {
    await requestAPI<void>(
      `clusters/${enc(id)}`,
      { method: 'DELETE' },
      this.settings
    );
  }

  listJobs(id: string): Promise<IWorkerJob[]> {
    return requestAPI<IWorkerJob[]>(
      `clusters/${enc(id)}/jobs`,
      {},
      this.settings
    );
  }

  jobLog(id: string, jobId: string): Promise<IJobLog> {
    return requestAPI<IJobLog>(
      `clusters/${enc(id)}/jobs/${enc(jobId)}/log`,
      {},
      this.settings
    );
  }
}
