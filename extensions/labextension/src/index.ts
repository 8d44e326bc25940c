/**
 * sandfill-labextension: the "Backfill Dask" sidebar panel, and the walltime
 * warning of the notebook server's Slurm job (./walltime).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';

import { SandfillClient } from './api';
import { SandfillPanel } from './panel';
import { walltimePlugin } from './walltime';

import iconSvg from '../style/icon.svg';

export const PLUGIN_ID = 'sandfill-labextension:plugin';
export const PANEL_ID = 'sandfill-panel';

export const sandfillIcon = new LabIcon({
  name: 'sandfill-labextension:icon',
  svgstr: iconSvg
});

namespace CommandIDs {
  export const open = 'sandfill:open-panel';
}

/**
 * Insert `code` as a new code cell below the active cell of the current
 * notebook. Resolves to an error text, or null when it worked.
 */
async function insertIntoNotebook(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  code: string
): Promise<string | null> {
  const panel = tracker?.currentWidget;
  if (!panel) {
    return 'Open a notebook first: the snippet goes into the active notebook.';
  }
  await panel.context.ready;
  const notebook = panel.content;
  if (notebook.model && notebook.widgets.length > 0) {
    NotebookActions.insertBelow(notebook);
  } else {
    // insertBelow needs an active cell; an empty notebook gets one.
    notebook.model?.sharedModel.insertCell(0, { cell_type: 'code', source: '' });
    notebook.activeCellIndex = 0;
  }
  if (notebook.activeCell?.model.type !== 'code') {
    NotebookActions.changeCellType(notebook, 'code');
  }
  const cell = notebook.activeCell;
  if (!cell) {
    return 'Could not add a cell to the notebook.';
  }
  cell.model.sharedModel.setSource(code);
  app.shell.activateById(panel.id);
  return null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A sidebar panel for Dask clusters of Slurm backfill worker jobs.',
  autoStart: true,
  optional: [INotebookTracker, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker | null,
    restorer: ILayoutRestorer | null
  ) => {
    const settings = app.serviceManager?.serverSettings ?? ServerConnection.makeSettings();
    const panel = new SandfillPanel({
      client: new SandfillClient(settings),
      insertSnippet: code => insertIntoNotebook(app, tracker, code)
    });
    panel.id = PANEL_ID;
    panel.title.icon = sandfillIcon;
    panel.title.caption = 'Backfill Dask';

    app.shell.add(panel, 'left', { rank: 210 });
    if (restorer) {
      restorer.add(panel, PANEL_ID);
    }

    app.commands.addCommand(CommandIDs.open, {
      label: 'Show Backfill Dask',
      caption: 'Show the Backfill Dask panel',
      execute: () => app.shell.activateById(PANEL_ID)
    });
  }
};

export default [plugin, walltimePlugin];
