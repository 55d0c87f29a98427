import type { JobStage } from '../../core/index.js';
import type { CliIo } from '../io.js';

/** Which of the two output streams a text goes to. */
export type Stream = 'out' | 'err';

type Paint = (text: string) => string;

/** SGR styles; every function returns its text unchanged when colour is off. */
export interface Palette {
  readonly enabled: boolean;
  bold: Paint;
  dim: Paint;
  red: Paint;
  green: Paint;
  yellow: Paint;
  blue: Paint;
  cyan: Paint;
  magenta: Paint;
}

/**
 * Whether to colour a stream: `FORCE_COLOR` (any value but `0` or `false`) forces colour on,
 * a non-empty `NO_COLOR` (https://no-color.org) turns it off, else only a terminal whose
 * `TERM` is not `dumb` gets colour.
 */
export function colourEnabled(env: CliIo['env'], isTTY: boolean): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return isTTY && env.TERM !== 'dumb';
}

/** The palette for one of the CLI's streams. */
export function paletteFor(io: CliIo, stream: Stream = 'out'): Palette {
  return palette(colourEnabled(io.env, io.isTTY?.[stream] ?? false));
}

/** A palette that colours, or one whose styles all return their text as is. */
export function palette(enabled: boolean): Palette {
  const sgr =
    (open: number, close: number): Paint =>
    (text) =>
      enabled && text !== '' ? `\x1b[${open}m${text}\x1b[${close}m` : text;
  return {
    enabled,
    bold: sgr(1, 22),
    dim: sgr(2, 22),
    red: sgr(31, 39),
    green: sgr(32, 39),
    yellow: sgr(33, 39),
    blue: sgr(34, 39),
    magenta: sgr(35, 39),
    cyan: sgr(36, 39),
  };
}

/** A stage name in its colour: green succeeded, red failed, blue while a factory works on it. */
export function paintStage(p: Palette, stage: JobStage | string): string {
  switch (stage) {
    case 'succeeded':
      return p.green(stage);
    case 'failed':
      return p.red(stage);
    case 'cancelled':
      return p.yellow(stage);
    case 'claimed':
    case 'running':
    case 'verifying':
      return p.blue(stage);
    case 'blocked':
      return p.magenta(stage);
    default:
      return p.dim(stage);
  }
}

// eslint-disable-next-line no-control-regex
const SGR = /\x1b\[[0-9;]*m/g;

/** The text without its colour codes. */
export function stripAnsi(text: string): string {
  return text.replace(SGR, '');
}

/** How many columns the text takes on a terminal (colour codes take none). */
export function visibleWidth(text: string): number {
  return [...stripAnsi(text)].length;
}
