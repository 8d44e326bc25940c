import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import { CountControl, ICountInput } from '../src/controls';

function input(name: string, value: string): ICountInput {
  return { name, label: `${name} workers`, value, set: () => undefined };
}

describe('CountControl', () => {
  it('renders the scale control: one input, then its button', () => {
    const html = renderToStaticMarkup(
      <CountControl action="scale" label="Scale" busy={false} run={() => undefined} inputs={[input('scale-n', '4')]} />
    );
    expect(html).toMatch(
      /^<div class="sandfill-control"><input class="jp-mod-styled sandfill-scale-n" data-testid="sandfill-scale-n" aria-label="scale-n workers" inputMode="numeric" value="4"\/><button class="jp-Button jp-mod-styled sandfill-scale" data-testid="sandfill-scale">Scale<\/button><\/div>$/
    );
  });

  it('renders the adapt control as a range, and disables the button while busy', () => {
    const html = renderToStaticMarkup(
      <CountControl
        action="adapt"
        label="Adapt"
        busy={true}
        run={() => undefined}
        inputs={[input('adapt-min', '0'), input('adapt-max', '8')]}
      />
    );
    const min = html.indexOf('sandfill-adapt-min');
    const dash = html.indexOf('<span>–</span>');
    const max = html.indexOf('sandfill-adapt-max');
    expect(min).toBeGreaterThan(0);
    expect(dash).toBeGreaterThan(min);
    expect(max).toBeGreaterThan(dash);
    expect(html).toContain('value="0"');
    expect(html).toContain('value="8"');
    expect(html).toMatch(/<button [^>]*data-testid="sandfill-adapt" disabled="">Adapt<\/button>/);
  });
});
