/**
 * The panel's worker-count controls (React only, so the unit tests render
 * them without a JupyterLab).
 */
import * as React from 'react';

export interface ICountInput {
  /** class and test id `sandfill-<name>` */
  name: string;
  /** the accessible label */
  label: string;
  value: string;
  set: (value: string) => void;
}

export interface ICountControlProps {
  /** the button's class and test id: `sandfill-<action>` */
  action: string;
  label: string;
  busy: boolean;
  run: () => void;
  /** the numbers the action takes, shown as a range when there are two */
  inputs: ICountInput[];
}

/** Worker-count inputs and the button that applies them (Enter in the last input too). */
export function CountControl({ action, label, busy, run, inputs }: ICountControlProps): JSX.Element {
  return (
    <div className="sandfill-control">
      {inputs.map((input, i) => (
        <React.Fragment key={input.name}>
          {i > 0 && <span>–</span>}
          <input
            className={`jp-mod-styled sandfill-${input.name}`}
            data-testid={`sandfill-${input.name}`}
            aria-label={input.label}
            inputMode="numeric"
            value={input.value}
            onChange={e => input.set(e.target.value)}
            onKeyDown={i === inputs.length - 1 ? e => e.key === 'Enter' && run() : undefined}
          />
        </React.Fragment>
      ))}
      <button
        className={`jp-Button jp-mod-styled sandfill-${action}`}
        data-testid={`sandfill-${action}`}
        disabled={busy}
        onClick={run}
      >
        {label}
      </button>
    </div>
  );
}
