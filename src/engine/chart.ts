// What the HTML charts of `report` and `backtest --html` share, so one colour means one thing on
// every chart spotfleet draws (on-demand is always the same red, spot always blue, spotfleet's own
// line always green, migrations always purple), and every axis has ticks and a title.

/** The one palette. A thing keeps its colour across charts and pages. */
export const PALETTE = {
  /** What spotfleet paid / spotfleet's policy. */
  spotfleet: '#1f7a4d',
  /** On-demand capacity, the on-demand counterfactual, the all-on-demand baseline. */
  onDemand: '#b4442f',
  /** Spot capacity (zones are shades of it). */
  spot: '#2f6db4',
  /** Not running. */
  idle: '#d9dde3',
  /** A migration. */
  migration: '#7b3fa0',
  /** A deadline. */
  deadline: '#333333',
  /** The offline optimum. */
  optimum: '#111111',
  /** Other baselines. */
  greedy: '#c98a14',
  uniformProgress: '#168a8a',
} as const;

/** Shades of the spot colour, one per zone. */
export const SPOT_SHADES = ['#2f6db4', '#5b8fd1', '#8fb3e3', '#1d4f8a', '#6fa0c9', '#a9c6ea', '#3d7fc2', '#255d9e', '#7fa8d8'] as const;

/** The colour of a backtest policy's line, by the policy's name (never by its position). */
export function policyColour(policy: string): string {
  switch (policy) {
    case 'spotfleet':
      return PALETTE.spotfleet;
    case 'on-demand':
      return PALETTE.onDemand;
    case 'optimum':
      return PALETTE.optimum;
    case 'greedy':
      return PALETTE.greedy;
    case 'uniform-progress':
      return PALETTE.uniformProgress;
    default:
      return '#777777';
  }
}

/** A "nice" step (1, 2 or 5 × 10^k) for about `n` ticks over a span. */
export function niceStep(span: number, n: number): number {
  if (!(span > 0)) return 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/** Tick values from 0 to at least `max` in nice steps, and the axis top (the last tick). */
export function niceTicks(max: number, n = 5): { ticks: number[]; top: number } {
  const step = niceStep(max > 0 ? max : 1, n);
  const top = max > 0 ? Math.ceil(max / step - 1e-9) * step : step;
  const ticks: number[] = [];
  for (let i = 0; i * step <= top + step / 2; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { ticks, top };
}

/** How long a span is, for a header: `3m`, `5h`, `2d 4h`. */
export function spanWords(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 === 0 || h >= 10 ? `${Math.round(m / 60)}h` : `${h}h ${m % 60}m`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d}d` : `${d}d ${h % 24}h`;
}

/** CSS every chart page includes: axis, tick and title styles. */
export const CHART_CSS = `
svg .axis { stroke: #8a93a3; } svg .tick line { stroke: #8a93a3; } svg .grid { stroke: #eceff4; }
svg .tick text { font-size: 11px; fill: #5b6475; } svg .axis-title { font-size: 12px; fill: #1d2330; font-weight: 600; }
svg .migration { stroke: ${PALETTE.migration}; stroke-width: 1.5; stroke-dasharray: 3 3; } svg .migration-mark { fill: ${PALETTE.migration}; }
`;
